"""Nudge's settings: one frozen pydantic-settings object read from NUDGE_*, with local defaults.

Every name is documented in the README's table (tests/unit/test_readme.py holds the two to each
other). A user points Nudge at their own Kafka cluster, database and SMTP relay by setting
these; nothing else needs to change. Keys and passwords are `SecretStr`: printed, logged or
dumped they show `**********`; the URLs' passwords are masked when dumped (`model_dump`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from schemas.errors import ConfigurationError


class SettingsError(ConfigurationError, ValueError):
    """A NUDGE_* environment variable has a value Nudge cannot use; the message names it."""


# Documented development values: `require_secrets` refuses to run a process with them.
DEV_SECRET_KEY = "nudge-dev-secret-change-me"
DEV_API_KEY = "nudge-key"
MIN_SECRET_CHARS = 32
MIN_KEY_CHARS = 12
HOW_TO_MAKE_A_SECRET = (
    "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' "
    "(or `openssl rand -base64 32`); `nudge dev` makes and keeps its own"
)


class SmtpRelay(BaseModel):
    """Where and how to hand email over: parsed from NUDGE_SMTP_URL."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    # "none": plain SMTP; "starttls": upgrade after EHLO; "tls": implicit TLS (smtps://).
    security: Literal["none", "starttls", "tls"] = "none"
    # Tests and local relays use self-signed certificates.
    verify_tls: bool = True

    @classmethod
    def from_url(cls, url: str) -> SmtpRelay:
        """Parse `smtp://user:pass@host:port?starttls=true` or `smtps://...` (implicit TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise SettingsError(
                f"NUDGE_SMTP_URL must start with smtp:// or smtps://, got {url!r}"
            )
        if not parts.hostname:
            raise SettingsError(f"NUDGE_SMTP_URL has no host: {url!r}")
        query = dict(
            (pair.split("=", 1)[0], pair.split("=", 1)[1]) if "=" in pair else (pair, "true")
            for pair in parts.query.split("&")
            if pair
        )
        security: Literal["none", "starttls", "tls"] = "none"
        if parts.scheme == "smtps":
            security = "tls"
        elif query.get("starttls", "false").lower() in ("1", "true", "yes"):
            security = "starttls"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if security == "tls" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            security=security,
            verify_tls=query.get("verify", "true").lower() not in ("0", "false", "no"),
        )


class Settings(BaseSettings):
    """All of Nudge's configuration: `Settings()` reads NUDGE_* from the environment (init
    arguments win); `Settings.from_env()` does the same with a SettingsError naming the bad one."""

    model_config = SettingsConfigDict(env_prefix="NUDGE_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:19092"
    database_url: str = Field(
        default="postgresql://nudge:nudge@127.0.0.1:15432/nudge", repr=False
    )
    smtp_url: str = Field(default="smtp://127.0.0.1:1025", repr=False)
    http_port: int = 8686
    http_host: str = "127.0.0.1"
    site_id: str = "nudge-site"
    # The Track API key (ingestion only). `nudge api` refuses to start with the development value.
    api_key: SecretStr = Field(default=SecretStr(DEV_API_KEY))
    # Segment/RudderStack server write key: the Basic user (password empty) or `writeKey` in
    # the body. Unset: the Segment routes take only the browser key.
    segment_write_key: SecretStr | None = None
    # Signs Segment/RudderStack webhook-destination requests (X-Signature, HMAC-SHA1 hex).
    webhook_secret: SecretStr | None = None
    # Requests per second per credential (token bucket, one second of burst); 429 beyond.
    rate_limit_per_second: float = 2000.0
    # The folder that holds campaigns/, segments/ and templates/ (campaigns as code).
    campaigns_dir: Path = Path(".")
    # Refuse (400) tracked events, or properties, not declared in <campaigns_dir>/events.yaml.
    strict_events: bool = False
    data_dir: Path = Path("var/data")
    # Names topics, the Faust app and consumer groups; tests give each run its own.
    app_id: str = "nudge"
    partitions: int = 4
    # Address used in From: when a template gives none, and the domain of Message-IDs.
    mail_from: str = "Nudge <nudge@localhost>"
    # Where links in emails (unsubscribe, tracking) point; the HTTP API's public address.
    public_url: str = "http://127.0.0.1:8686"
    worker_web_port: int = 6066
    timer_tick_seconds: float = 0.25
    history_limit: int = 100
    # --- the person agent's checkpoints (agents/person/checkpoint.py) ---
    # A checkpoint makes effects, then state, durable every this many Kafka messages or
    # seconds, whichever comes first; in between, inputs are applied to an in-memory cache.
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_seconds: float = Field(default=0.1, gt=0)
    # Other workers keeping a warm copy of each people partition (Faust standby replicas): a
    # worker taking over a partition it has a standby for serves within seconds.
    standby_replicas: int = Field(default=0, ge=0)
    # A people partition this many changelog records behind (or missing, on an empty data dir)
    # is restored in bulk before Faust starts, instead of record by record by Faust.
    restore_bulk_min_records: int = Field(default=20_000, ge=1)
    # --- delivery (agents/sender) ---
    # Keys the HMAC of unsubscribe, preferences, open and click links; set it in production,
    # and keep it: changing it breaks the links in every email already sent.
    secret_key: str = Field(default=DEV_SECRET_KEY, repr=False)
    # The mailto: of List-Unsubscribe; empty: unsubscribe@<domain of mail_from>.
    unsubscribe_mailto: str = ""
    # At most this many marketing (non-transactional) emails per person per day / per 7 days;
    # 0 means no limit. Counted from the outbox when a message is claimed.
    max_marketing_per_day: int = 0
    max_marketing_per_week: int = 0
    # SMTP connections kept open to the relay per process (messages in flight at once).
    smtp_connections: int = 4
    # Messages per second handed to the relay per process (token bucket); 0 means unlimited.
    smtp_rate_per_second: float = 0.0
    # While the relay is unreachable, delivery pauses and probes it this often.
    smtp_probe_seconds: float = 2.0
    # Delivery loops this worker runs; 0: none (run `nudge deliver` processes instead).
    delivery_loops: int = 1
    # Outbox rows a loop claims per query (up to two batches in flight per loop).
    delivery_batch: int = 32
    # A claim is a lease this long, renewed while its loop works: a stopped loop's messages go
    # back to the queue after it, at once when the loop restarts on the same host.
    delivery_lease_seconds: float = 10.0
    # Loop names are <name>/<n>, kept across restarts; empty: the host name.
    delivery_name: str = ""
    # A message not delivered this long after it was queued fails for good (relay down for days).
    delivery_give_up_seconds: float = 3 * 86400.0
    # Rewrite links for click tracking and add an open pixel to marketing emails.
    track_opens: bool = True
    track_clicks: bool = True
    # Per message part: a template that renders longer or larger than this fails that message.
    render_timeout_seconds: float = 2.0
    render_max_chars: int = 2_000_000
    # --- deploy: Kafka durability (`nudge stack up --brokers 3`, deploy/k8s) ---
    # Replicas of every topic Nudge creates (inputs, commands, table changelogs): 3 in production.
    replication_factor: int = Field(default=1, ge=1)
    # The topics' min.insync.replicas: with acks=all, a write is acknowledged once this many
    # replicas have it. 2 of 3: one broker down keeps working; two down refuse (503), never lose.
    min_insync_replicas: int = Field(default=1, ge=1)
    # How long the API waits for Kafka to acknowledge an input before answering 503.
    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    # Where the worker's web port (/health, /ready, /metrics) listens: 0.0.0.0 in a container,
    # so the kubelet's probes and Prometheus reach it.
    worker_web_host: str = "127.0.0.1"

    # --- console and operations (streams/console, streams/metrics.py) ---
    # The web console's login (served by `nudge api` at /): set both in production.
    console_user: str = "admin"
    console_password: SecretStr = Field(default=SecretStr("nudge-console"))
    # A console session lasts this long after login.
    console_session_hours: float = 12.0
    # "text" or "json" (one JSON object per line) for the worker's and the API's logs.
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _replicas_fit(self) -> Settings:
        if self.min_insync_replicas > self.replication_factor:
            raise SettingsError(
                f"NUDGE_MIN_INSYNC_REPLICAS ({self.min_insync_replicas}) is more than "
                f"NUDGE_REPLICATION_FACTOR ({self.replication_factor}): no write could succeed"
            )
        return self

    @field_serializer("database_url", "smtp_url")
    def _mask_password(self, url: str) -> str:
        # Dumped settings (logs, support bundles) never carry the URLs' passwords.
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":**********@", 1)
        return parts._replace(netloc=netloc).geturl()

    # -> lead: a SecretStr once agents/person/agent.py reads it with .get_secret_value();
    # until then a str, hidden from repr and masked when dumped.
    @field_serializer("secret_key")
    def _mask_secret_key(self, value: str) -> str:
        return "**********" if value else ""

    @property
    def topic_config(self) -> dict[str, str]:
        """Configs every topic Nudge creates gets (its changelogs add compaction)."""
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    # --- http: scoped credentials, TLS, browsers, link-key rotation (streams/http) ---
    # Opens the read side: profiles, activity, events, metrics, segments, message status, the
    # suppression list, broadcast progress (Bearer, or Basic site_id:key). Unset: closed.
    read_api_key: SecretStr | None = None
    # Opens sending: transactional email, broadcasts, suppression changes. Unset: closed.
    send_api_key: SecretStr | None = None
    # A public, write-only key for pages (analytics.js, RudderStack JS, Customer.io's JS):
    # identify, track, page, screen and group only. Unset: no browser ingestion.
    browser_write_key: str | None = None
    # Origins whose pages may post with the browser key, comma-separated, exact
    # (`https://app.example.com,http://localhost:3000`); `*` allows any origin.
    cors_origins: str = ""
    # Browser requests per second per client address (token bucket, one second of burst).
    browser_rate_limit_per_second: float = 20.0
    # Serve the API over https with this certificate chain and private key (PEM files).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The NUDGE_SECRET_KEY before a rotation: links signed with it keep working until
    # NUDGE_SECRET_KEY_PREVIOUS_UNTIL (Unix seconds or ISO 8601), then they are refused.
    secret_key_previous: SecretStr | None = None
    secret_key_previous_until: float | None = None

    @field_validator("secret_key_previous_until", mode="before")
    @classmethod
    def _instant(cls, value: object) -> object:
        if isinstance(value, str) and value and not value.replace(".", "", 1).isdigit():
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"NUDGE_SECRET_KEY_PREVIOUS_UNTIL must be Unix seconds or ISO 8601, got {value!r}") from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        return value

    @property
    def cors_origin_set(self) -> frozenset[str]:
        """NUDGE_CORS_ORIGINS as a set of exact origins."""
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    def link_keys(self, now: float) -> tuple[str, ...]:
        """The keys a signed link may carry at `now`: the current one, and the previous one in its window."""
        previous = reveal(self.secret_key_previous)
        if previous and self.secret_key_previous_until and now < self.secret_key_previous_until:
            return (self.secret_key, previous)
        return (self.secret_key,)

    @property
    def smtp(self) -> SmtpRelay:
        """The parsed SMTP relay."""
        return SmtpRelay.from_url(self.smtp_url)

    @property
    def input_topic(self) -> str:
        return f"{self.app_id}-input"

    @property
    def sends_topic(self) -> str:
        return f"{self.app_id}-sends"

    @property
    def projections_topic(self) -> str:
        return f"{self.app_id}-projections"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.app_id}-dead-letter"

    @property
    def broadcasts_topic(self) -> str:
        """Broadcast and backfill scan starts; it has the input topic's partition count."""
        return f"{self.app_id}-broadcasts"

    @property
    def templates_dir(self) -> Path:
        return self.campaigns_dir / "templates"

    @property
    def segments_dir(self) -> Path:
        return self.campaigns_dir / "segments"

    @property
    def campaign_files_dir(self) -> Path:
        return self.campaigns_dir / "campaigns"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every NUDGE_* variable of `environ` (default: this process's); unset ones keep
        their local defaults. A bad value raises SettingsError naming the variable."""
        try:
            if environ is None:
                settings = cls()
            else:
                settings = cls(_build_sources=((_MappingEnvSource(cls, environ),), {}))
            _ = settings.smtp  # validate the URL early, with its own message
        except ValidationError as exc:
            problems = "; ".join(
                f"NUDGE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"]
                for e in exc.errors()
            )
            raise SettingsError(f"invalid NUDGE_* setting: {problems}") from exc
        return settings


class _MappingEnvSource(EnvSettingsSource):
    """The NUDGE_* variables of a given mapping instead of os.environ (a child process's env)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def reveal(secret: SecretStr | None) -> str | None:
    """The value of an optional secret, for the one place that uses it (None when unset)."""
    return secret.get_secret_value() if secret is not None else None


def require_secrets(settings: Settings, *, api: bool) -> None:
    """Refuse to run a worker (api=False) or the API (api=True) with missing or known secrets.

    The link-signing key always matters; the API also needs a real Track API key, and every
    scoped key that is set must be long and distinct from the others (one key for two scopes
    would undo the separation). The message lists every problem and how to make a secret.
    """
    problems = []
    if settings.secret_key == DEV_SECRET_KEY or not settings.secret_key:
        problems.append("NUDGE_SECRET_KEY is not set: it signs every unsubscribe, preference and tracking link")
    elif len(settings.secret_key) < MIN_SECRET_CHARS:
        problems.append(f"NUDGE_SECRET_KEY is shorter than {MIN_SECRET_CHARS} characters")
    previous = reveal(settings.secret_key_previous)
    if previous and settings.secret_key_previous_until is None:
        problems.append("NUDGE_SECRET_KEY_PREVIOUS is set without NUDGE_SECRET_KEY_PREVIOUS_UNTIL (when to stop accepting it)")
    if previous and previous == settings.secret_key:
        problems.append("NUDGE_SECRET_KEY_PREVIOUS is the same as NUDGE_SECRET_KEY")
    if api:
        keys = {
            "NUDGE_API_KEY": settings.api_key.get_secret_value(),
            "NUDGE_READ_API_KEY": reveal(settings.read_api_key),
            "NUDGE_SEND_API_KEY": reveal(settings.send_api_key),
            "NUDGE_SEGMENT_WRITE_KEY": reveal(settings.segment_write_key),
            "NUDGE_BROWSER_WRITE_KEY": settings.browser_write_key,
        }
        if keys["NUDGE_API_KEY"] in (DEV_API_KEY, ""):
            problems.append("NUDGE_API_KEY is not set (the development value opens the Track API to anyone)")
        for name, value in keys.items():
            if value and value != DEV_API_KEY and len(value) < MIN_KEY_CHARS:
                problems.append(f"{name} is shorter than {MIN_KEY_CHARS} characters")
        seen: dict[str, str] = {}
        for name, value in keys.items():
            if value and value in seen:
                problems.append(f"{name} is the same as {seen[value]}: each scope needs its own key")
            elif value:
                seen[value] = name
        if (settings.tls_cert is None) != (settings.tls_key is None):
            problems.append("NUDGE_TLS_CERT and NUDGE_TLS_KEY must be set together")
    if problems:
        raise SettingsError(
            "refusing to start: " + "; ".join(problems) + ". " + HOW_TO_MAKE_A_SECRET
        )

"""The fault suite's deployment under test: Nudge on its own app id, database and SMTP sink.

A `FaultDeployment` writes the suite's campaign (on `signed_up` send `welcome`, wait 3 s, send
`followup`), runs the API and one or more workers with `NudgeProcesses`, drives a
`SignupLoad`, and counts what reached the sink and the read model (`fault_counts`).
The cases themselves (what to kill, when) live in `tests/faults/`.
"""

from __future__ import annotations

import os
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from deploy.local.fault_counts import (
    CaseResult,
    Mail,
    OutboxState,
    count_read_model,
    count_template,
    exposed_messages,
    first_accepted_at,
    lost_people,
)
from deploy.local.process import run_sync
from deploy.local.runner import NudgeProcesses, delete_topics, free_port, nudge_env
from deploy.local.signup_load import LoadStats, SignupLoad
from deploy.local.smtp_sink import SmtpSink
from streams.database import connect

CAMPAIGN_ID = "onboarding"
# The delivery side's count of claims taken back before their outcome was recorded: each may
# have reached the relay (streams/metrics.py). Summed over every worker process of a case.
DUPLICATE_METRIC = "nudge_delivery_leases_reclaimed"
TEMPLATES = ("welcome", "followup")
WAIT_SECONDS = 3.0
EMAIL_DOMAIN = "example.com"

PROJECT = {
    "campaigns/onboarding.yaml": (
        f"id: {CAMPAIGN_ID}\n"
        "trigger: {event: signed_up}\n"
        "steps:\n"
        "  - send: welcome\n"
        f"  - wait: {int(WAIT_SECONDS)}s\n"
        "  - send: followup\n"
    ),
    # The subject is the template id: the sink tells the two emails apart by it.
    "templates/welcome.html": "---\nsubject: welcome\n---\n<p>Welcome aboard.</p>\n",
    "templates/followup.html": "---\nsubject: followup\n---\n<p>How is it going?</p>\n",
}


@dataclass(frozen=True)
class FaultSize:
    """How hard a run pushes: the CI size fits the suite's budget, `full` is for outside checks."""

    name: str
    # New people per second (each an identify and a `signed_up`).
    rate: float
    # Worker or API kills per kill case.
    kills: int
    # Seconds between a worker being ready and its kill: uniform in this range.
    kill_gap: tuple[float, float]
    # How long the SMTP relay stays down, and a worker stays paused (past its 10 s session).
    smtp_down_seconds: float
    pause_seconds: float
    # How long PostgreSQL or the broker stays down when restarted.
    restart_down_seconds: float
    # Seconds of load before and after a single fault (SMTP down, restarts, pause).
    load_margin_seconds: float
    # After everything arrived (or the deadline passed): wait this long for late duplicates.
    settle_seconds: float
    # The target: every due email and the read model complete this long after quiet.
    within_seconds: float = 30.0


SIZES = {
    "ci": FaultSize(
        name="ci", rate=8.0, kills=3, kill_gap=(0.5, 4.0), smtp_down_seconds=25.0,
        pause_seconds=15.0, restart_down_seconds=5.0, load_margin_seconds=4.0, settle_seconds=3.0,
    ),
    "full": FaultSize(
        name="full", rate=15.0, kills=10, kill_gap=(0.5, 8.0), smtp_down_seconds=120.0,
        pause_seconds=30.0, restart_down_seconds=20.0, load_margin_seconds=10.0,
        settle_seconds=20.0,
    ),
}


def fault_size(environ: dict[str, str] | None = None) -> FaultSize:
    """The size named by NUDGE_FAULTS_SIZE (`ci`, the default, or `full`)."""
    env = os.environ if environ is None else environ
    name = env.get("NUDGE_FAULTS_SIZE") or "ci"
    if name not in SIZES:
        raise ValueError(f"NUDGE_FAULTS_SIZE must be one of {', '.join(SIZES)}, not {name!r}")
    return SIZES[name]


def fault_seed(environ: dict[str, str] | None = None) -> int:
    """The seed of the fault timings: NUDGE_FAULTS_SEED to replay a run, else a fresh one."""
    env = os.environ if environ is None else environ
    raw = env.get("NUDGE_FAULTS_SEED")
    return int(raw) if raw else int.from_bytes(os.urandom(4), "big")


def write_project(folder: Path) -> Path:
    """Write the suite's campaign and templates into `folder` (NUDGE_CAMPAIGNS_DIR)."""
    for relative, text in PROJECT.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def person_of(rcpt: str) -> str:
    """The person id of a recipient address the load gave out."""
    return rcpt.split("@", 1)[0]


class FaultDeployment:
    """One Nudge deployment (API and workers) against Kafka, PostgreSQL and an `SmtpSink`."""

    def __init__(
        self,
        root: Path,
        *,
        kafka_bootstrap: str,
        database_url: str,
        sink: SmtpSink,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.sink = sink
        self.kafka_bootstrap = kafka_bootstrap
        self.database_url = database_url
        self.env = nudge_env(
            app_id=f"f{uuid.uuid4().hex[:10]}",
            database_url=database_url,
            smtp_url=sink.url,
            data_dir=root / "data",
            campaigns_dir=write_project(root / "project"),
            kafka_bootstrap=kafka_bootstrap,
        )
        # NUDGE_* variables of a private Kafka cluster (replication), for instance.
        self.env.update(extra_env or {})
        self.main = NudgeProcesses(self.env, root / "logs")
        self.others: list[NudgeProcesses] = []
        self._data_dirs = 0
        # (when, what): the faults injected and the restarts, for the case's notes.
        self.timeline: list[tuple[float, str]] = []
        # DUPLICATE_METRIC as scraped from workers just before they were killed.
        self._metric_of_killed: float | None = None

    @property
    def app_id(self) -> str:
        return self.env["NUDGE_APP_ID"]

    def start(self) -> FaultDeployment:
        """Start the API and the first worker; return once both answer."""
        self.main.start_api()
        self.start_worker()
        return self

    def kill_worker(self, processes: NudgeProcesses | None = None) -> None:
        """SIGKILL a worker (the main one by default), keeping its duplicate count first."""
        value = scrape_counter((processes or self.main).settings.worker_web_port, DUPLICATE_METRIC)
        if value is not None:
            self._metric_of_killed = (self._metric_of_killed or 0.0) + value
        (processes or self.main).kill_worker()
        self.timeline.append((time.time(), "worker killed"))

    def start_worker(self, processes: NudgeProcesses | None = None) -> float:
        """Start a worker (the main one by default); return when it was ready."""
        began = time.time()
        (processes or self.main).start_worker()
        ready = time.time()
        self.timeline.append((ready, f"worker ready after {ready - began:.1f}s"))
        return ready

    def kill_api(self) -> None:
        """SIGKILL the API and start it again on the same port; return once it answers."""
        self.main.kill_api()
        self.timeline.append((time.time(), "api killed"))
        self.main.start_api()
        self.timeline.append((time.time(), "api back"))

    def pause_worker(self, processes: NudgeProcesses | None = None) -> None:
        """SIGSTOP a worker (the main one by default)."""
        (processes or self.main).pause_worker()
        self.timeline.append((time.time(), "worker paused"))

    def resume_worker(self, processes: NudgeProcesses | None = None) -> float:
        """SIGCONT a paused worker; return when."""
        (processes or self.main).resume_worker()
        now = time.time()
        self.timeline.append((now, "worker resumed"))
        return now

    def duplicate_metric(self) -> int | None:
        """DUPLICATE_METRIC over every worker of the case, killed and live (None: not exported)."""
        values = [self._metric_of_killed] + [
            scrape_counter(p.settings.worker_web_port, DUPLICATE_METRIC)
            for p in [self.main, *self.others] if "worker" in p.running()
        ]
        known = [v for v in values if v is not None]
        return int(sum(known)) if known else None

    def restart_if_exited(self, within: float, processes: NudgeProcesses | None = None) -> float | None:
        """Wait up to `within` s for a worker to exit of itself (a fenced zombie does); if it did,
        start it again as a supervisor would and return when it was ready, else None."""
        worker = (processes or self.main).worker
        assert worker is not None
        deadline = time.monotonic() + within
        while worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if worker.poll() is None:
            self.timeline.append((time.time(), "worker carried on after the pause"))
            return None
        self.timeline.append((time.time(), f"worker exited by itself (status {worker.returncode})"))
        return self.start_worker(processes)

    def restart_seconds(self) -> list[float]:
        """How long each worker start took, in order."""
        return [
            float(text.split()[-1].rstrip("s")) for _, text in self.timeline
            if text.startswith("worker ready after")
        ]

    def empty_data_dir(self) -> None:
        """Point the main worker's next start at a data dir it has never seen (a new machine)."""
        self._data_dirs += 1
        self.env["NUDGE_DATA_DIR"] = str(self.root / f"data-{self._data_dirs}")

    def another_worker(self) -> NudgeProcesses:
        """A second worker of the same deployment: same app id and group, its own dir and port."""
        n = len(self.others) + 2
        env = dict(
            self.env,
            NUDGE_DATA_DIR=str(self.root / f"data-worker-{n}"),
            NUDGE_WORKER_WEB_PORT=str(free_port()),
        )
        processes = NudgeProcesses(env, self.root / f"logs-worker-{n}")
        self.others.append(processes)
        return processes

    def load(self, rate: float, prefix: str = "p") -> SignupLoad:
        """A signup load against this deployment's API (not started)."""
        settings = self.main.settings
        return SignupLoad(self.main.base_url, (settings.site_id, settings.api_key.get_secret_value()), rate=rate,
                          prefix=prefix)

    def mails(self) -> list[Mail]:
        """What the sink received, as (person, template, message id, when)."""
        return [
            Mail(person_of(r.rcpt), r.subject, r.message_id, r.at) for r in self.sink.received()
        ]

    def stop(self, *, keep_topics: bool = False) -> None:
        """Stop every process and delete the deployment's topics (unless kept for a post-mortem)."""
        for processes in [*self.others, self.main]:
            processes.stop()
        if keep_topics:
            return
        try:
            delete_topics(self.kafka_bootstrap, self.app_id)
        except Exception:
            pass

    # -- counting ---------------------------------------------------------------------------

    def wait_for_completion(
        self, accepted: list[str], since: float, within: float
    ) -> tuple[float | None, float | None]:
        """Poll until every expected email arrived and the read model is complete, or `within`
        seconds after `since` pass; return (emails_after, read_model_after) in seconds."""
        deadline = since + within
        emails_after = read_model_after = None
        while True:
            now = time.time()
            if emails_after is None:
                mails = self.mails()
                if all(count_template(t, accepted, mails).lost == 0 for t in TEMPLATES):
                    last = max(
                        (m.at for m in mails if m.template in TEMPLATES), default=since
                    )
                    emails_after = max(0.0, last - since)
            if read_model_after is None:
                people, entered = self.read_model(accepted)
                if count_read_model(accepted, people, entered).complete:
                    read_model_after = max(0.0, now - since)
            if (emails_after is not None and read_model_after is not None) or now > deadline:
                return emails_after, read_model_after
            time.sleep(0.5)

    def read_model(self, accepted: list[str]) -> tuple[list[str], dict[str, int]]:
        """The accepted people that have a `people` row, and their `entered` event counts."""

        async def query() -> tuple[list[str], dict[str, int]]:
            conn = await connect(self.database_url, self.app_id)
            try:
                people = await conn.fetch(
                    "SELECT person FROM people WHERE person = ANY($1::text[])", accepted
                )
                entered = await conn.fetch(
                    "SELECT person, count(*) AS n FROM journey_events"
                    " WHERE event = 'entered' AND campaign_id = $1 AND person = ANY($2::text[])"
                    " GROUP BY person",
                    CAMPAIGN_ID, accepted,
                )
                return [r["person"] for r in people], {r["person"]: r["n"] for r in entered}
            finally:
                await conn.close()

        return run_sync(query())

    def activity(self, person: str) -> list[str]:
        """A person's activity log, oldest first, one `kind: summary` line each (diagnostics)."""

        async def query() -> list[str]:
            conn = await connect(self.database_url, self.app_id)
            try:
                rows = await conn.fetch(
                    "SELECT kind, summary FROM activity WHERE person = $1 ORDER BY at, id", person
                )
            finally:
                await conn.close()
            return [f"{r['kind']}: {r['summary']}" for r in rows]

        return run_sync(query())

    def outbox(self) -> tuple[dict[tuple[str, str], tuple[str, str]], dict[str, list[float]]]:
        """(person, template) -> (status, last error) of every outbox row, and each message's
        claim times."""

        async def query() -> tuple[dict[tuple[str, str], tuple[str, str]], dict[str, list[float]]]:
            conn = await connect(self.database_url, self.app_id)
            try:
                rows = await conn.fetch(
                    "SELECT person, template, status, coalesce(last_error, '') AS error FROM outbox"
                )
                claims = await conn.fetch(
                    "SELECT message_id, extract(epoch FROM at)::float8 AS at"
                    " FROM message_events WHERE status = 'sending'"
                )
            finally:
                await conn.close()
            attempts: dict[str, list[float]] = {}
            for claim in claims:
                attempts.setdefault(claim["message_id"], []).append(claim["at"])
            return {(r["person"], r["template"]): (r["status"], r["error"]) for r in rows}, attempts

        return run_sync(query())

    def message_events(self, message_ids: list[str]) -> dict[str, list[tuple[float, str, str]]]:
        """Each message's status timeline: (when, status, detail), oldest first (diagnostics)."""

        async def query() -> dict[str, list[tuple[float, str, str]]]:
            conn = await connect(self.database_url, self.app_id)
            try:
                rows = await conn.fetch(
                    "SELECT message_id, extract(epoch FROM at)::float8 AS at, status,"
                    " coalesce(detail, '') AS detail FROM message_events"
                    " WHERE message_id = ANY($1::text[]) ORDER BY at, id",
                    message_ids,
                )
            finally:
                await conn.close()
            found: dict[str, list[tuple[float, str, str]]] = {}
            for r in rows:
                found.setdefault(r["message_id"], []).append((r["at"], r["status"], r["detail"]))
            return found

        return run_sync(query())

    def count(
        self,
        case: str,
        *,
        size: FaultSize,
        seed: int,
        faults: int,
        stats: LoadStats,
        since: float,
        notes: tuple[str, ...] = (),
    ) -> CaseResult:
        """Wait until everything arrived or the deadline (the target, plus the campaign's wait,
        after `since`) passed, let late copies arrive, and count."""
        accepted = stats.accepted
        within = size.within_seconds + WAIT_SECONDS
        emails_after, read_model_after = self.wait_for_completion(accepted, since, within)
        time.sleep(size.settle_seconds)
        mails = self.mails()
        people, entered = self.read_model(accepted)
        rows, attempts = self.outbox()
        notes = (*notes, *(text for _, text in self.timeline if "by itself" in text or "carried on" in text))
        origin = self.timeline[0][0] if self.timeline else since
        if len(self.timeline) > 1:
            notes = (*notes, "timeline (s after the first worker was ready): " + "; ".join(
                f"+{at - origin:.1f} {text}" for at, text in self.timeline[1:]))
        starts = self.restart_seconds()
        if starts:
            notes = (*notes, "worker starts took " + ", ".join(f"{s:.1f}" for s in starts) + " s")
        statuses: Counter[str] = Counter()
        no_row = 0
        for template in TEMPLATES:
            lost = lost_people(template, accepted, mails)
            errors: Counter[str] = Counter()
            for person in lost:
                row = rows.get((person, template))
                if row is None:
                    no_row += 1
                else:
                    statuses[row[0]] += 1
                    if row[1]:
                        errors[row[1]] += 1
            if lost:
                notes = (*notes, f"{template} lost for: " + ", ".join(
                    f"{p} (accepted +{stats.accepted_at[p] - origin:.1f})" if p in stats.accepted_at
                    else p for p in lost[:10]) + (" ..." if len(lost) > 10 else ""))
            # What the engine recorded for the first two.
            for person in lost[:2]:
                row = rows.get((person, template))
                notes = (*notes, f"activity of {person} ({template} row: "
                         f"{row[0] if row else 'none'}): "
                         + (" | ".join(self.activity(person)) or "none"))
            notes = (*notes, *(f"{template} rows' last error ({n}x): {e}" for e, n in errors.items()))
        duplicate_metric = self.duplicate_metric()
        copies: dict[str, list[Mail]] = {}
        for mail in mails:
            copies.setdefault(mail.message_id, []).append(mail)
        duplicated = [m for m, got in copies.items() if len(got) > 1][:3]
        for message_id, events in self.message_events(duplicated).items():
            got = copies[message_id]
            notes = (*notes, f"duplicate {got[0].template} of {got[0].person}: copies at "
                     + ", ".join(f"+{m.at - origin:.1f}" for m in got) + "; outbox: "
                     + "; ".join(f"+{at - origin:.1f} {status} {detail}".strip()
                                 for at, status, detail in events))
        missing = sorted(set(accepted) - set(people))
        if missing:
            notes = (*notes, f"not in `people`: {', '.join(missing[:10])}"
                     + (" ..." if len(missing) > 10 else ""))
        unentered = sorted(p for p in accepted if entered.get(p, 0) == 0)
        if unentered:
            notes = (*notes, f"no `entered` event: {', '.join(unentered[:10])}"
                     + (" ..." if len(unentered) > 10 else ""),
                     f"activity of {unentered[0]}: " + (" | ".join(self.activity(unentered[0])) or "none"))
        return CaseResult(
            case=case,
            size=size.name,
            faults=faults,
            seed=seed,
            started=stats.started,
            accepted=len(accepted),
            server_errors=stats.server_errors,
            client_retries=stats.retries,
            emails=tuple(count_template(t, accepted, mails, since=since) for t in TEMPLATES),
            read_model=count_read_model(accepted, people, entered),
            read_model_after=read_model_after,
            emails_after=emails_after,
            exposed=exposed_messages(first_accepted_at(mails), attempts),
            lost_outbox=OutboxState(no_row=no_row, by_status=dict(statuses)),
            unfinished=sum(1 for status, _ in rows.values() if status in ("queued", "sending")),
            within=within,
            duplicate_metric=duplicate_metric,
            notes=notes,
        )


def with_note(result: CaseResult, note: str) -> CaseResult:
    """The same result with one more note line."""
    return replace(result, notes=(*result.notes, note))



def scrape_counter(port: int, name: str, host: str = "127.0.0.1") -> float | None:
    """A counter's total over all its labels from a worker's /metrics (None: absent or no answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return sum(s.value for s in family.samples if s.name == f"{name}_total")
    return None

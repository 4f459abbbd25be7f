"""Settings: read from NUDGE_* by pydantic-settings, secrets never printed."""

from __future__ import annotations

import pytest

from streams.settings import Settings, SettingsError

SECRETS = {
    "NUDGE_API_KEY": "api-key-0123456789",
    "NUDGE_READ_API_KEY": "read-key-0123456789",
    "NUDGE_SEND_API_KEY": "send-key-0123456789",
    "NUDGE_SEGMENT_WRITE_KEY": "segment-key-0123456789",
    "NUDGE_WEBHOOK_SECRET": "webhook-secret-0123456789",
    "NUDGE_SECRET_KEY": "link-secret-0123456789-0123456789",
    "NUDGE_SECRET_KEY_PREVIOUS": "old-link-secret-0123456789-0123456789",
    "NUDGE_CONSOLE_PASSWORD": "console-password-0123456789",
    "NUDGE_DATABASE_URL": "postgresql://nudge:db-password-0123456789@db.internal:5432/nudge",
    "NUDGE_SMTP_URL": "smtp://mailer:smtp-password-0123456789@relay.internal:587?starttls=true",
}
PASSWORDS = ("db-password-0123456789", "smtp-password-0123456789")


def _leaks(text: str) -> list[str]:
    values = [v for k, v in SECRETS.items() if not k.endswith("_URL")] + list(PASSWORDS)
    return [value for value in values if value in text]


def test_repr_and_str_show_no_secret() -> None:
    settings = Settings.from_env(SECRETS)
    assert _leaks(repr(settings)) == []
    assert _leaks(str(settings)) == []


def test_model_dump_shows_no_secret_in_python_or_json_mode() -> None:
    settings = Settings.from_env(SECRETS)
    assert _leaks(str(settings.model_dump())) == []
    assert _leaks(settings.model_dump_json()) == []


def test_a_dumped_url_keeps_everything_but_its_password() -> None:
    dumped = Settings.from_env(SECRETS).model_dump()
    assert dumped["database_url"] == "postgresql://nudge:**********@db.internal:5432/nudge"
    assert dumped["smtp_url"] == "smtp://mailer:**********@relay.internal:587?starttls=true"


def test_the_code_still_reads_each_secret() -> None:
    settings = Settings.from_env(SECRETS)
    assert settings.api_key.get_secret_value() == SECRETS["NUDGE_API_KEY"]
    assert settings.smtp.password == "smtp-password-0123456789"
    assert settings.database_url == SECRETS["NUDGE_DATABASE_URL"]


def test_settings_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_PARTITIONS", "9")
    assert Settings().partitions == 9
    assert Settings.from_env().partitions == 9


def test_from_env_with_a_mapping_reads_only_that_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_PARTITIONS", "9")
    assert Settings.from_env({}).partitions == 4
    assert Settings.from_env({"NUDGE_PARTITIONS": "12"}).partitions == 12


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="NUDGE_HTTP_PORT"):
        Settings.from_env({"NUDGE_HTTP_PORT": "eighty"})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ValueError):
        settings.partitions = 8  # type: ignore[misc]

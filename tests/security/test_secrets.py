"""Secrets are required where they matter, made once by `nudge dev`, and rotatable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from agents.sender.links import LinkSignatureError, sign, verify_with_keys
from streams.cli.dev_secrets import GENERATED, SECRETS_FILE, dev_environment, dev_secrets
from streams.settings import DEV_API_KEY, DEV_SECRET_KEY, Settings, SettingsError, require_secrets

GOOD = {"secret_key": "s" * 40, "api_key": "track-key-0123456789"}


def run_api(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    return subprocess.run([sys.executable, "-m", "streams.cli", "api"], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_the_api_refuses_to_start_without_a_secret_key_and_says_how_to_make_one():
    done = run_api({"NUDGE_API_KEY": "track-key-0123456789", "NUDGE_HTTP_PORT": "1"})
    assert done.returncode != 0
    assert "NUDGE_SECRET_KEY is not set" in done.stderr
    assert "secrets.token_urlsafe(32)" in done.stderr


def test_the_api_refuses_the_documented_development_values():
    done = run_api({"NUDGE_SECRET_KEY": DEV_SECRET_KEY, "NUDGE_API_KEY": DEV_API_KEY})
    assert done.returncode != 0
    assert "NUDGE_SECRET_KEY" in done.stderr and "NUDGE_API_KEY" in done.stderr


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"secret_key": "short"}, "NUDGE_SECRET_KEY is shorter than 32"),
        ({"read_api_key": "track-key-0123456789"}, "NUDGE_READ_API_KEY is the same as NUDGE_API_KEY"),
        ({"send_api_key": "abc"}, "NUDGE_SEND_API_KEY is shorter than 12"),
        ({"secret_key_previous": "p" * 40}, "without NUDGE_SECRET_KEY_PREVIOUS_UNTIL"),
        ({"tls_cert": "/tmp/cert.pem"}, "NUDGE_TLS_CERT and NUDGE_TLS_KEY must be set together"),
    ],
)
def test_weak_shared_or_half_set_secrets_are_refused(overrides, problem):
    with pytest.raises(SettingsError, match=problem):
        require_secrets(Settings(**{**GOOD, **overrides}), api=True)


def test_a_worker_needs_the_link_key_but_not_the_api_keys():
    require_secrets(Settings(secret_key="s" * 40), api=False)
    with pytest.raises(SettingsError, match="NUDGE_SECRET_KEY"):
        require_secrets(Settings(), api=False)


def test_good_secrets_pass():
    require_secrets(Settings(**GOOD, read_api_key="read-key-0123456789"), api=True)


def test_nudge_dev_makes_each_key_once_and_keeps_it_private(tmp_path):
    first = dev_secrets(tmp_path)
    assert set(first) == set(GENERATED) and len(set(first.values())) == len(GENERATED)
    assert all(len(value) >= 32 for value in first.values())
    assert dev_secrets(tmp_path) == first
    assert stat.S_IMODE((tmp_path / SECRETS_FILE).stat().st_mode) == 0o600
    require_secrets(Settings.from_env(dev_environment({}, tmp_path)), api=True)


def test_a_key_set_in_the_environment_wins_over_the_kept_one(tmp_path):
    env = dev_environment({"NUDGE_SECRET_KEY": "mine" * 10}, tmp_path)
    assert env["NUDGE_SECRET_KEY"] == "mine" * 10
    assert env["NUDGE_API_KEY"] == dev_secrets(tmp_path)["NUDGE_API_KEY"]


def test_links_signed_with_the_previous_key_work_until_its_window_ends():
    settings = Settings(secret_key="new" * 12, secret_key_previous="old" * 12, secret_key_previous_until=2000.0)
    old_link = sign("old" * 12, "unsubscribe", "m1", "ana")
    assert verify_with_keys(settings.link_keys(1999.0), old_link, "unsubscribe").person == "ana"
    with pytest.raises(LinkSignatureError):
        verify_with_keys(settings.link_keys(2000.0), old_link, "unsubscribe")
    new_link = sign("new" * 12, "unsubscribe", "m1", "ana")
    assert verify_with_keys(settings.link_keys(5000.0), new_link, "unsubscribe").person == "ana"


def test_the_rotation_window_reads_iso_8601():
    settings = Settings.from_env({"NUDGE_SECRET_KEY_PREVIOUS_UNTIL": "2026-03-01T00:00:00Z"})
    assert settings.secret_key_previous_until == 1772323200.0


def test_a_link_forged_with_the_development_key_is_refused_by_a_real_deployment():
    forged = sign(DEV_SECRET_KEY, "click", "m1", "ana", "https://evil.example")
    with pytest.raises(LinkSignatureError):
        verify_with_keys(Settings(secret_key="s" * 40).link_keys(0.0), forged, "click", "https://evil.example")

"""Console sessions and CSRF tokens: signed, expiring, bound to the secret and the password."""

from __future__ import annotations

from streams.console import sessions

KEY = sessions.session_key("secret", "password")


def test_a_session_token_reads_back_as_its_user_until_it_expires() -> None:
    token = sessions.issue_session(KEY, "ana", now=1000.0, lifetime=60.0)
    found = sessions.read_session(KEY, token, now=1059.0)
    assert found is not None and found.user == "ana"
    assert sessions.read_session(KEY, token, now=1060.0) is None


def test_a_tampered_token_is_refused() -> None:
    token = sessions.issue_session(KEY, "ana", now=1000.0, lifetime=60.0)
    user, expires, nonce, signature = token.split(".")
    assert sessions.read_session(KEY, f"admin.{expires}.{nonce}.{signature}", now=1000.0) is None
    assert sessions.read_session(KEY, f"{user}.99999999.{nonce}.{signature}", now=1000.0) is None
    assert sessions.read_session(KEY, "garbage", now=1000.0) is None
    assert sessions.read_session(KEY, None, now=1000.0) is None


def test_changing_the_password_or_the_secret_ends_every_session() -> None:
    token = sessions.issue_session(KEY, "ana", now=1000.0, lifetime=60.0)
    assert sessions.read_session(sessions.session_key("secret", "new password"), token, now=1000.0) is None
    assert sessions.read_session(sessions.session_key("other secret", "password"), token, now=1000.0) is None


def test_user_names_with_dots_survive_the_token() -> None:
    token = sessions.issue_session(KEY, "ana.lima@example.com", now=0.0, lifetime=60.0)
    found = sessions.read_session(KEY, token, now=1.0)
    assert found is not None and found.user == "ana.lima@example.com"


def test_the_csrf_token_belongs_to_one_nonce() -> None:
    token = sessions.csrf_token(KEY, "nonce-a")
    assert sessions.csrf_ok(KEY, "nonce-a", token)
    assert not sessions.csrf_ok(KEY, "nonce-b", token)
    assert not sessions.csrf_ok(KEY, "nonce-a", None)
    assert not sessions.csrf_ok(KEY, None, token)


def test_credentials_need_both_parts_and_a_password_set() -> None:
    assert sessions.credentials_ok("admin", "pw", "admin", "pw")
    assert not sessions.credentials_ok("admin", "wrong", "admin", "pw")
    assert not sessions.credentials_ok("root", "pw", "admin", "pw")
    assert not sessions.credentials_ok("admin", "", "admin", "")

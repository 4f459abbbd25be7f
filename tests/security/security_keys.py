"""Who holds which key in the security suite, and which credential each route scheme admits."""

from __future__ import annotations

import base64

KEYS = {
    "api_key": "sec-track-key-0123456789",
    "read_api_key": "sec-read-key-0123456789",
    "send_api_key": "sec-send-key-0123456789",
    "segment_write_key": "sec-write-key-0123456789",
    "browser_write_key": "sec-browser-key-0123456789",
}
SECRET = "sec-link-secret-0123456789-0123456789"


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# Every credential a caller could hold, as the Authorization header it sends.
CREDENTIALS = {
    "none": None,
    "wrong": basic("sec-site", "not-a-key"),
    "track": basic("sec-site", KEYS["api_key"]),
    "read": f"Bearer {KEYS['read_api_key']}",
    "send": f"Bearer {KEYS['send_api_key']}",
    "segment": basic(KEYS["segment_write_key"]),
    "browser": basic(KEYS["browser_write_key"]),
}
# The credential scheme of an operation (streams/http/auth.py) -> the credentials it admits.
ADMITS = {
    "trackBasic": {"track"},
    "readKey": {"read"},
    "sendKey": {"send"},
    "writeKey": {"segment", "browser"},
    "webhookSignature": {"segment"},
}

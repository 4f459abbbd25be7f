"""The sender's surface for the HTTP edge: messages, their signed links, suppressions, preferences.

`streams/http` reaches the sender only through this module (tests/unit/test_layers.py): the
transactional API inserts into the outbox and reads a message's status; the links inside emails
verify their token, then record the engagement, the unsubscribe or the chosen topics.
"""

from __future__ import annotations

from agents.sender.delivery import INLINE_TEMPLATE, OVERRIDES_KEY
from agents.sender.links import LinkClaims, LinkKind, LinkSignatureError, verify_with_keys
from agents.sender.outbox import insert_sends, message_status, record_event
from agents.sender.people import PeopleTableMissing, person_profile
from agents.sender.preferences import preferences_of, set_preferences
from agents.sender.suppression import list_suppressions, suppress, unsuppress

__all__ = [
    "INLINE_TEMPLATE",
    "OVERRIDES_KEY",
    "LinkClaims",
    "LinkKind",
    "LinkSignatureError",
    "PeopleTableMissing",
    "insert_sends",
    "list_suppressions",
    "message_status",
    "person_profile",
    "preferences_of",
    "record_event",
    "set_preferences",
    "suppress",
    "unsuppress",
    "verify_with_keys",
]

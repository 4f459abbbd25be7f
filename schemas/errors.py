"""Nudge's one exception tree: catch `NudgeError` for anything Nudge raises on purpose.

    NudgeError
     ├── ConfigurationError   the operator's setup is wrong: settings, campaign, segment,
     │                        template and events.yaml files, topics, migrations, manifests
     ├── InputError           what came in is wrong: an event, an HTTP request, an address, a
     │                        duration, a signed link, a file handed to a command (a ValueError)
     ├── DeliveryError        a message or record was not delivered: SMTP, webhooks, Kafka
     ├── StateError           the running system is not in a state to do it: a database down or
     │                        not migrated, a partition owned elsewhere, stored bytes unreadable
     └── ApiError             (streams/http/errors.py) the HTTP edge's answer: a status and a
                              message, made from one of the branches above or a refusal of its own

Four branches and their leaves, no deeper (the SMTP relay's refusals are the one extra level).
Each leaf keeps the built-in base its callers already catch (`ValueError`, `RuntimeError`,
`OSError`, ...) beside its branch, so `except ValueError` around a parser still works. Each
message says what to do next; the branch docstrings say who acts.

This module lives in `schemas/`, the lowest layer, so every other layer can import it.
"""

from __future__ import annotations


class NudgeError(Exception):
    """Anything Nudge raises on purpose; the message says what to do about it."""


class ConfigurationError(NudgeError):
    """The operator's setup is wrong: fix the named setting or file, then restart or reload."""


class InputError(NudgeError, ValueError):
    """What came in is wrong: the sender of that input fixes it (the message names the field).

    A `ValueError`, so pydantic validators that raise one turn it into a validation error.
    """


class DeliveryError(NudgeError):
    """A message or record was not delivered; retried where worth it, else dead-lettered."""


class StateError(NudgeError):
    """The system is not in a state to do this yet: start, migrate or rebalance, then retry."""

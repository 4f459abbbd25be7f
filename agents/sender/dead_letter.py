"""What goes on the dead-letter topic (`<app_id>-dead-letter`) when a message fails for good."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict

from schemas.commands import SendEmail


class DeadLetter(BaseModel):
    """A permanently failed message: the SMTP code (0 if none), the reason, and the command."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    code: int
    reason: str
    attempts: int
    command: SendEmail


# Publish one letter, keyed by message id; the sender's Faust shell provides it.
PublishDeadLetter = Callable[[DeadLetter], Awaitable[None]]

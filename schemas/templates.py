"""Email templates: what a template file holds, and what rendering one produces."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EmailTemplate(BaseModel):
    """A template: Jinja2 source for subject, HTML body and optional text part, plus headers."""

    model_config = ConfigDict(frozen=True)

    id: str
    subject: str
    body: str
    text: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    preheader: str | None = None
    layout: str | None = None
    # The subscription topic of the messages (preferences page); None: any marketing email.
    topic: str | None = None
    # A content hash, so a send names exactly the template text it was rendered from.
    version: str = ""


class RenderedEmail(BaseModel):
    """A template rendered for one person: ready to become a MIME message."""

    model_config = ConfigDict(frozen=True)

    subject: str
    html: str
    text: str
    from_address: str | None = None
    reply_to: str | None = None

"""The email a message is, rendered again for the "why" page: subject, HTML and text.

Rendered from the send command's frozen context (attributes and trigger event as they were at
decision time) with the template as it is in the folder now, without tracking links or the open
pixel, so looking at a message never counts as opening it. When the template changed since the
message was sent, the page says so: `version` is the template's version now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.render.email import TemplateRenderError, render_email
from agents.render.errors import TemplateFileError
from agents.render.sandbox import RenderLimits
from agents.render.template_files import load_templates
from agents.sender.delivery import resolve_template
from schemas.outbox import OutboxRow

# Links in the preview go nowhere: clicking one must not unsubscribe anybody.
_INERT_LINK = "#preview"


@dataclass(frozen=True)
class Preview:
    """The rendered message, or why it could not be rendered."""

    template_version: str | None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    error: str | None = None


def preview(row: OutboxRow, templates_dir: Path, limits: RenderLimits = RenderLimits()) -> Preview:
    """Render `row`'s template with its context; errors become `Preview.error`, never exceptions."""
    try:
        templates = load_templates(templates_dir)
    except TemplateFileError as exc:
        return Preview(None, error=f"the templates folder has a broken file: {exc}")
    template = resolve_template(row, templates)
    if template is None:
        return Preview(None, error=f"template {row.template!r} is not in {templates_dir} any more")
    try:
        rendered = render_email(
            template, row.command.context, unsubscribe_url=_INERT_LINK, preferences_url=_INERT_LINK,
            limits=limits,
        )
    except TemplateRenderError as exc:
        return Preview(template.version or None, error=str(exc))
    return Preview(template.version or None, rendered.subject, rendered.html, rendered.text)

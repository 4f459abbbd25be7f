"""Errors of the render side: a template that cannot render, a template file that cannot load."""

from __future__ import annotations

from schemas.errors import ConfigurationError


class TemplateRenderError(ConfigurationError):
    """A template failed to render for one message; the message names the template, part and reason:
    fix the template (`nudge campaigns check` finds most such problems before a send)."""

    def __init__(self, template_id: str, part: str, reason: str) -> None:
        self.template_id = template_id
        self.part = part
        self.reason = reason
        super().__init__(f"template {template_id!r} ({part}) failed to render: {reason}")


class TemplateFileError(ConfigurationError, ValueError):
    """A template file is malformed; the message names the file and what is wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

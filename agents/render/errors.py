"""Errors of the render side: a template that cannot render, a template file that cannot load."""

from __future__ import annotations


class TemplateRenderError(Exception):
    """A template failed to render for one message; the message names the template, part and reason."""

    def __init__(self, template_id: str, part: str, reason: str) -> None:
        self.template_id = template_id
        self.part = part
        self.reason = reason
        super().__init__(f"template {template_id!r} ({part}) failed to render: {reason}")


class TemplateFileError(ValueError):
    """A template file is malformed; the message names the file and what is wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

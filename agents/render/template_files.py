"""Load `templates/*.html` (YAML front matter + Jinja2 HTML body, optional sibling `.txt`).

A template naming `layout: NAME` in its front matter is wrapped in `templates/layouts/NAME.html`
(see agents/render/layouts.py) when it is loaded.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml

from agents.render.email import check_template
from agents.render.errors import TemplateFileError, TemplateRenderError
from agents.render.layouts import LAYOUTS_FOLDER, apply_layout, load_layouts
from schemas.templates import EmailTemplate

__all__ = ["TemplateFileError", "load_templates", "parse_template"]

# Front matter key -> EmailTemplate field.
_KEYS = {
    "subject": "subject",
    "from": "from_address",
    "reply_to": "reply_to",
    "preheader": "preheader",
    "layout": "layout",
    "topic": "topic",
}


def _split_front_matter(source: str, where: str) -> tuple[str, str]:
    lines = source.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise TemplateFileError(
            where, "must start with a '---' line opening the front matter (subject: ...)"
        )
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise TemplateFileError(where, "front matter is not closed by a second '---' line")


_PLAIN_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):[ \t]*(.*?)[ \t]*$")


def _plain_front_matter(header: str) -> dict[str, str] | None:
    """`key: value` lines read literally (a value in matching quotes loses them); None unless
    every line has that shape."""
    meta: dict[str, str] = {}
    for line in header.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _PLAIN_LINE.match(line)
        if match is None:
            return None
        value = match[2]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        meta[match[1]] = value
    return meta


def parse_template(
    template_id: str,
    source: str,
    text: str | None = None,
    *,
    where: str | None = None,
    layouts: dict[str, str] | None = None,
) -> EmailTemplate:
    """Parse one template's source (front matter + body) and optional text part; check its syntax.

    `layouts` (name -> layout source) resolves a `layout:` key; without it, naming one is an error.
    """
    where = where or template_id
    header, body = _split_front_matter(source, where)
    try:
        meta = yaml.safe_load(header) if header.strip() else {}
    except yaml.YAMLError as exc:
        # `subject: Hi {{ name | default: "there" }}` is not YAML, but is what people write.
        meta = _plain_front_matter(header)
        if meta is None:
            raise TemplateFileError(where, f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise TemplateFileError(where, "front matter must be a mapping of key: value lines")
    unknown = sorted(set(map(str, meta)) - set(_KEYS))
    if unknown:
        raise TemplateFileError(
            where,
            f"unknown front matter key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}",
        )
    if not isinstance(meta.get("subject"), str) or not meta["subject"].strip():
        raise TemplateFileError(where, "front matter needs a non-empty 'subject'")
    fields: dict[str, str] = {}
    for key, field in _KEYS.items():
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise TemplateFileError(where, f"{key!r} must be a string, got {value!r}")
        fields[field] = value
    digest = hashlib.sha256(source.encode("utf-8"))
    if text is not None:
        digest.update(b"\0" + text.encode("utf-8"))
    body = body.strip("\n")
    layout_name = fields.get("layout")
    if layout_name is not None:
        available = layouts or {}
        if layout_name not in available:
            raise TemplateFileError(
                where,
                f"layout {layout_name!r} not found; put it in {LAYOUTS_FOLDER}/{layout_name}.html"
                + (f" (known: {', '.join(sorted(available))})" if available else ""),
            )
        # The layout is part of what was sent: it changes the version too.
        digest.update(b"\0layout\0" + available[layout_name].encode("utf-8"))
        body = apply_layout(body, available[layout_name])
    template = EmailTemplate(
        id=template_id,
        body=body,
        text=text,
        version=digest.hexdigest()[:12],
        **fields,
    )
    try:
        check_template(template)
    except TemplateRenderError as exc:
        raise TemplateFileError(where, f"{exc.part}: {exc.reason}") from exc
    return template


def load_templates(directory: Path) -> dict[str, EmailTemplate]:
    """Load every `*.html` template in `directory` (not subfolders), keyed by file stem.

    A missing folder means no templates: each send then fails visibly as an unknown template,
    rather than the whole delivery side refusing to start.
    """
    if not directory.is_dir():
        return {}
    layouts = load_layouts(directory / LAYOUTS_FOLDER)
    templates: dict[str, EmailTemplate] = {}
    for path in sorted(directory.glob("*.html")):
        try:
            source = path.read_text(encoding="utf-8")
            text_path = path.with_suffix(".txt")
            text = text_path.read_text(encoding="utf-8") if text_path.exists() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateFileError(str(path), f"cannot read: {exc}") from exc
        templates[path.stem] = parse_template(
            path.stem, source, text, where=str(path), layouts=layouts
        )
    return templates


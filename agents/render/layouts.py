"""Layouts: a shared HTML frame (`templates/layouts/NAME.html`) that a template's body fills.

A layout marks where the body goes with `{{ content }}` or an empty `{% block content %}`.
The two are combined into one Jinja2 source at load time: the body renders first into
`content` (already escaped Markup, so the layout prints it as is), then the layout renders
with the same variables, so a layout can use `customer`, `unsubscribe_url` and so on too.
"""

from __future__ import annotations

import re
from pathlib import Path

from agents.render.errors import TemplateFileError

LAYOUTS_FOLDER = "layouts"

_BLOCK = re.compile(
    r"\{%-?\s*block\s+content\s*-?%\}.*?\{%-?\s*endblock(?:\s+content)?\s*-?%\}", re.DOTALL
)
_CONTENT = re.compile(r"\{\{-?\s*content\s*(\|[^}]*)?-?\}\}")


def check_layout(name: str, source: str) -> str:
    """The layout source with a block placeholder turned into `{{ content }}`; error without one."""
    normalized = _BLOCK.sub("{{ content }}", source)
    if not _CONTENT.search(normalized):
        raise TemplateFileError(
            name, "a layout needs a {{ content }} (or {% block content %}{% endblock %}) placeholder"
        )
    return normalized


def apply_layout(body: str, layout: str) -> str:
    """One Jinja2 source: `body` captured as `content`, then the layout around it."""
    return "{% set content %}" + body + "{% endset %}" + layout


def load_layouts(directory: Path) -> dict[str, str]:
    """Every `*.html` layout in `directory` by file stem (none if the folder is missing)."""
    if not directory.is_dir():
        return {}
    layouts: dict[str, str] = {}
    for path in sorted(directory.glob("*.html")):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateFileError(str(path), f"cannot read: {exc}") from exc
        layouts[path.stem] = check_layout(str(path), source)
    return layouts

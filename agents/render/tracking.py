"""Engagement tracking in rendered HTML: click-tracked links and an open pixel (pure).

Only http(s) links are rewritten; `mailto:`, anchors, Nudge's own links (unsubscribe,
preferences) and links marked `data-nudge-track="false"` stay as they are.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable

_HREF = re.compile(
    r"""(<a\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')([^>]*>)""", re.IGNORECASE | re.DOTALL
)
_NO_TRACK = re.compile(r"""data-nudge-track\s*=\s*["']?false""", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def rewrite_links(html: str, track: Callable[[str], str], *, keep_prefix: str) -> str:
    """Replace each trackable link's href with `track(url)`; links under `keep_prefix` are kept."""

    def replace(match: re.Match[str]) -> str:
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        url = html_lib.unescape(raw).strip()
        tag = match.group(0)
        if (
            not url.lower().startswith(("http://", "https://"))
            or (keep_prefix and url.startswith(keep_prefix))
            or _NO_TRACK.search(tag)
        ):
            return tag
        return f'{match.group(1)}"{html_lib.escape(track(url), quote=True)}"{match.group(4)}'

    return _HREF.sub(replace, html)


def add_open_pixel(html: str, pixel_url: str) -> str:
    """Append a 1x1 image that reports the open, before `</body>` when there is one."""
    img = (
        f'<img src="{html_lib.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    # The last </body>: a body may quote an earlier one.
    match = None
    for match in _BODY_CLOSE.finditer(html):  # noqa: B007 - the loop keeps the last match
        pass
    if match is None:
        return html + img
    return html[: match.start()] + img + html[match.start() :]

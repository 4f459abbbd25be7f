"""What browser SDKs fetch before they send: their settings, served for the public browser key.

- analytics.js (Segment's, and Customer.io's Data Pipelines snippet, a fork of it) loads
  `<cdnURL>/v1/projects/<writeKey>/settings`; pointing `cdnURL` at Nudge makes it send every
  call to Nudge's `/v1/...` routes.
- RudderStack's JS SDK loads `<configUrl>/sourceConfig/?writeKey=...`.

Only the browser key (NUDGE_BROWSER_WRITE_KEY) gets settings: the answer names the key, and
the server write key must never appear in a page.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from streams.http.auth import same
from streams.http.errors import ApiError
from streams.http.operations import Call, Operation

TAG = "Browser SDKs"


class SourceConfigQuery(BaseModel):
    """RudderStack's config request; only `writeKey` matters here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    writeKey: str | None = None


def _public_base(call: Call, public_url: str) -> tuple[str, str]:
    """(protocol, host) browsers should post to: NUDGE_PUBLIC_URL's."""
    protocol, _, rest = public_url.partition("://")
    return protocol or call.request.scheme, rest.rstrip("/") or call.request.host


def analytics_js_settings(api_host: str, protocol: str, write_key: str) -> dict[str, Any]:
    """The settings document analytics.js expects from its CDN, pointing it at Nudge."""
    return {
        "integrations": {
            "Segment.io": {"apiKey": write_key, "apiHost": f"{api_host}/v1", "protocol": protocol},
        },
        "plan": {"track": {"__default": {"enabled": True}}, "identify": {"__default": {"enabled": True}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


def browser_operations(browser_key: str | None, public_url: str) -> list[Operation]:
    """The settings routes of the browser SDKs."""

    def check(key: str | None) -> str:
        if not browser_key:
            raise ApiError(404, "no browser key is configured (NUDGE_BROWSER_WRITE_KEY)")
        if not key or not same(key, browser_key):
            raise ApiError(404, "unknown browser write key")
        return browser_key

    async def settings(call: Call) -> web.Response:
        key = check(call.path("write_key"))
        protocol, host = _public_base(call, public_url)
        return web.json_response(analytics_js_settings(host, protocol, key))

    async def source_config(call: Call) -> web.Response:
        key = check(call.query.writeKey)
        return web.json_response({
            "isHosted": False,
            "source": {
                "id": "nudge", "name": "Nudge", "writeKey": key, "enabled": True,
                "workspaceId": "nudge", "config": {}, "destinations": [],
            },
        })

    return [
        Operation("GET", "/v1/projects/{write_key}/settings", settings,
                  "analytics.js settings (its `cdnURL` pointed at Nudge)", TAG,
                  errors=(400, 403, 404), family="segment", cors=True),
        Operation("GET", "/sourceConfig/", source_config,
                  "RudderStack JS SDK source config (its `configUrl` pointed at Nudge)", TAG,
                  query=SourceConfigQuery, errors=(400, 403, 404), family="segment", cors=True),
    ]

"""The web console served by `nudge api`: its pages, behind its login, and the operator endpoints.

`register_console(app, settings, kafka_check)` adds everything to the API's aiohttp app: the
pages (Activity, People, Messages with their "why", Journeys, Campaigns, Segments, Broadcasts,
Events), the login, the static files, `/metrics` and `/ready`, a middleware that counts HTTP
requests by route, and the sampler of segment sizes. The console only reads: campaigns stay code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
from aiohttp import web

from agents.person.campaign_files import read_campaign_dir
from agents.person.campaign_set import campaign_version
from agents.person.campaign_source import folder_fingerprint
from agents.projector.queries import campaign_flow as flow_counts
from agents.projector.queries import event_catalog, journey_provenance, journeys_waiting
from agents.render.email import RenderLimits
from agents.sender.outbox import message_status
from schemas.campaigns import Campaign
from schemas.outbox import OutboxRow
from streams import metrics
from streams.console import queries
from streams.console.auth import SESSION_KEY, ConsoleAuth
from streams.console.flow import campaign_flow, campaign_summary, walk
from streams.console.preview import Preview, preview
from streams.console.readiness import Check, postgres_check, report, run_checks
from streams.console.render import (
    EMAIL_CSP,
    STATIC_DIR,
    STATIC_PREFIX,
    build_environment,
    page,
    security_headers,
)
from streams.database import DatabaseUnavailable, get_pool
from streams.file_watch import Fingerprint
from streams.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Segment sizes are sampled once per bucket and kept this long.
SEGMENT_SAMPLE_SECONDS = 300
SEGMENT_SAMPLE_DAYS = 30
SEGMENT_SAMPLE_FIRST_SECONDS = 30
LIVE_POLL_SECONDS = 1


def _text(request: web.Request, name: str) -> str | None:
    value = request.query.get(name, "").strip()
    return value or None


def _number(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"`{name}` must be an integer, got {raw[:20]!r}") from None


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route pattern (never the path: ids stay out of labels) and status."""
    started = time.perf_counter()
    route = "unmatched"
    info = request.match_info
    if info is not None and info.route is not None and info.route.resource is not None:
        route = info.route.resource.canonical
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.HTTP_REQUESTS.labels(route=route, method=request.method, status=str(status)).inc()
        metrics.HTTP_SECONDS.labels(route=route).observe(time.perf_counter() - started)


class Console:
    """The console's page handlers for one deployment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = build_environment()
        self.auth = ConsoleAuth(settings, self.env)
        self.limits = RenderLimits(settings.render_timeout_seconds, settings.render_max_chars)
        self._definitions: tuple[Fingerprint, tuple[list[Campaign], list[Any], list[str]]] | None = None

    # --- plumbing ------------------------------------------------------------------------

    def view(self, handler: Callable[[web.Request, asyncpg.Pool], Awaitable[web.StreamResponse]]) -> Handler:
        """A page behind the login, with the pool, and a readable answer when PostgreSQL is not there."""

        async def run(request: web.Request) -> web.StreamResponse:
            try:
                pool = await get_pool(self.settings)
                return await handler(request, pool)
            except DatabaseUnavailable as exc:
                return self.show(request, "problem.html", {"problem": str(exc)}, status=503)
            except asyncpg.UndefinedTableError as exc:
                problem = f"the read models are missing ({exc}); run `nudge migrate` or start a worker"
                return self.show(request, "problem.html", {"problem": problem}, status=503)

        return self.auth.guard(run)

    def show(
        self, request: web.Request, template: str, context: dict[str, Any], *, status: int = 200,
        json_keys: tuple[str, ...] | None = None,
    ) -> web.Response:
        """Render a page with what every page needs (the user, the logout token, the search box)."""
        session = request.get(SESSION_KEY)
        base = {
            "user": session.user if session is not None else None,
            "csrf": self.auth.csrf_for(session) if session is not None else "",
            "q": request.query.get("q", ""),
        }
        keys = json_keys if json_keys is not None else tuple(k for k in context if k != "problem") or ("problem",)
        return page(self.env, request, template, {**base, **context}, status=status, json_keys=keys)

    def not_found(self, request: web.Request, what: str) -> web.Response:
        """A 404 page naming what was not found."""
        return self.show(request, "problem.html", {"problem": what}, status=404, json_keys=("problem",))

    def definitions(self) -> tuple[list[Campaign], list[Any], list[str]]:
        """The campaigns and segments in the folder now, and the problems reading it (read again
        only when a file changed)."""
        now = folder_fingerprint(self.settings.campaigns_dir)
        if self._definitions is None or self._definitions[0] != now:
            found = read_campaign_dir(self.settings.campaigns_dir)
            self._definitions = (now, (found.campaigns, found.segments, found.problems))
        return self._definitions[1]

    # --- search ----------------------------------------------------------------------------

    async def search(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """The search box: a message id or person id goes straight there; else matching people."""
        text = (request.query.get("q") or "").strip()
        if not text:
            raise web.HTTPSeeOther("/people")
        message_id = queries.message_id_of(text)
        if await pool.fetchval("SELECT 1 FROM outbox WHERE message_id = $1", message_id):
            raise web.HTTPSeeOther(f"/messages/{message_id}")
        people = await queries.search_people(pool, text)
        exact = [p for p in people if p["person"] == text or (p["email"] or "").lower() == text.lower()]
        if len(exact) == 1:
            raise web.HTTPSeeOther(f"/people/{quote(exact[0]['person'], safe='')}")
        return self.show(request, "people.html", {"people": people, "total": None, "searched": text})

    # --- activity --------------------------------------------------------------------------

    def _activity_filters(self, request: web.Request) -> dict[str, str | None]:
        return {"person": _text(request, "person"), "kind": _text(request, "kind"), "event": _text(request, "event")}

    @staticmethod
    def _filter_qs(filters: dict[str, str | None]) -> str:
        return urlencode({k: v for k, v in filters.items() if v})

    async def activity(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """The live stream of inputs, newest first, filterable by person, kind and event name."""
        filters = self._activity_filters(request)
        before = _number(request, "before")
        rows = await queries.activity(pool, before=before, person=filters["person"], kind=filters["kind"],
                                      event=filters["event"])
        kinds = await queries.activity_kinds(pool)
        events = await queries.event_names(pool)
        newest = rows[0]["id"] if rows else 0
        return self.show(request, "activity.html", {
            "rows": rows, "filters": filters, "kinds": kinds, "events": events,
            "live": before is None, "after": max(newest, 0), "filter_qs": self._filter_qs(filters),
            "older": rows[-1]["id"] if len(rows) == queries.PAGE else None,
            "poll": LIVE_POLL_SECONDS,
        }, json_keys=("rows", "filters", "older"))

    async def activity_feed(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Inputs newer than `after` (for the live page): new rows and the next poll."""
        filters = self._activity_filters(request)
        after = _number(request, "after") or 0
        rows = await queries.activity(pool, after=after, limit=queries.MAX_PAGE, person=filters["person"],
                                      kind=filters["kind"], event=filters["event"])
        newest = rows[0]["id"] if rows else after
        return self.show(request, "activity_feed.html", {
            "rows": rows, "filters": filters, "after": newest, "poll": LIVE_POLL_SECONDS,
            "filter_qs": self._filter_qs(filters),
        }, json_keys=("rows", "after"))

    # --- people ----------------------------------------------------------------------------

    async def people(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """People matching the search, or the latest updated."""
        text = _text(request, "q")
        found = await (queries.search_people(pool, text) if text else queries.recent_people(pool))
        return self.show(request, "people.html", {
            "people": found, "total": await queries.count_people(pool), "searched": text,
        }, json_keys=("people", "total"))

    async def person(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """A person: attributes, events with properties, segments, journeys, messages."""
        person_id = request.match_info["id"]
        found = await queries.person(pool, person_id)
        if found is None:
            return self.not_found(request, f"nobody with the id {person_id!r} is known (yet)")
        return self.show(request, "person.html", {"person": found})

    # --- messages and why ----------------------------------------------------------------------

    async def messages(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Messages by id, person and status, newest first."""
        text, status, person = _text(request, "q"), _text(request, "status"), _text(request, "person")
        found = await queries.search_messages(pool, text=text, person=person, status=status)
        return self.show(request, "messages.html", {
            "messages": found, "status": status, "person": person, "searched": text,
            "statuses": ["queued", "sending", "sent", "failed"],
        }, json_keys=("messages",))

    async def why(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Why a message went out: trigger, campaign version, steps and what they saw, delivery."""
        message_id = queries.message_id_of(request.match_info["id"])
        status = await message_status(pool, message_id)
        if status is None:
            return self.not_found(request, f"no message {message_id!r} in the outbox")
        row = status.row
        journey = await self._journey(pool, row.journey_id) if row.journey_id else None
        definition = None
        if row.campaign_id and row.campaign_version:
            definition = await queries.campaign_definition(pool, row.campaign_id, row.campaign_version)
        rendered = await self._preview(row)
        context = row.command.context
        return self.show(request, "why.html", {
            "message": row.model_dump(mode="json", exclude={"command"}),
            "reason": row.command.reason,
            "transactional": row.command.transactional,
            "decided_at": row.command.decided_at,
            "trigger": {"name": context.event_name, "properties": context.event},
            "customer": context.customer,
            "timeline": [e.model_dump(mode="json") for e in status.events],
            "journey": journey,
            "definition": definition,
            "rendered": rendered,
        })

    async def _preview(self, row: OutboxRow) -> Preview:
        """Render the message again, off the event loop (templates are read from disk)."""
        return await asyncio.get_running_loop().run_in_executor(
            None, preview, row, self.settings.templates_dir, self.limits
        )

    async def email_html(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """The rendered HTML of a message, for the why page's sandboxed iframe only."""
        message_id = queries.message_id_of(request.match_info["id"])
        status = await message_status(pool, message_id)
        if status is None:
            raise web.HTTPNotFound(reason=f"no message {message_id!r}")
        rendered = await self._preview(status.row)
        html = rendered.html if rendered.html is not None else f"<p>{_escape(rendered.error or '')}</p>"
        response = web.Response(text=html, content_type="text/html")
        return security_headers(response, EMAIL_CSP)

    async def _journey(self, pool: asyncpg.Pool, journey_id: str) -> dict[str, Any] | None:
        provenance = await journey_provenance(pool, journey_id)
        if provenance is None:
            return None
        return {
            **provenance.journey.model_dump(mode="json"),
            "milestones": [m.model_dump(mode="json") for m in provenance.milestones],
            "steps": [s.model_dump(mode="json") for s in provenance.steps],
            "messages": await queries.journey_messages(pool, journey_id),
        }

    async def journey(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """A journey's provenance: entry, steps taken with what they saw, how it ended."""
        journey_id = request.match_info["id"]
        found = await self._journey(pool, journey_id)
        if found is None:
            return self.not_found(request, f"no journey {journey_id!r}")
        definition = await queries.campaign_definition(pool, found["campaign_id"], found["campaign_version"])
        return self.show(request, "journey.html", {"journey": found, "definition": definition})

    # --- campaigns -------------------------------------------------------------------------

    async def campaigns(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Every campaign in the folder with its journey totals."""
        campaigns, _, problems = self.definitions()
        totals = await queries.campaign_totals(pool)
        listed = [
            {"id": c.id, "name": c.name or c.id, "version": campaign_version(c),
             "summary": campaign_summary(c), "steps": len(c.steps), "totals": totals.get(c.id, {})}
            for c in sorted(campaigns, key=lambda c: c.id)
        ]
        gone = sorted(set(totals) - {c.id for c in campaigns})
        return self.show(request, "campaigns.html", {
            "campaigns": listed, "removed": [{"id": c, "totals": totals[c]} for c in gone], "problems": problems,
        })

    async def campaign(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """A campaign drawn from its YAML, with people per step, branch splits and send outcomes."""
        campaign_id = request.match_info["id"]
        campaigns, _, _ = self.definitions()
        found = next((c for c in campaigns if c.id == campaign_id), None)
        if found is None:
            return self.not_found(request, f"no campaign {campaign_id!r} in {self.settings.campaign_files_dir}")
        flow = campaign_flow(found)
        # Independent counts over the campaign's journeys and messages: at once, on several connections.
        counted, outcomes, all_totals, waiting = await asyncio.gather(
            flow_counts(pool, campaign_id), queries.step_outcomes(pool, campaign_id),
            queries.campaign_totals(pool, campaign_id), journeys_waiting(pool, campaign_id),
        )
        occupancy = {step.step: step for step in counted.steps}
        totals = all_totals.get(campaign_id, {})
        counts = {}
        for node in walk(flow):
            seen = occupancy.get(node.path)
            more = outcomes.get(node.path, {})
            counts[node.path] = {
                "now": seen.now if seen else 0, "reached": seen.reached if seen else 0,
                "exited": seen.exited if seen else 0, "arms": seen.arms if seen else {},
                "completed": more.get("completed", 0), "converted": more.get("converted", 0),
                "sends": more.get("sends", []),
            }
        versions: dict[str, int] = {}
        unplaced = 0
        for at_step in waiting:
            versions[at_step.campaign_version] = versions.get(at_step.campaign_version, 0) + at_step.journeys
            if at_step.position is None:
                unplaced += at_step.journeys
        return self.show(request, "campaign.html", {
            "campaign": {"id": found.id, "name": found.name or found.id, "description": found.description,
                         "version": campaign_version(found), "summary": campaign_summary(found)},
            "flow": flow, "counts": counts, "totals": totals,
            "versions": versions, "unplaced": unplaced,
        }, json_keys=("campaign", "flow", "counts", "totals", "versions", "unplaced"))

    async def campaign_step(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Who waits at one step of a campaign now."""
        campaign_id, path = request.match_info["id"], request.match_info["path"]
        waiting = await queries.waiting_people(pool, campaign_id, path)
        return self.show(request, "campaign_step.html", {"campaign_id": campaign_id, "path": path, "waiting": waiting})

    # --- segments, broadcasts, events ----------------------------------------------------------

    async def segments(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Every segment with its size now and over the last week."""
        _, defined, _ = self.definitions()
        sizes, history = await asyncio.gather(
            queries.segment_sizes(pool), queries.segment_history(pool, None, time.time() - 7 * 86400)
        )
        series: dict[str, list[float]] = {}
        for point in history:
            series.setdefault(point["segment"], []).append(float(point["members"]))
        described = {s.id: s for s in defined}
        listed = [
            {"id": sid, "name": (described[sid].name if sid in described else None) or sid,
             "members": sizes.get(sid, 0), "defined": sid in described,
             "manual": bool(described[sid].manual) if sid in described else False,
             "series": series.get(sid, [])}
            for sid in sorted(set(sizes) | set(described))
        ]
        return self.show(request, "segments.html", {"segments": listed})

    async def segment(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """A segment's members (paged by id) and its size over time."""
        segment_id = request.match_info["id"]
        after = _text(request, "after")
        members, history, size = await asyncio.gather(
            queries.segment_members(pool, segment_id, after=after),
            queries.segment_history(pool, segment_id, time.time() - 30 * 86400),
            queries.segment_size(pool, segment_id),
        )
        return self.show(request, "segment.html", {
            "segment_id": segment_id, "members": members, "size": size, "history": history,
            "next": members[-1]["person"] if len(members) == queries.PAGE else None,
        })

    async def broadcasts(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """Broadcasts and backfills with their progress."""
        return self.show(request, "broadcasts.html", {"broadcasts": await queries.broadcasts(pool)})

    async def broadcast(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """One broadcast's progress per partition and its messages by status."""
        broadcast_id = request.match_info["id"]
        found = await queries.broadcast(pool, broadcast_id)
        if found is None:
            return self.not_found(request, f"no broadcast {broadcast_id!r}")
        return self.show(request, "broadcast.html", {"broadcast": found})

    async def events(self, request: web.Request, pool: asyncpg.Pool) -> web.StreamResponse:
        """The event catalog: every event name, its properties and their types."""
        catalog = [e.model_dump(mode="json") for e in await event_catalog(pool)]
        return self.show(request, "events.html", {"events": catalog})

    async def home(self, request: web.Request) -> web.StreamResponse:
        """`/` goes to the activity page."""
        raise web.HTTPSeeOther("/activity")


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


async def sample_segments_forever(settings: Settings, every: float = SEGMENT_SAMPLE_SECONDS) -> None:
    """Record segment sizes once per bucket, for the Segments page's history.

    The first sample waits SEGMENT_SAMPLE_FIRST_SECONDS: a process that only lives briefly (a
    test's app) never opens the database for it, and a worker has time to migrate first.
    """
    await asyncio.sleep(SEGMENT_SAMPLE_FIRST_SECONDS)
    while True:
        try:
            pool = await get_pool(settings)
            await queries.sample_segment_sizes(pool, SEGMENT_SAMPLE_SECONDS, SEGMENT_SAMPLE_DAYS)
            pause = every
        except (DatabaseUnavailable, asyncpg.PostgresError, OSError) as exc:
            log.warning("segment sizes not sampled: %s", exc)
            pause = SEGMENT_SAMPLE_FIRST_SECONDS
        await asyncio.sleep(pause)


# (method, path, handler): "auth.*" are the login's own routes, the rest are pages behind it.
PAGES: list[tuple[str, str, str]] = [
    ("get", "/", "home"),
    ("get", "/login", "auth.login_page"),
    ("post", "/login", "auth.login"),
    ("post", "/logout", "auth.logout"),
    ("get", "/search", "search"),
    ("get", "/activity", "activity"),
    ("get", "/activity/feed", "activity_feed"),
    ("get", "/people", "people"),
    ("get", "/people/{id}", "person"),
    ("get", "/messages", "messages"),
    ("get", "/messages/{id}", "why"),
    ("get", "/messages/{id}/email", "email_html"),
    ("get", "/journeys/{id}", "journey"),
    ("get", "/campaigns", "campaigns"),
    ("get", "/campaigns/{id}", "campaign"),
    ("get", "/campaigns/{id}/steps/{path}", "campaign_step"),
    ("get", "/segments", "segments"),
    ("get", "/segments/{id}", "segment"),
    ("get", "/broadcasts", "broadcasts"),
    ("get", "/broadcasts/{id}", "broadcast"),
    ("get", "/events", "events"),
]


def console_routes() -> set[tuple[str, str]]:
    """(method, path) of every console page, its login and its static files."""
    # aiohttp names a static resource by its prefix.
    return {(method, path) for method, path, _ in PAGES} | {("get", STATIC_PREFIX)}


def register_console(app: web.Application, settings: Settings, kafka_check: Check | None = None) -> None:
    """Add the console, `/metrics`, `/ready` and request counting to the API's application."""
    console = Console(settings)
    auth = console.auth
    v = console.view
    # Outermost, so it sees the status every other middleware settled on.
    app.middlewares.insert(0, count_requests)
    for method, path, name in PAGES:
        if name.startswith("auth."):
            handler: Handler = getattr(auth, name.removeprefix("auth."))
        elif name == "home":
            handler = auth.guard(console.home)
        else:
            handler = v(getattr(console, name))
        app.router.add_route(method.upper(), path, handler)
    app.router.add_static(STATIC_PREFIX, STATIC_DIR, append_version=False)

    checks: dict[str, Check] = {"postgres": postgres_check(settings)}
    if kafka_check is not None:
        checks["kafka"] = kafka_check

    async def ready(request: web.Request) -> web.Response:
        status, body = report(await run_checks(checks))
        return web.json_response(body, status=status)

    async def metrics_page(request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.add_routes([web.get("/ready", ready), web.get("/metrics", metrics_page)])

    async def start_sampler(app: web.Application) -> Any:
        task = asyncio.create_task(sample_segments_forever(settings))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(start_sampler)
    if settings.console_password == Settings.model_fields["console_password"].default:
        log.warning(
            "the console uses the development password: set NUDGE_CONSOLE_USER and "
            "NUDGE_CONSOLE_PASSWORD before exposing %s", settings.public_url,
        )

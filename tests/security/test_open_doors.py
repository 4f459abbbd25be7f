"""Every route of both processes, requested without credentials: what answers, and what it tells.

Against a live worker and API that know a person (identify + event). The API's routes come
from its operations and the router itself (the console's pages included); the worker's are
every view Faust can serve. A route may answer without a key only if it is listed here, and
no answer without a key may contain the person's address or attributes.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from deploy.local import postgres
from deploy.local.runner import NudgeProcesses, delete_topics, nudge_env, wait_for

pytestmark = pytest.mark.integration

PERSON = f"door-{uuid.uuid4().hex[:8]}"
EMAIL = f"{PERSON}@example.com"
SECRET_ATTRIBUTE = "kept-private-" + uuid.uuid4().hex[:8]
# What may answer 2xx without credentials.
API_OPEN = {"/health", "/openapi.json", "/ready", "/metrics", "/o/{token}.gif", "/login"}
# The worker's web port serves health and metrics only (issue 12); `/` is Faust's liveness
# page, whose whole answer is checked below.
WORKER_OPEN = {"/", "/health", "/ready", "/metrics"}
# Every view Faust registers (faust/web/apps), with the tables and a real key filled in.
WORKER_PATHS = [
    "/", "/graph/", "/stats/", "/assignment/", "/router/", "/router/topics", "/router/people/",
    f"/router/people/{PERSON}/", "/table/", "/table/people/", f"/table/people/{PERSON}/",
    "/table/timers/", f"/table/timers/{PERSON}/", "/performance/", "/health", "/ready", "/metrics",
]


@pytest.fixture(scope="module")
def nudge(local_stack, tmp_path_factory, kafka_bootstrap) -> Iterator[NudgeProcesses]:
    root = tmp_path_factory.mktemp("doors")
    (root / "project" / "campaigns").mkdir(parents=True)
    name = f"nudge_test_{uuid.uuid4().hex[:12]}"
    env = nudge_env(
        app_id=f"d{uuid.uuid4().hex[:10]}", database_url=postgres.create_database(name),
        smtp_url="smtp://127.0.0.1:1", data_dir=root / "data", campaigns_dir=root / "project",
        kafka_bootstrap=kafka_bootstrap,
    )
    processes = NudgeProcesses(env, root / "logs")
    try:
        processes.start_api()
        processes.start_worker()
        assert processes.request("PUT", f"/api/v1/customers/{PERSON}", {"email": EMAIL, "note": SECRET_ATTRIBUTE}) == (200, {})
        wait_for(lambda: processes.request("GET", f"/api/v1/customers/{PERSON}/profile", key="read")[0] == 200,
                 60, what="the person to be projected")
        yield processes
    finally:
        processes.stop()
        delete_topics(kafka_bootstrap, env["NUDGE_APP_ID"])
        postgres.drop_database(name)


@pytest.fixture(scope="module")
def kafka_bootstrap(local_stack) -> str:
    from deploy.local import kafka

    return kafka.BOOTSTRAP


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect to the login page is a closed door
        return None


OPENER = urllib.request.build_opener(_NoRedirects)


def fetch(method: str, url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method in ("POST", "PUT") else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def api_routes() -> set[tuple[str, str]]:
    from streams.http.server import create_app
    from streams.settings import Settings

    class Nothing:
        async def publish(self, inputs) -> None:
            return None

    routes = set()
    for route in create_app(Settings(), Nothing()).router.routes():
        if route.method in ("HEAD", "OPTIONS") or route.resource is None:
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.resource.canonical)
        if "static" in path:
            continue
        routes.add((route.method, path))
    return routes


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: {"address": EMAIL, "token": "x.y"}.get(m.group(1), PERSON), path)


def test_without_credentials_only_the_listed_api_routes_answer_and_none_tells_about_a_person(nudge):
    answered, leaked = set(), []
    for method, path in sorted(api_routes()):
        status, body = fetch(method, nudge.base_url + concrete(path))
        if 200 <= status < 300:
            answered.add(path)
        if EMAIL in body or SECRET_ATTRIBUTE in body:
            leaked.append(f"{method} {path} -> {status}")
    assert leaked == []
    assert answered <= API_OPEN, sorted(answered - API_OPEN)


def test_the_worker_web_port_serves_only_health_and_metrics(nudge):
    base = f"http://127.0.0.1:{nudge.env['NUDGE_WORKER_WEB_PORT']}"
    answers = {path: fetch("GET", base + path) for path in WORKER_PATHS}
    leaked = [path for path, (_, body) in answers.items() if EMAIL in body or SECRET_ATTRIBUTE in body]
    answered = {path for path, (status, _) in answers.items() if 200 <= status < 300}
    assert leaked == []
    assert answered <= WORKER_OPEN, {path: answers[path][0] for path in sorted(answered - WORKER_OPEN)}
    assert answers["/"][1].replace(" ", "") in ('{"status":"OK"}', ""), answers["/"]

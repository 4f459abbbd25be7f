"""The layers of the code, read from its imports (ast), so a wrong-way import fails here.

    schemas         imports nothing of ours
    streams (core)  the Faust app, settings, database, Kafka helpers: may import schemas
    agents          may import schemas and streams core; its pure modules (PURE) reach no Faust,
                    aiokafka, asyncpg, aiosmtplib or aiohttp, even through what they import; an
                    agent uses another agent's pure modules only, never its shells
    deploy          the local stack and manifests: may import schemas and streams core
    streams edges   streams/http, streams/console, streams/cli, streams/worker.py: may import all
                    of the above; streams/http reaches agents only through GATEWAYS, one per concern

and no cycle between these components. Every import counts, including those inside functions.
The first half of this file is the checker, the second its rules applied to this tree, then the
checker's own tests on a made-up tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("schemas", "agents", "streams", "deploy")
IO_LIBRARIES = frozenset({"faust", "mode", "aiokafka", "asyncpg", "aiosmtplib", "aiohttp"})


# --- the checker ------------------------------------------------------------------------------


def module_imports(root: Path, packages: Iterable[str] = OURS) -> dict[str, set[str]]:
    """Every module under `packages` -> the modules it imports (absolute names, ours and others)."""
    graph: dict[str, set[str]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            graph[name] = _imports_of(ast.parse(path.read_text(encoding="utf-8")), name, is_package)
    return graph


def _imports_of(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `pkg.mod.name`: resolve() takes its deepest module, `pkg.mod` or (for a module) `pkg.name`.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def resolve(graph: Mapping[str, set[str]], name: str) -> list[str]:
    """The modules of ours that importing `name` runs: it (if a module) and its parent packages."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in graph]


def reached_libraries(graph: Mapping[str, set[str]], module: str) -> dict[str, list[str]]:
    """The I/O libraries importing `module` loads -> one chain of our modules that loads each."""
    found: dict[str, list[str]] = {}
    chains = {module: [module]}
    chains.update({parent: [module, parent] for parent in resolve(graph, module) if parent != module})
    queue = list(chains)
    while queue:
        current = queue.pop(0)
        for imported in sorted(graph[current]):
            if imported.split(".")[0] in IO_LIBRARIES:
                found.setdefault(imported.split(".")[0], chains[current])
            for ours in resolve(graph, imported):
                if ours not in chains:
                    chains[ours] = chains[current] + [ours]
                    queue.append(ours)
    return found


@dataclass(frozen=True)
class Rules:
    """What may import what: components by module prefix, and the extra rules for agents and HTTP."""

    components: Mapping[str, str]  # module prefix -> component (the longest prefix wins)
    may_import: Mapping[str, frozenset[str]]  # component -> the other components it may import
    pure: frozenset[str]  # agents' pure modules
    shells: frozenset[str]  # agents' shells (I/O, Faust)
    gateways: Mapping[str, str]  # concern -> the one agents module streams/http uses for it
    http: str = "streams.http"
    excused: Mapping[tuple[str, str], str] = None  # type: ignore[assignment]

    def component(self, module: str) -> str | None:
        """The component a module of ours belongs to."""
        best = max((p for p in self.components if module == p or module.startswith(p + ".")),
                   key=len, default=None)
        return self.components[best] if best is not None else None


def agent_of(module: str) -> str | None:
    """`agents.sender.outbox` -> `sender`."""
    parts = module.split(".")
    return parts[1] if parts[0] == "agents" and len(parts) > 2 else None


def violations(graph: Mapping[str, set[str]], rules: Rules) -> list[str]:
    """Every import that breaks `rules`, one line each (excused pairs left out)."""
    excused = rules.excused or {}
    found: list[str] = []
    edges: dict[str, set[str]] = {}
    for module, imports in sorted(graph.items()):
        source = rules.component(module)
        for imported in sorted({m for name in imports for m in resolve(graph, name)[-1:]}):
            if imported == module or (module, imported) in excused:
                continue
            target = rules.component(imported)
            if source is None or target is None or source == target:
                pass
            elif target not in rules.may_import[source]:
                found.append(f"{module} imports {imported}: {source} may not import {target}")
            else:
                edges.setdefault(source, set()).add(target)
            if module.startswith(rules.http + ".") and imported.startswith("agents."):
                if imported not in rules.gateways.values():
                    found.append(f"{module} imports {imported}: streams/http reaches agents only "
                                 f"through {', '.join(sorted(rules.gateways.values()))}")
            mine, theirs = agent_of(module), agent_of(imported)
            if mine and theirs and mine != theirs and imported not in rules.pure:
                found.append(f"{module} imports {imported}: another agent's shell (use its pure modules)")
        if module in rules.pure:
            for library, chain in sorted(reached_libraries(graph, module).items()):
                if all((a, b) not in excused for a, b in pairwise(chain)):
                    found.append(f"{module} is pure but loads {library} (via {' -> '.join(chain)})")
    found.extend(f"components import each other in a cycle: {' -> '.join(c)}" for c in cycles(edges))
    return found


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of nodes (a path that comes back to its start)."""
    found: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    if not done & set(path):
                        found.append([*path, start])
                        done.update(path)
                elif nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return found


# --- Nudge's rules ----------------------------------------------------------------------------

COMPONENTS = {
    "schemas": "schemas",
    "streams": "streams core",
    "agents": "agents",
    "deploy": "deploy",
    "streams.http": "streams edges",
    "streams.console": "streams edges",
    "streams.cli": "streams edges",
    "streams.worker": "streams edges",
    # A Kafka producer, not an HTTP view: agents/sender/service.py publishes outcomes with it.
    # -> lead: it belongs in streams/ beside producer.py; streams/worker.py imports it from here.
    "streams.http.publisher": "streams core",
}
MAY_IMPORT = {
    "schemas": frozenset(),
    "streams core": frozenset({"schemas"}),
    "agents": frozenset({"schemas", "streams core"}),
    "deploy": frozenset({"schemas", "streams core"}),
    "streams edges": frozenset({"schemas", "streams core", "agents", "deploy"}),
}
# By content: pure modules compute (they may read files); shells talk to Kafka, PostgreSQL, SMTP,
# HTTP or Faust. A new module of agents/ goes in one of the two lists.
PURE = frozenset({
    "agents", "agents.broadcast", "agents.broadcast.plan",
    "agents.check", "agents.check.definitions", "agents.check.event_schema", "agents.check.folder",
    "agents.check.hints", "agents.check.history", "agents.check.problems", "agents.check.report",
    "agents.check.synthetic", "agents.check.templates", "agents.check.yaml_lines",
    "agents.person", "agents.person.broadcasts", "agents.person.campaign_files",
    "agents.person.campaign_set", "agents.person.campaign_walk", "agents.person.computed",
    "agents.person.conditions", "agents.person.config", "agents.person.decision",
    "agents.person.decision_time", "agents.person.dedup", "agents.person.engine",
    "agents.person.event_index", "agents.person.history", "agents.person.ids", "agents.person.input_order",
    "agents.person.journeys", "agents.person.merge", "agents.person.read_models",
    "agents.person.render_context", "agents.person.segments", "agents.person.sends",
    "agents.person.shell", "agents.person.state_codec", "agents.person.step_paths",
    "agents.person.time_window", "agents.person.timer_index", "agents.person.timestamps",
    "agents.person.triggers", "agents.person.where",
    "agents.projector", "agents.projector.plan",
    "agents.render", "agents.render.email", "agents.render.errors", "agents.render.filters",
    "agents.render.layouts", "agents.render.liquid", "agents.render.mime", "agents.render.sandbox",
    "agents.render.template_files", "agents.render.tracking",
    "agents.sender", "agents.sender.dead_letter", "agents.sender.limits", "agents.sender.links",
    "agents.sender.outcomes",
    "agents.simulate", "agents.simulate.expectations", "agents.simulate.preview",
    "agents.simulate.project", "agents.simulate.recording", "agents.simulate.replay",
    "agents.simulate.runner", "agents.simulate.scenario", "agents.simulate.totals",
    "agents.simulate.virtual_clock",
})
SHELLS = frozenset({
    "agents.broadcast.agent", "agents.broadcast.publish", "agents.broadcast.service",
    "agents.broadcast.store",
    "agents.person.agent", "agents.person.campaign_source", "agents.person.checkpoint",
    "agents.projector.agent", "agents.projector.batches", "agents.projector.erasure",
    "agents.projector.export", "agents.projector.queries", "agents.projector.store",
    "agents.sender.agent", "agents.sender.delivery", "agents.sender.intake",
    "agents.sender.loop_names", "agents.sender.messages", "agents.sender.outbox",
    "agents.sender.people", "agents.sender.policy", "agents.sender.preferences",
    "agents.sender.service", "agents.sender.smtp", "agents.sender.smtp_session",
    "agents.sender.suppression", "agents.sender.webhooks",
})
GATEWAYS = {
    "broadcasts": "agents.broadcast.service",
    "messages, links, suppressions, preferences": "agents.sender.messages",
    "read models": "agents.projector.queries",
    "the campaigns folder": "agents.person.campaign_files",
    "templates": "agents.render.template_files",
    "events.yaml": "agents.check.event_schema",
}
EXCUSED = {
    # -> lead: the broadcast agent reads the person agent's campaign singleton; streams/worker.py
    # (the lead's) should hand the campaign source to both agents' `register`.
    ("agents.broadcast.agent", "agents.person.campaign_source"):
        "the person agent's singleton; fixed with streams/worker.py",
}
RULES = Rules(COMPONENTS, MAY_IMPORT, PURE, SHELLS, GATEWAYS, excused=EXCUSED)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return module_imports(ROOT)


def test_the_tree_keeps_its_layers(graph: dict[str, set[str]]) -> None:
    assert violations(graph, RULES) == []


def test_every_module_of_agents_is_listed_as_pure_or_a_shell(graph: dict[str, set[str]]) -> None:
    agents = {m for m in graph if m.split(".")[0] == "agents"}
    assert sorted(agents - PURE - SHELLS) == [], "add each to PURE or SHELLS in this file"
    assert sorted((PURE | SHELLS) - agents) == [], "these are gone: drop them from the lists"
    assert PURE & SHELLS == set()


def test_every_excused_import_still_exists(graph: dict[str, set[str]]) -> None:
    stale = [(a, b) for a, b in EXCUSED if b not in {m for n in graph[a] for m in resolve(graph, n)}]
    assert stale == [], "the import is gone: drop its excuse"


def test_each_gateway_exports_exactly_what_it_lists(graph: dict[str, set[str]]) -> None:
    import importlib

    for module in ("agents.broadcast.service", "agents.sender.messages"):
        gateway = importlib.import_module(module)
        public = {name for name in vars(gateway) if not name.startswith("_") and name != "annotations"}
        assert public == set(gateway.__all__), module


# --- the checker's own tests, on a made-up tree -----------------------------------------------


def _tree(tmp_path: Path, files: Mapping[str, str]) -> dict[str, set[str]]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in {p.parent for p in tmp_path.rglob("*.py")}:
        (folder / "__init__.py").touch()
    return module_imports(tmp_path)


CLEAN = {
    "schemas/person.py": "import pydantic\n",
    "streams/settings.py": "from schemas import person\n",
    "streams/database.py": "import asyncpg\nfrom streams.settings import x\n",
    "agents/sender/plan.py": "from schemas.person import Person\n",
    "agents/sender/outbox.py": "import asyncpg\nfrom agents.sender.plan import f\n",
    "agents/sender/gateway.py": "from agents.sender.outbox import insert\n",
    "agents/person/engine.py": "from agents.sender.plan import f\n",
    "streams/http/views.py": "from agents.sender.gateway import insert\nfrom streams.database import pool\n",
}
TOY_RULES = Rules(
    {"schemas": "schemas", "streams": "streams core", "agents": "agents",
     "streams.http": "streams edges"},
    {"schemas": frozenset(), "streams core": frozenset({"schemas"}),
     "agents": frozenset({"schemas", "streams core"}),
     "streams edges": frozenset({"schemas", "streams core", "agents"})},
    pure=frozenset({"agents.sender.plan", "agents.person.engine"}),
    shells=frozenset({"agents.sender.outbox", "agents.sender.gateway"}),
    gateways={"sending": "agents.sender.gateway"},
)


def test_checker_passes_a_tree_that_keeps_its_layers(tmp_path: Path) -> None:
    assert violations(_tree(tmp_path, CLEAN), TOY_RULES) == []


def test_checker_refuses_schemas_importing_anything_of_ours(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "schemas/person.py": "from streams.settings import x\n"})
    assert any("schemas.person imports streams.settings" in v for v in violations(graph, TOY_RULES))


def test_checker_refuses_a_pure_module_that_loads_an_io_library_through_another(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "agents/sender/plan.py": "from streams.database import pool\n"})
    found = violations(graph, TOY_RULES)
    assert "agents.sender.plan is pure but loads asyncpg (via agents.sender.plan -> streams.database)" in found
    # engine imports plan, so it now loads asyncpg too.
    assert any(v.startswith("agents.person.engine is pure but loads asyncpg") for v in found)


def test_checker_refuses_a_pure_module_importing_faust_inside_a_function(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "agents/sender/plan.py": "def f():\n    import faust\n"})
    assert any("loads faust" in v for v in violations(graph, TOY_RULES))


def test_checker_refuses_http_reaching_past_the_gateway(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "streams/http/views.py": "from agents.sender import outbox\n"})
    assert any("streams.http.views imports agents.sender.outbox: streams/http reaches agents only" in v
               for v in violations(graph, TOY_RULES))


def test_checker_refuses_an_agent_using_another_agents_shell(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "agents/person/engine.py": "from ..sender.outbox import insert\n"})
    assert any("agents.person.engine imports agents.sender.outbox: another agent's shell" in v
               for v in violations(graph, TOY_RULES))


def test_checker_refuses_core_importing_an_edge_and_reports_the_cycle(tmp_path: Path) -> None:
    rules = Rules(TOY_RULES.components,
                  {**TOY_RULES.may_import, "streams core": frozenset({"schemas", "streams edges"})},
                  TOY_RULES.pure, TOY_RULES.shells, TOY_RULES.gateways)
    graph = _tree(tmp_path, {**CLEAN, "streams/settings.py": "from streams.http.views import x\n"})
    found = violations(graph, rules)
    assert "components import each other in a cycle: streams core -> streams edges -> streams core" in found


def test_checker_refuses_an_import_running_up_the_layers(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "streams/database.py": "from agents.sender import outbox\n"})
    assert "streams.database imports agents.sender.outbox: streams core may not import agents" in violations(
        graph, TOY_RULES)


def test_an_excused_import_is_left_out(tmp_path: Path) -> None:
    graph = _tree(tmp_path, {**CLEAN, "agents/person/engine.py": "from agents.sender import outbox\n"})
    rules = Rules(TOY_RULES.components, TOY_RULES.may_import, TOY_RULES.pure, TOY_RULES.shells,
                  TOY_RULES.gateways, excused={("agents.person.engine", "agents.sender.outbox"): "why"})
    assert violations(graph, rules) == []


def test_the_real_tree_fails_when_schemas_imports_streams(graph: dict[str, set[str]]) -> None:
    broken = {**graph, "schemas.person": graph["schemas.person"] | {"streams.settings"}}
    assert "schemas.person imports streams.settings: schemas may not import streams core" in violations(
        broken, RULES)

"""Strict events (NUDGE_STRICT_EVENTS=true): tracked events must be declared in `events.yaml`.

The file sits in the project folder (NUDGE_CAMPAIGNS_DIR), beside `campaigns/`:

    events:
      signed_up:
        properties: {plan: string, seats: integer}
      viewed_pricing: {}                     # no properties allowed
      purchased:
        properties: {amount: number, coupon: [string, "null"]}
    attributes:                              # optional: the person attributes you send
      first_name: string
      trial_ends_at: integer

Types are JSON types: string, number, integer, boolean, object, array, null, or `any`; a list
allows several. Declared properties are optional; undeclared ones are refused. `attributes` is
not enforced: `nudge campaigns check` reads it to know which `customer.*` a template may use. Page and screen
views are not checked (their names are page titles, not a vocabulary).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.projector.plan import json_type
from schemas.errors import ConfigurationError, InputError

log = logging.getLogger(__name__)

SCHEMA_FILE = "events.yaml"
JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null", "any")


class EventSchemaError(ConfigurationError, ValueError):
    """The events file is missing or malformed; the message names the file and the problem."""


class EventRefused(InputError):
    """An event breaks the declared schema; the message names the event, property and file."""


@dataclass(frozen=True)
class EventSchema:
    """The declared events: event name -> property name -> the JSON types it may have."""

    source: str
    events: Mapping[str, Mapping[str, frozenset[str]]]
    # Person attribute name -> JSON types (declared for `nudge campaigns check`; not enforced).
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _types(value: Any, where: str) -> frozenset[str]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n in JSON_TYPES for n in names):
        raise EventSchemaError(
            f"{where}: the type must be one of {', '.join(JSON_TYPES)} (or a list of them), got {value!r}"
        )
    return frozenset(names)


def parse_event_schema(raw: Any, source: str = SCHEMA_FILE) -> EventSchema:
    """Validate the parsed YAML of an events file (`{events: {NAME: {properties: {PROP: TYPE}}}}`)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("events"), dict):
        raise EventSchemaError(f"{source}: expected a mapping `events:` of event name -> {{properties: ...}}")
    unknown = set(raw) - {"events", "attributes"}
    if unknown:
        raise EventSchemaError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(map(str, unknown)))}; only `events:` and `attributes:`"
        )
    declared = raw.get("attributes") or {}
    if not isinstance(declared, dict):
        raise EventSchemaError(f"{source}: attributes: expected a mapping of attribute name -> type")
    attributes = {str(name): _types(kind, f"{source}: attributes.{name}") for name, kind in declared.items()}
    events: dict[str, dict[str, frozenset[str]]] = {}
    for name, spec in raw["events"].items():
        where = f"{source}: events.{name}"
        if not isinstance(name, str) or not name:
            raise EventSchemaError(f"{source}: event names must be non-empty strings, got {name!r}")
        if spec is None:
            spec = {}
        if not isinstance(spec, dict) or set(spec) - {"properties", "description"}:
            raise EventSchemaError(f"{where}: expected {{properties: {{NAME: TYPE}}}} (and optionally description)")
        properties = spec.get("properties") or {}
        if not isinstance(properties, dict):
            raise EventSchemaError(f"{where}.properties: expected a mapping of property name -> type")
        events[name] = {
            str(prop): _types(kind, f"{where}.properties.{prop}") for prop, kind in properties.items()
        }
    return EventSchema(source=source, events=events, attributes=attributes)


def load_event_schema(path: Path) -> EventSchema:
    """Read and validate an events file; EventSchemaError says what is wrong with it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EventSchemaError(
            f"NUDGE_STRICT_EVENTS is on but there is no {path}: declare your events there, or turn strict mode off"
        ) from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise EventSchemaError(f"{path}: cannot be read as YAML: {exc}") from exc
    return parse_event_schema(raw, path.name)


def json_types_of(value: Any) -> set[str]:
    """Every schema type `value` satisfies (an integer is also a number)."""
    if value is None:
        return {"null", "any"}
    if isinstance(value, bool):
        return {"boolean", "any"}
    if isinstance(value, int):
        return {"integer", "number", "any"}
    if isinstance(value, float):
        return {"number", "any"} | ({"integer"} if value.is_integer() else set())
    if isinstance(value, str):
        return {"string", "any"}
    if isinstance(value, dict):
        return {"object", "any"}
    return {"array", "any"}


def event_problems(schema: EventSchema, name: str, data: Mapping[str, Any]) -> list[str]:
    """What is wrong with event `name` carrying `data` under `schema`, one line each; [] if nothing."""
    declared = schema.events.get(name)
    if declared is None:
        known = ", ".join(sorted(schema.events)) or "none"
        return [f"event {name!r} is not declared in {schema.source} (declared events: {known})"]
    problems = []
    for prop, value in data.items():
        allowed = declared.get(prop)
        if allowed is None:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                f"event {name!r}: property {prop!r} is not declared in {schema.source} (declared: {known})"
            )
        elif not allowed & json_types_of(value):
            problems.append(
                f"event {name!r}: property {prop!r} must be {' or '.join(sorted(allowed))}, "
                f"got {json_type(value)} {value!r:.40} (per {schema.source})"
            )
    return problems


def check_event(schema: EventSchema, name: str, data: Mapping[str, Any]) -> None:
    """Raise EventRefused, naming every problem, unless the event fits the schema."""
    problems = event_problems(schema, name, data)
    if problems:
        raise EventRefused("; ".join(problems))


class SchemaFile:
    """The events file of a project, re-read when it changes, so edits apply without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._schema = load_event_schema(path)  # fail fast: strict mode without a valid file
        self._mtime = path.stat().st_mtime_ns

    def current(self) -> EventSchema:
        """The schema as the file says now; the last valid one while the file is broken."""
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._mtime = mtime
                self._schema = load_event_schema(self.path)
        except (OSError, EventSchemaError) as exc:
            log.warning("keeping the previous event schema: %s", exc)
        return self._schema

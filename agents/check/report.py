"""Check a project folder's files: definitions, references, templates, what is unused. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from pydantic import BaseModel

from agents.check.definitions import (
    Definitions,
    attribute_typos,
    cross_check,
    read_file,
    sent_templates,
    unused_segments,
)
from agents.check.event_schema import EventSchema, EventSchemaError, parse_event_schema
from agents.check.folder import FolderFiles
from agents.check.problems import Problem
from agents.check.synthetic import Vocabulary, vocabulary
from agents.check.templates import TemplateFile, check_template
from agents.render.errors import TemplateFileError
from agents.render.layouts import check_layout
from schemas.campaigns import Campaign, ComputedAttribute, SegmentDefinition

_MODELS: dict[str, type[BaseModel]] = {"campaigns": Campaign, "segments": SegmentDefinition, "computed": ComputedAttribute}


@dataclass
class CheckReport:
    """Every problem found, and what was found valid."""

    problems: list[Problem] = field(default_factory=list)
    definitions: Definitions = field(default_factory=Definitions)
    templates: int = 0
    vocabulary: Vocabulary = field(default_factory=Vocabulary)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


def _events(files: FolderFiles, problems: list[Problem]) -> EventSchema | None:
    if files.events is None:
        return None
    path, text = files.events
    try:
        return parse_event_schema(yaml.safe_load(text), path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem(path, mark.line + 1 if mark else None, f"not valid YAML: {exc}"))
    except EventSchemaError as exc:
        problems.append(Problem(path, None, str(exc).removeprefix(f"{path}: ")))
    return None


def _layouts(files: FolderFiles, problems: list[Problem]) -> dict[str, tuple[str, str]]:
    """The layouts with their placeholder normalized; a layout without one is a problem."""
    if not files.templates:
        return {}
    good = {}
    for name, (path, text) in files.templates[0].layouts.items():
        try:
            good[name] = (path, check_layout(path, text))
        except TemplateFileError as exc:
            problems.append(Problem(path, None, exc.reason))
    return good


def check_folder(files: FolderFiles, now: float) -> CheckReport:
    """Every problem of a project folder, errors and warnings, each with its file and line."""
    report = CheckReport()
    problems = report.problems
    problems += [Problem(path, None, reason) for path, reason in files.unreadable]
    found = report.definitions
    for kind, model in _MODELS.items():
        for path, text in files.definitions.get(kind, []):
            getattr(found, kind).extend(read_file(path, text, model, found))
    problems += found.problems
    template_ids = {t.id for t in files.templates} if files.has_templates_folder else None
    problems += cross_check(found, template_ids)
    problems += unused_segments(found)
    schema = _events(files, problems)
    problems += attribute_typos(found, set(schema.attributes) if schema is not None else set())
    campaigns = [c.model for c in found.campaigns]
    report.vocabulary = vocabulary(
        campaigns, [s.model for s in found.segments], [c.model for c in found.computed], schema, now,
    )
    layouts = _layouts(files, problems)
    senders: dict[str, list[Campaign]] = {}
    for campaign in campaigns:
        for _, template in sent_templates(campaign):
            if campaign not in senders.setdefault(template, []):
                senders[template].append(campaign)
    for file in files.templates:
        source = TemplateFile(file.id, file.file, file.source, file.text, file.text_file, layouts)
        problems += check_template(source, senders.get(file.id, []), report.vocabulary, now)
        if file.id not in senders and file.id not in found.broken_sends:
            problems.append(Problem(
                file.file, None,
                "no campaign sends this template (fine if only transactional sends or broadcasts use it)",
                "warning",
            ))
    report.templates = len(files.templates)
    return report

"""A project folder as the worker loads it: campaigns, segments, computed attributes, templates and
`events.yaml`, read once for `nudge simulate` and `nudge preview`.

The same loaders the worker and the delivery loop use (`agents/person/campaign_files.py`,
`agents/render/template_files.py`, `streams/http/event_schema.py`), so a simulation runs exactly
what would run live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agents.check.event_schema import SCHEMA_FILE, EventSchema, EventSchemaError, load_event_schema
from agents.person.campaign_files import CampaignDirError, load_definitions
from agents.render.errors import TemplateFileError
from agents.render.template_files import load_templates
from schemas.campaigns import Campaign, ComputedAttribute, SegmentDefinition
from schemas.errors import ConfigurationError
from schemas.templates import EmailTemplate


class ProjectError(ConfigurationError, ValueError):
    """The project folder cannot be loaded; `problems` has one line per problem, naming its file."""

    def __init__(self, root: Path | None, problems: list[str]) -> None:
        self.root = root
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Project:
    """Everything a folder defines. `root` is None for definitions given inline (a scenario)."""

    root: Path | None = None
    campaigns: list[Campaign] = field(default_factory=list)
    segments: list[SegmentDefinition] = field(default_factory=list)
    computed: list[ComputedAttribute] = field(default_factory=list)
    templates: dict[str, EmailTemplate] = field(default_factory=dict)
    # `events.yaml`, when the folder has one.
    events: EventSchema | None = None

    def where(self, kind: str) -> str:
        """Where a definition of this kind lives, for messages: `campaigns/ of ./app`."""
        return f"{kind}/ of {self.root}" if self.root is not None else "the scenario"


def load_project(root: Path) -> Project:
    """Read a project folder; ProjectError lists every problem (file and what is wrong)."""
    if not root.is_dir():
        raise ProjectError(root, [f"{root}: not a folder (give the folder that holds campaigns/)"])
    if not (root / "campaigns").is_dir():
        raise ProjectError(root, [
            f"{root}: has no campaigns/ folder; give the project folder (NUDGE_CAMPAIGNS_DIR) "
            "that holds campaigns/, segments/, computed/ and templates/"
        ])
    problems: list[str] = []
    try:
        found = load_definitions(root)
    except CampaignDirError as exc:
        problems.extend(exc.problems)
        found = None
    templates: dict[str, EmailTemplate] = {}
    try:
        templates = load_templates(root / "templates")
    except TemplateFileError as exc:
        problems.append(str(exc))
    events = None
    if (root / SCHEMA_FILE).exists():
        try:
            events = load_event_schema(root / SCHEMA_FILE)
        except EventSchemaError as exc:
            problems.append(str(exc))
    if problems or found is None:
        raise ProjectError(root, problems)
    return Project(
        root=root, campaigns=found.campaigns, segments=found.segments, computed=found.computed,
        templates=templates, events=events,
    )

"""Read a project folder for `nudge campaigns check`: every definition file, template, layout and
`events.yaml` as text, with the paths problems are reported at. The only I/O of the check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agents.check.event_schema import SCHEMA_FILE
from agents.check.templates import TemplateFile
from agents.render.layouts import LAYOUTS_FOLDER

KINDS = ("campaigns", "segments", "computed")


@dataclass
class FolderFiles:
    """A project folder's files as text; `unreadable` has one line per file that could not be read."""

    root: Path
    definitions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    templates: list[TemplateFile] = field(default_factory=list)
    has_templates_folder: bool = False
    events: tuple[str, str] | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _read(path: Path, into: FolderFiles) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        into.unreadable.append((str(path), f"cannot read: {exc}"))
        return None


def read_folder(root: Path) -> FolderFiles:
    """Everything `nudge campaigns check` looks at under `root`."""
    files = FolderFiles(root=root)
    for kind in KINDS:
        folder = root / kind
        found = []
        if folder.is_dir():
            for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
                text = _read(path, files)
                if text is not None:
                    found.append((str(path), text))
        files.definitions[kind] = found
    templates = root / "templates"
    files.has_templates_folder = templates.is_dir()
    layouts: dict[str, tuple[str, str]] = {}
    if (templates / LAYOUTS_FOLDER).is_dir():
        for path in sorted((templates / LAYOUTS_FOLDER).glob("*.html")):
            text = _read(path, files)
            if text is not None:
                layouts[path.stem] = (str(path), text)
    if files.has_templates_folder:
        for path in sorted(templates.glob("*.html")):
            source = _read(path, files)
            text_path = path.with_suffix(".txt")
            text = _read(text_path, files) if text_path.exists() else None
            if source is not None:
                files.templates.append(TemplateFile(
                    id=path.stem, file=str(path), source=source, text=text,
                    text_file=str(text_path) if text is not None else None, layouts=layouts,
                ))
    if (root / SCHEMA_FILE).exists():
        text = _read(root / SCHEMA_FILE, files)
        if text is not None:
            files.events = (str(root / SCHEMA_FILE), text)
    return files

"""Where in a YAML file a value is: the line of the node a validation error's path points at. Pure."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

# Field names pydantic reports, as a file spells them.
_SPELLED = {"in_": "in", "not_": "not", "for_": "for", "from_": "from", "if_": "if", "else_": "else"}


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of `text` (None when empty); raises yaml.YAMLError like safe_load."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def line_of(root: yaml.Node | None, path: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest node `path` reaches (a key's line for a mapping entry)."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in path:
        if node is None:
            break
        if isinstance(part, str) and (part.startswith("~") or part[:1].isupper() or "[" in part or "-" in part):
            continue  # a union member's tag, not a place in the file
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        elif isinstance(node, yaml.MappingNode):
            key = _SPELLED.get(str(part), str(part))
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        else:
            break
    return line

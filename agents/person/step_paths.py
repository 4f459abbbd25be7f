"""Positions inside a campaign's step tree.

A path is a list of ints: a step index, then for a step that holds arms (branch, split,
random) the arm index and a step index inside that arm, and so on: `[2, 1, 0]` is the first
step of the `else` arm of step 2. A path always names an existing step, or is None (the end).
"""

from __future__ import annotations

from schemas.campaigns import BranchStep, RandomStep, SplitStep, Step


def arms(step: Step) -> list[list[Step]]:
    """The step lists a step may lead into: then/else, split cases, random cohorts."""
    if isinstance(step, BranchStep):
        return [step.branch.then, step.branch.else_]
    if isinstance(step, SplitStep):
        return [case.then for case in step.split]
    if isinstance(step, RandomStep):
        return [cohort.steps for cohort in step.random]
    return []


def _lists(steps: list[Step], path: list[int]) -> list[list[Step]]:
    """The step list at each depth of `path` (outermost first); raises on a path that doesn't fit."""
    lists = [steps]
    for depth in range(0, len(path) - 1, 2):
        holder = lists[-1][path[depth]]
        lists.append(arms(holder)[path[depth + 1]])
    return lists


def normalize(steps: list[Step], path: list[int]) -> list[int] | None:
    """Climb out of finished arms: the path of the next existing step, or None at the end."""
    path = list(path)
    while True:
        lists = _lists(steps, path)
        if path[-1] < len(lists[-1]):
            return path
        if len(path) == 1:
            return None
        path = path[:-2]
        path[-1] += 1


def step_at(steps: list[Step], path: list[int]) -> Step | None:
    """The step at `path`, or None if the path doesn't fit these steps (another version's path)."""
    try:
        lists = _lists(steps, path)
        return lists[-1][path[-1]] if 0 <= path[-1] < len(lists[-1]) else None
    except (IndexError, TypeError):
        return None


def following(steps: list[Step], path: list[int]) -> list[int] | None:
    """The step after the one at `path`."""
    return normalize(steps, path[:-1] + [path[-1] + 1])


def into(steps: list[Step], path: list[int], arm: int) -> list[int] | None:
    """The first step of arm `arm` of the step at `path` (or what follows, if the arm is empty)."""
    return normalize(steps, path + [arm, 0])

"""Walking a campaign's definitions: every step of a step tree, every condition inside another.

Pure. Used to index what the definitions read (agents/person/campaign_set.py) and to check
their references (agents/person/campaign_files.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from schemas.campaigns import (
    AllCondition,
    AnyCondition,
    BranchStep,
    Campaign,
    Condition,
    NotCondition,
    RandomStep,
    SplitStep,
    Step,
    WaitUntilStep,
)


def conditions(value: Condition | None) -> Iterator[Condition]:
    """The condition and every condition nested in it, depth first."""
    if value is None:
        return
    yield value
    if isinstance(value, AllCondition):
        for child in value.all:
            yield from conditions(child)
    elif isinstance(value, AnyCondition):
        for child in value.any:
            yield from conditions(child)
    elif isinstance(value, NotCondition):
        yield from conditions(value.not_)


def steps(tree: Iterable[Step]) -> Iterator[Step]:
    """Every step of a step tree, depth first."""
    for step in tree:
        yield step
        if isinstance(step, BranchStep):
            yield from steps(step.branch.then)
            yield from steps(step.branch.else_)
        elif isinstance(step, SplitStep):
            for case in step.split:
                yield from steps(case.then)
        elif isinstance(step, RandomStep):
            for cohort in step.random:
                yield from steps(cohort.steps)


def step_conditions(campaign: Campaign) -> Iterator[Condition]:
    """The top-level conditions of a campaign's branch, split and wait_until steps."""
    for step in steps(campaign.steps):
        if isinstance(step, BranchStep):
            yield step.branch.if_
        elif isinstance(step, SplitStep):
            yield from (case.if_ for case in step.split if case.if_ is not None)
        elif isinstance(step, WaitUntilStep):
            yield step.wait_until.condition

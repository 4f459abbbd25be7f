"""Check a scenario's `expect` entries against what a run produced; explain every failure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from agents.simulate.runner import SimulationResult, TimelineEntry
from schemas.commands import CallWebhook, JourneyEvent, SendEmail
from schemas.durations import format_duration
from schemas.scenario import (
    AttributeExpectation,
    CampaignExpectation,
    ExistsExpectation,
    Expectation,
    NeverExpectation,
    SegmentExpectation,
    SendExpectation,
    WebhookExpectation,
)

# Virtual times within this many seconds are the same time.
_TOLERANCE = 0.5


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation: what it asked (`description`), whether it held, and what happened."""

    expectation: Expectation
    passed: bool
    description: str
    happened: str


def check_expectations(result: SimulationResult) -> list[ExpectationResult]:
    """Every `expect` entry of the scenario, checked against the run, in file order."""
    return [_check(e, result) for e in result.scenario.expect]


def _sends(result: SimulationResult, person: str, template: str) -> list[TimelineEntry]:
    return [
        e for e in result.timeline
        if isinstance(e.command, SendEmail) and e.command.person == person
        and e.command.template == template
    ]


def _times(entries: list[TimelineEntry]) -> str:
    if not entries:
        return "none"
    return ", ".join(f"at {format_duration(e.offset)}" for e in entries)


def _same_time(entry: TimelineEntry, offset: float) -> bool:
    return abs(entry.offset - offset) <= _TOLERANCE


def _contains(entry: TimelineEntry, text: str) -> bool:
    mail = entry.rendered
    return mail is not None and any(text in part for part in (mail.subject, mail.html, mail.text))


def _check(expectation: Expectation, result: SimulationResult) -> ExpectationResult:
    if isinstance(expectation, SendExpectation):
        return _check_send(expectation, result)
    if isinstance(expectation, NeverExpectation):
        found = _sends(result, expectation.person, expectation.never)
        return ExpectationResult(
            expectation, not found,
            f"{expectation.person} never gets {expectation.never}",
            "none sent" if not found else f"sent {_times(found)}",
        )
    if isinstance(expectation, CampaignExpectation):
        return _check_campaign(expectation, result)
    if isinstance(expectation, WebhookExpectation):
        return _check_webhook(expectation, result)
    if isinstance(expectation, SegmentExpectation):
        return _check_segment(expectation, result)
    if isinstance(expectation, ExistsExpectation):
        state = result.states.get(expectation.person)
        words = f"{expectation.person} {'exists' if expectation.exists else 'is gone'} at the end"
        happened = "exists" if state is not None else "does not exist"
        return ExpectationResult(expectation, (state is not None) == expectation.exists, words, happened)
    return _check_attribute(expectation, result)


def _check_segment(x: SegmentExpectation, result: SimulationResult) -> ExpectationResult:
    state = result.states.get(x.person)
    words = f"{x.person} {'is' if x.member else 'is not'} in segment {x.segment} at the end"
    if state is None:
        return ExpectationResult(x, False, words, f"{x.person} does not exist at the end")
    member = x.segment in state.segments
    return ExpectationResult(x, member == x.member, words, "a member" if member else "not a member")


def _check_send(x: SendExpectation, result: SimulationResult) -> ExpectationResult:
    sends = _sends(result, x.person, x.send)
    words = f"{x.person} gets {x.send}"
    candidates = sends
    ok = True
    if x.at is not None:
        candidates = [e for e in sends if _same_time(e, x.at)]
        words += f" exactly once at {format_duration(x.at)}"
        ok = len(candidates) == 1
    if x.count is not None:
        words += f" exactly {x.count} time{'s' if x.count != 1 else ''} in all"
        ok = ok and len(sends) == x.count
    if x.at is None and x.count is None:
        words += " at least once"
        ok = bool(sends)
    happened = f"sent {len(sends)}: {_times(sends)}"
    if x.contains is not None:
        words += f", containing {x.contains!r}"
        matching = [e for e in candidates if _contains(e, x.contains)]
        ok = ok and bool(matching)
        if not matching:
            happened += "; " + _render_account(candidates, x.contains)
    return ExpectationResult(x, ok, words, happened)


def _render_account(entries: list[TimelineEntry], text: str) -> str:
    if not entries:
        return "nothing to search for the text"
    notes = []
    for e in entries:
        if e.render_error:
            notes.append(f"at {format_duration(e.offset)} rendering failed: {e.render_error}")
        elif e.rendered is None:
            notes.append(f"at {format_duration(e.offset)} not rendered (the scenario has no templates)")
        else:
            notes.append(
                f"at {format_duration(e.offset)} subject {e.rendered.subject!r}, "
                f"text {e.rendered.text.strip()!r} lack {text!r}"
            )
    return "; ".join(notes)


def _check_campaign(x: CampaignExpectation, result: SimulationResult) -> ExpectationResult:
    counts: Counter[str] = Counter(
        e.command.event for e in result.timeline
        if isinstance(e.command, JourneyEvent) and e.command.campaign_id == x.campaign
    )
    wanted = {
        k: getattr(x, k) for k in ("entered", "converted", "exited", "completed")
        if getattr(x, k) is not None
    }
    got = {k: counts.get(k, 0) for k in wanted}
    words = f"campaign {x.campaign}: " + ", ".join(f"{k} {v}" for k, v in wanted.items())
    happened = ", ".join(f"{k} {counts.get(k, 0)}" for k in ("entered", "converted", "exited", "completed"))
    return ExpectationResult(x, got == wanted, words, happened)


def _check_webhook(x: WebhookExpectation, result: SimulationResult) -> ExpectationResult:
    calls = [
        e for e in result.timeline
        if isinstance(e.command, CallWebhook) and e.command.person == x.person
        and e.command.url == x.webhook
    ]
    words, ok = f"{x.person} triggers webhook {x.webhook}", bool(calls)
    if x.at is not None:
        words += f" exactly once at {format_duration(x.at)}"
        ok = len([e for e in calls if _same_time(e, x.at)]) == 1
    if x.count is not None:
        words += f" exactly {x.count} times in all"
        ok = (ok or x.at is None) and len(calls) == x.count
    return ExpectationResult(x, ok, words, f"called {len(calls)}: {_times(calls)}")


def _check_attribute(x: AttributeExpectation, result: SimulationResult) -> ExpectationResult:
    state = result.states.get(x.person)
    words = f"{x.person} ends with {x.attribute} = {x.eq!r}"
    if state is None:
        return ExpectationResult(x, False, words, f"{x.person} does not exist at the end")
    value = state.attributes.get(x.attribute)
    return ExpectationResult(x, value == x.eq, words, f"{x.attribute} is {value!r}")

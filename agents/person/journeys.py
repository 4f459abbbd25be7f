"""Journeys: entering a campaign, walking its steps until a wait, exits, goals and endings."""

from __future__ import annotations

from agents.person.campaign_set import VersionedCampaign
from agents.person.conditions import Scope, earliest, evaluate, explain, holds
from agents.person.decision import Decision
from agents.person.ids import call_id, cohort_point, journey_id, message_id, path_text
from agents.person.sends import queue_email
from agents.person.step_paths import following, into, step_at
from agents.person.time_window import next_open, resolve_zone
from agents.person.timestamps import iso
from schemas.campaigns import (
    BranchStep,
    Campaign,
    ExitStep,
    RandomStep,
    ReentryAfter,
    SendStep,
    SetStep,
    SplitStep,
    TimeWindowStep,
    WaitStep,
    WaitUntilStep,
    WebhookStep,
)
from schemas.commands import CallWebhook, JourneyEvent, JourneyEventKind, trusted
from schemas.person import EntryRecord, JourneyState, TriggerRecord


def describe_trigger(trigger: TriggerRecord) -> str:
    """The trigger in words: `event signed_up at 2026-03-02T09:01:00Z`."""
    if trigger.kind == "event":
        return f"event {trigger.name} at {iso(trigger.at)}"
    if trigger.kind == "segment":
        return f"entering segment {trigger.data.get('segment')} at {iso(trigger.at)}"
    if trigger.kind == "attribute_changed":
        return f"attribute {trigger.data.get('attribute')} changing at {iso(trigger.at)}"
    spec = trigger.data.get("date", {})
    if "attribute" in spec:
        offset = spec.get("offset") or "0s"
        what = f"{spec['attribute']} {'' if str(offset).startswith('-') else '+'}{offset}"
    else:
        what = f"{spec.get('at', 0):g}% from {spec.get('from')} to {spec.get('to')}"
    return f"date {what} reached at {iso(trigger.at)}"


def may_enter(d: Decision, campaign: Campaign, t: float) -> bool:
    """Re-entry rule: once (never again), always, or `after` the previous entry."""
    entry = d.state.entries.get(campaign.id)
    if entry is None or campaign.reentry == "always":
        return True
    if isinstance(campaign.reentry, ReentryAfter):
        return t >= entry.last_at + campaign.reentry.after
    return False


def start_journey(d: Decision, entry: VersionedCampaign, trigger: TriggerRecord, t: float) -> bool:
    """Enter the campaign if re-entry and the filter allow, and run it to its first wait."""
    campaign, state = entry.campaign, d.state
    if not may_enter(d, campaign, t) or not holds(campaign.filter, Scope(state, t)):
        return False
    record = state.entries.get(campaign.id)
    count = (record.count if record else 0) + 1
    state.entries[campaign.id] = EntryRecord(count=count, last_at=t)
    journey = JourneyState(
        # From the trigger's own time and the person's first appearance, never the wall clock:
        # a replay, or a simulation of the same inputs, gets the same ids.
        id=journey_id(state.person, campaign.id, count, state.first_seen, trigger.at),
        campaign=campaign.id,
        version=entry.version,
        entered_at=t,
        trigger=trigger,
        goal_until=t + campaign.goal.within if campaign.goal and campaign.goal.within else None,
    )
    state.journeys.append(journey)
    _emit(d, journey, "entered", t, f"entered after {describe_trigger(trigger)}",
          detail={"trigger": {"kind": trigger.kind, "name": trigger.name, "at": trigger.at,
                              "data": dict(trigger.data)}, "cause": d.cause})
    if not campaign.steps:
        end_journey(d, journey, "completed", t, "no steps")
        return True
    advance_journey(d, journey, campaign, t)
    return True


def advance_journey(d: Decision, journey: JourneyState, campaign: Campaign, t: float) -> None:
    """At `t`: count a conversion, leave on `exit`, else walk the steps that are due.

    Each of exit, goal and the current wait_until is evaluated once; the earliest instant one
    of them could flip on time alone becomes the journey's `watch_at`.
    """
    flips: list[float | None] = [_check_goal(d, journey, campaign, t)]
    if journey.status == "active" and campaign.exit is not None:
        scope = _after_entry(d, journey, t)
        verdict = evaluate(campaign.exit, scope)
        if verdict.holds:
            end_journey(d, journey, "exited", t, "exit condition holds",
                        detail={"condition": explain(campaign.exit, scope), "cause": d.cause})
            journey.watch_at = _later(t, flips)
            return
        flips.append(verdict.flip)
    if journey.status == "active":
        flips.append(_walk(d, journey, campaign, t))
        if d.changed:
            # A `set` step may have reached the goal.
            flips.append(_check_goal(d, journey, campaign, t))
    journey.watch_at = _later(t, flips)


def _later(t: float, flips: list[float | None]) -> float | None:
    return earliest(*(f for f in flips if f is not None and f > t))


def end_journey(
    d: Decision, journey: JourneyState, status: JourneyEventKind, t: float, reason: str,
    detail: dict[str, object] | None = None,
) -> None:
    """Finish the journey (completed or exited) and say so once."""
    journey.status = "completed" if status == "completed" else "exited"
    journey.ended_at = t
    journey.resume_at = None
    journey.waiting_since = None
    _emit(d, journey, status, t, reason, detail=detail)


def keep_journey(journey: JourneyState, campaign: Campaign | None, t: float) -> bool:
    """A running journey stays; a finished one stays only while its goal can still convert."""
    if journey.status == "active":
        return True
    return campaign is not None and _goal_open(journey, campaign, t)


# --- goal --------------------------------------------------------------------------------


def _after_entry(d: Decision, journey: JourneyState, t: float) -> Scope:
    # Exit and goal: event conditions count only events after entry.
    return Scope(d.state, t, entered_at=journey.entered_at, events_after=journey.entered_at)


def _goal_open(journey: JourneyState, campaign: Campaign, t: float) -> bool:
    if campaign.goal is None or journey.converted:
        return False
    if journey.goal_until is None:
        # No `within`: the goal counts while the journey runs.
        return journey.status == "active"
    return t <= journey.goal_until


def _check_goal(d: Decision, journey: JourneyState, campaign: Campaign, t: float) -> float | None:
    """Count a conversion if the goal holds; return when the goal could next flip (in its window)."""
    if not _goal_open(journey, campaign, t):
        return None
    assert campaign.goal is not None
    scope = _after_entry(d, journey, t)
    verdict = evaluate(campaign.goal.condition, scope)
    if verdict.holds:
        journey.converted = True
        _emit(d, journey, "converted", t, "goal reached",
              detail={"condition": explain(campaign.goal.condition, scope), "cause": d.cause})
        return None
    if verdict.flip is not None and journey.goal_until is not None and verdict.flip > journey.goal_until:
        return None
    return verdict.flip


def _emit(
    d: Decision, journey: JourneyState, kind: JourneyEventKind, t: float, reason: str, *,
    step: list[int] | None = None, step_kind: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    active = journey.status == "active"
    d.commands.append(
        trusted(
            JourneyEvent,
            event=kind,
            person=d.state.person,
            campaign_id=journey.campaign,
            campaign_version=journey.version,
            journey_id=journey.id,
            at=t,
            reason=reason,
            step=path_text(step) if step is not None else None,
            step_kind=step_kind,
            detail=detail or {},
            position=path_text(journey.position) if active else None,
            resume_at=journey.resume_at if active else None,
        )
    )


def _step(d: Decision, journey: JourneyState, path: list[int], kind: str, t: float,
          reason: str, **detail: object) -> None:
    """Provenance of one step taken: what it did and, for a choice, what it saw."""
    _emit(d, journey, "step", t, reason, step=path, step_kind=kind, detail=detail)


# --- steps -------------------------------------------------------------------------------


def _walk(d: Decision, journey: JourneyState, campaign: Campaign, t: float) -> float | None:
    """Run steps from the journey's position until one must wait past `t`, or the end.

    Returns when a wait_until the journey now waits at could flip on time alone.
    """
    clock = t
    steps = campaign.steps
    while journey.status == "active":
        path = journey.position
        step = step_at(steps, path)
        nxt: list[int] | None
        if step is None:
            end_journey(d, journey, "exited", clock, f"step {path_text(path)} no longer exists")
            return None
        if isinstance(step, (WaitStep, TimeWindowStep)):
            kind = "wait" if isinstance(step, WaitStep) else "time_window"
            if journey.resume_at is None:
                if isinstance(step, WaitStep):
                    journey.resume_at = clock + step.wait
                else:
                    zone = resolve_zone(
                        d.state.attributes.get("timezone"), step.time_window.fallback_timezone
                    )
                    journey.resume_at = next_open(step.time_window, zone, clock)
                _step(d, journey, path, kind, clock, f"waiting until {iso(journey.resume_at)}",
                      until=journey.resume_at)
            if journey.resume_at > t:
                return None
            # The due time, not the moment the wake arrived, is the logical time from here.
            clock, journey.resume_at = max(clock, journey.resume_at), None
            nxt = following(steps, path)
        elif isinstance(step, WaitUntilStep):
            if journey.waiting_since is None:
                journey.waiting_since = clock
                journey.resume_at = clock + step.wait_until.max
            scope = Scope(d.state, clock, entered_at=journey.entered_at)
            assert journey.resume_at is not None
            verdict = evaluate(step.wait_until.condition, scope)
            if not verdict.holds:
                if journey.resume_at > t:
                    if journey.waiting_since == clock:
                        _step(d, journey, path, "wait_until", clock,
                              f"waiting for the condition until {iso(journey.resume_at)}",
                              until=journey.resume_at)
                    return verdict.flip
                clock = max(clock, journey.resume_at)
                outcome = "gave up waiting: max reached"
            else:
                outcome = "condition holds"
            _step(d, journey, path, "wait_until", clock, outcome,
                  condition=explain(step.wait_until.condition, scope), cause=d.cause)
            journey.resume_at = journey.waiting_since = None
            nxt = following(steps, path)
        elif isinstance(step, SendStep):
            _send(d, journey, campaign, path, step.send, clock)
            nxt = following(steps, path)
        elif isinstance(step, BranchStep):
            scope = Scope(d.state, clock, entered_at=journey.entered_at)
            taken = holds(step.branch.if_, scope)
            _step(d, journey, path, "branch", clock, "then" if taken else "else",
                  arm="then" if taken else "else", condition=explain(step.branch.if_, scope))
            nxt = into(steps, path, 0 if taken else 1)
        elif isinstance(step, SplitStep):
            scope = Scope(d.state, clock, entered_at=journey.entered_at)
            arm = next(
                (i for i, case in enumerate(step.split) if holds(case.if_, scope)), None
            )
            seen = [explain(case.if_, scope) for case in step.split if case.if_ is not None]
            _step(d, journey, path, "split", clock,
                  "no case matched" if arm is None else f"case {arm}", arm=arm, conditions=seen)
            nxt = following(steps, path) if arm is None else into(steps, path, arm)
        elif isinstance(step, RandomStep):
            point, bound, arm = cohort_point(d.state.person, campaign.id, path), 0.0, None
            for i, cohort in enumerate(step.random):
                bound += cohort.percent
                if point < bound:
                    arm = i
                    break
            _step(d, journey, path, "random", clock,
                  "no cohort" if arm is None else f"cohort {arm}", arm=arm, point=round(point, 4))
            nxt = following(steps, path) if arm is None else into(steps, path, arm)
        elif isinstance(step, SetStep):
            _set(d, step.set)
            _step(d, journey, path, "set", clock, "attributes set", attributes=dict(step.set))
            nxt = following(steps, path)
        elif isinstance(step, WebhookStep):
            _webhook(d, journey, campaign, path, step, clock)
            nxt = following(steps, path)
        elif isinstance(step, ExitStep):
            end_journey(d, journey, "exited", clock, f"exit step {path_text(path)}",
                        detail={"step": path_text(path)})
            return None
        else:  # pragma: no cover - the step union is closed
            raise TypeError(f"unknown step {step!r}")
        if nxt is None:
            end_journey(d, journey, "completed", clock, "all steps done")
            return None
        journey.position = nxt
    return None


def _send(d: Decision, journey: JourneyState, campaign: Campaign, path: list[int], template: str, clock: float) -> None:
    state = d.state
    # Suppressed people get nothing; unsubscribed ones only transactional mail. The journey
    # goes on either way, so a later re-subscribe doesn't resurrect old steps.
    if state.suppressed or (state.unsubscribed and not campaign.transactional):
        why = "suppressed" if state.suppressed else "unsubscribed from marketing"
        _step(d, journey, path, "send", clock, f"not sent: {why}", template=template, sent=False)
        return
    mid = message_id(state.person, campaign.id, journey.id, path)
    step = path_text(path)
    queue_email(
        d, message_id=mid, template=template, campaign_id=campaign.id,
        campaign_version=journey.version, journey_id=journey.id, step=step, at=clock,
        reason=(
            f"campaign {campaign.id} (version {journey.version}), step {step}: "
            f"send {template}, after {describe_trigger(journey.trigger)}"
        ),
        transactional=campaign.transactional,
        campaign={"id": campaign.id, "version": journey.version},
        event=journey.trigger.data, event_name=journey.trigger.name,
    )
    _step(d, journey, path, "send", clock, f"queued {template}", template=template,
          message_id=mid, sent=True)


def _set(d: Decision, values: dict[str, object]) -> None:
    attributes = d.state.attributes
    for name, value in values.items():
        old = attributes.get(name)
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
        if old != value:
            d.changed[name] = (old, value)
            d.touch("attribute", name)
        if name == "email":
            d.state.email = value if isinstance(value, str) else None


def _webhook(d: Decision, journey: JourneyState, campaign: Campaign, path: list[int], step: WebhookStep, clock: float) -> None:
    spec, state = step.webhook, d.state
    body = spec.body
    if body is None:
        body = {
            "person": state.person,
            "campaign": {"id": campaign.id, "version": journey.version},
            "journey": journey.id,
            "event_name": journey.trigger.name,
            "event": dict(journey.trigger.data),
            "customer": dict(state.attributes),
        }
    cid = call_id(state.person, campaign.id, journey.id, path)
    _step(d, journey, path, "webhook", clock, f"called {spec.url}", url=spec.url, call_id=cid)
    d.commands.append(
        CallWebhook(
            call_id=cid,
            person=state.person,
            url=spec.url,
            body=body,
            headers=dict(spec.headers),
            campaign_id=campaign.id,
            journey_id=journey.id,
            decided_at=clock,
        )
    )

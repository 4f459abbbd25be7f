"""Counting a fault case: what arrived against what was accepted. Pure: no I/O, no clock.

The expected set is every accepted person once per template. An email is *lost* if no copy
of it arrived; *duplicated* for every copy after the first of one message id; an *extra
decision* when one person got the same template under more than one message id (the engine
decided twice). The read model is complete when every accepted person has a `people` row and
exactly one `entered` journey event.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mail:
    """One message as the SMTP sink received it, tied to a person and a template."""

    person: str
    template: str
    message_id: str
    at: float


@dataclass(frozen=True)
class TemplateCount:
    """Emails of one template against the accepted people."""

    template: str
    expected: int
    delivered: int
    lost: int
    duplicated: int
    extra_decisions: int
    unexpected: int
    # Seconds from the reference moment (quiet, or the fault's end) to the last first copy.
    last_after: float | None


@dataclass(frozen=True)
class ReadModelCount:
    """The PostgreSQL read model against the accepted people."""

    expected: int
    missing_people: int
    missing_entered: int
    extra_entered: int

    @property
    def complete(self) -> bool:
        return self.missing_people == 0 and self.missing_entered == 0 and self.extra_entered == 0


@dataclass(frozen=True)
class OutboxState:
    """Where the outbox rows of the lost emails are (diagnostics for a failure)."""

    no_row: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)


def count_template(
    template: str,
    accepted: Iterable[str],
    mails: Iterable[Mail],
    *,
    since: float | None = None,
) -> TemplateCount:
    """Count one template's emails (lost, duplicated, extra decisions, unexpected)."""
    expected = set(accepted)
    copies: Counter[str] = Counter()
    ids_per_person: dict[str, set[str]] = defaultdict(set)
    first_at: dict[str, float] = {}
    unexpected = 0
    for mail in mails:
        if mail.template != template:
            continue
        if mail.person not in expected:
            unexpected += 1
            continue
        copies[mail.message_id] += 1
        ids_per_person[mail.person].add(mail.message_id)
        first_at.setdefault(mail.message_id, mail.at)
    lost = sum(1 for person in expected if not ids_per_person.get(person))
    last_after = None
    if since is not None and first_at:
        last_after = max(first_at.values()) - since
    return TemplateCount(
        template=template,
        expected=len(expected),
        delivered=len(expected) - lost,
        lost=lost,
        duplicated=sum(n - 1 for n in copies.values()),
        extra_decisions=sum(len(ids) - 1 for ids in ids_per_person.values()),
        unexpected=unexpected,
        last_after=last_after,
    )


def lost_people(template: str, accepted: Iterable[str], mails: Iterable[Mail]) -> list[str]:
    """The accepted people who got no copy of `template`, sorted."""
    got = {m.person for m in mails if m.template == template}
    return sorted(set(accepted) - got)


def count_read_model(
    accepted: Iterable[str], people_rows: Iterable[str], entered_by_person: Mapping[str, int]
) -> ReadModelCount:
    """Compare `people` rows and `entered` journey events with the accepted people."""
    expected = set(accepted)
    have = set(people_rows)
    return ReadModelCount(
        expected=len(expected),
        missing_people=len(expected - have),
        missing_entered=sum(1 for p in expected if entered_by_person.get(p, 0) == 0),
        extra_entered=sum(max(0, entered_by_person.get(p, 0) - 1) for p in expected),
    )


def exposed_messages(
    first_accepted: Mapping[str, float], attempts: Mapping[str, Sequence[float]]
) -> int:
    """Messages claimed for sending again after the relay had already accepted a copy.

    That is a kill (or pause) that landed between the relay's 250 and `sent` being recorded:
    the only duplicates an at-least-once sender cannot avoid. A copy sent by a sender that
    claimed the message *before* the first copy arrived (a zombie) is not exposure.
    """
    return sum(
        1
        for message_id, at in first_accepted.items()
        if any(claim > at for claim in attempts.get(message_id, ()))
    )


def first_accepted_at(mails: Iterable[Mail]) -> dict[str, float]:
    """Message id -> when the sink accepted its first copy."""
    first: dict[str, float] = {}
    for mail in mails:
        first.setdefault(mail.message_id, mail.at)
    return first


@dataclass(frozen=True)
class CaseResult:
    """Everything one fault case counted, ready to check against the targets and to report."""

    case: str
    size: str
    # Faults injected (kills, restarts, pauses) and the seed their timing came from.
    faults: int
    seed: int
    started: int
    accepted: int
    server_errors: int
    # Requests the clients had to send again (no answer, or not 200).
    client_retries: int
    emails: tuple[TemplateCount, ...]
    read_model: ReadModelCount
    # Seconds from the reference moment until the read model was complete (None: never).
    read_model_after: float | None
    # Seconds from the reference moment until every expected email had arrived (None: never).
    emails_after: float | None
    exposed: int
    lost_outbox: OutboxState
    # Outbox rows neither sent nor failed when counting ended.
    unfinished: int
    # The target: complete this many seconds after the reference moment.
    within: float = 30.0
    # The delivery side's own count of possible duplicates, where the worker exposes one.
    duplicate_metric: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def lost(self) -> int:
        return sum(t.lost for t in self.emails)

    @property
    def duplicated(self) -> int:
        return sum(t.duplicated for t in self.emails)

    @property
    def extra_decisions(self) -> int:
        return sum(t.extra_decisions for t in self.emails)

    @property
    def allowed_duplicates(self) -> int:
        """Duplicates the target allows: kills inside an SMTP exchange, as counted."""
        if self.duplicate_metric is not None:
            return max(self.exposed, self.duplicate_metric)
        return self.exposed


def violations(
    result: CaseResult, *, allow_exposed_duplicates: bool = True, trust_metric: bool = True
) -> list[str]:
    """The targets of the faults issue this case missed, each as a sentence with its numbers.

    Duplicates are allowed up to the sends a fault caught between the relay's 250 and `sent`;
    with `trust_metric=False` only as the suite counted them, not the delivery side's metric
    (which also counts leases a zombie still acts on)."""
    found: list[str] = []
    for t in result.emails:
        if t.lost:
            found.append(f"{t.lost} of {t.expected} {t.template} emails lost")
        if t.extra_decisions:
            found.append(f"{t.extra_decisions} {t.template} emails decided twice (a second message id)")
    allowed = 0
    if allow_exposed_duplicates:
        allowed = result.allowed_duplicates if trust_metric else result.exposed
    if result.duplicated > allowed:
        found.append(
            f"{result.duplicated} duplicated emails, more than the {allowed} sends a fault "
            "caught between the relay's 250 and `sent`"
        )
    rm = result.read_model
    if not rm.complete:
        found.append(
            f"read model incomplete: {rm.missing_people} of {rm.expected} people missing, "
            f"{rm.missing_entered} without an `entered` event, {rm.extra_entered} entered twice"
        )
    if result.lost == 0 and _late(result.emails_after, result.within):
        found.append(f"every email arrived only {_when(result.emails_after, result.within)}")
    if rm.complete and _late(result.read_model_after, result.within):
        found.append(f"read model complete only {_when(result.read_model_after, result.within)}")
    if result.accepted == 0:
        found.append("no signup was accepted: the case measured nothing")
    return found


def _late(after: float | None, within: float) -> bool:
    return after is None or after > within


def _when(after: float | None, within: float) -> str:
    if after is None:
        return f"after the deadline ({within:.0f}s after quiet), while waiting for late copies"
    return f"{after:.1f}s after quiet (target: within {within:.0f}s)"


def summary(result: CaseResult) -> str:
    """One paragraph of counts for the test output."""
    emails = "; ".join(
        f"{t.template}: {t.delivered}/{t.expected} delivered, lost {t.lost}, "
        f"duplicated {t.duplicated}, extra {t.extra_decisions}, unexpected {t.unexpected}"
        for t in result.emails
    )
    rm = result.read_model
    outbox = ", ".join(f"{k} {v}" for k, v in sorted(result.lost_outbox.by_status.items()))
    lines = [
        f"[{result.case}] size={result.size} seed={result.seed} faults={result.faults} "
        f"started={result.started} accepted={result.accepted} 5xx={result.server_errors} "
        f"client retries={result.client_retries}",
        f"  emails: {emails}",
        f"  duplicates allowed (relay had it, then re-claimed): {result.exposed}"
        + ("" if result.duplicate_metric is None else f"; delivery metric: {result.duplicate_metric}"),
        f"  lost emails in the outbox: no row {result.lost_outbox.no_row}"
        + (f", {outbox}" if outbox else "")
        + f"; unfinished outbox rows at the end: {result.unfinished}",
        f"  read model: people missing {rm.missing_people}, entered missing {rm.missing_entered}, "
        f"entered twice {rm.extra_entered}; complete after {_secs(result.read_model_after)}; "
        f"every email after {_secs(result.emails_after)}",
    ]
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


MARKDOWN_HEADER = (
    "| case | size | faults | accepted | welcome lost | followup lost | duplicated "
    "(allowed) | read model missing (people / entered) | emails complete | read model complete |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def markdown_row(result: CaseResult) -> str:
    """The case as a row of docs/faults.md's table."""
    lost = {t.template: t.lost for t in result.emails}
    rm = result.read_model
    return (
        f"| {result.case} | {result.size} | {result.faults} | {result.accepted} | "
        f"{lost.get('welcome', '-')} | {lost.get('followup', '-')} | "
        f"{result.duplicated} ({result.allowed_duplicates}) | "
        f"{rm.missing_people} / {rm.missing_entered} | {_secs(result.emails_after)} | "
        f"{_secs(result.read_model_after)} |"
    )

"""How the fault suite counts: lost, duplicated, decided twice, exposure, the read model."""

from __future__ import annotations

from deploy.local.fault_counts import (
    CaseResult,
    Mail,
    OutboxState,
    count_read_model,
    count_template,
    exposed_messages,
    first_accepted_at,
    violations,
)


def mail(person: str, template: str = "welcome", message_id: str | None = None, at: float = 0.0) -> Mail:
    return Mail(person, template, message_id or f"{person}-{template}", at)


def result(**changes) -> CaseResult:
    values = dict(
        case="c", size="ci", faults=1, seed=0, started=2, accepted=2, server_errors=0,
        client_retries=0,
        emails=(count_template("welcome", ["a", "b"], [mail("a"), mail("b")], since=0.0),),
        read_model=count_read_model(["a", "b"], ["a", "b"], {"a": 1, "b": 1}),
        read_model_after=1.0, emails_after=1.0, exposed=0, lost_outbox=OutboxState(),
        unfinished=0,
    )
    values.update(changes)
    return CaseResult(**values)


def test_an_accepted_person_without_a_copy_is_lost():
    count = count_template("welcome", ["a", "b"], [mail("a")])
    assert (count.expected, count.delivered, count.lost) == (2, 1, 1)


def test_copies_after_the_first_of_one_message_id_are_duplicates():
    count = count_template("welcome", ["a"], [mail("a"), mail("a"), mail("a")])
    assert (count.lost, count.duplicated, count.extra_decisions) == (0, 2, 0)


def test_a_second_message_id_for_one_person_and_template_is_a_decision_made_twice():
    count = count_template("welcome", ["a"], [mail("a", message_id="m1"), mail("a", message_id="m2")])
    assert (count.duplicated, count.extra_decisions) == (0, 1)


def test_mail_to_someone_never_accepted_is_unexpected_not_delivered():
    count = count_template("welcome", ["a"], [mail("a"), mail("z")])
    assert (count.delivered, count.unexpected) == (1, 1)


def test_other_templates_do_not_count():
    assert count_template("welcome", ["a"], [mail("a", "followup")]).lost == 1


def test_the_last_first_copy_is_timed_from_the_reference_moment():
    count = count_template("welcome", ["a", "b"], [mail("a", at=10.0), mail("b", at=14.0),
                                                   mail("b", at=40.0)], since=12.0)
    assert count.last_after == 2.0


def test_a_claim_after_the_relay_accepted_a_copy_is_exposure():
    first = first_accepted_at([mail("a", at=5.0), mail("b", at=5.0)])
    assert exposed_messages(first, {"a-welcome": [1.0, 6.0], "b-welcome": [1.0]}) == 1


def test_a_zombie_claim_made_before_the_first_copy_arrived_is_not_exposure():
    first = first_accepted_at([mail("a", at=5.0), mail("a", at=9.0)])
    assert exposed_messages(first, {"a-welcome": [1.0, 2.0]}) == 0


def test_the_read_model_counts_missing_rows_and_double_entries():
    count = count_read_model(["a", "b", "c"], ["a", "b"], {"a": 1, "c": 2})
    assert (count.missing_people, count.missing_entered, count.extra_entered) == (1, 1, 1)
    assert not count.complete


def test_a_clean_case_has_no_violations():
    assert violations(result()) == []


def test_a_lost_email_is_a_violation():
    emails = (count_template("welcome", ["a", "b"], [mail("a")]),)
    assert violations(result(emails=emails)) == ["1 of 2 welcome emails lost"]


def test_duplicates_are_allowed_only_up_to_the_exposed_sends():
    emails = (count_template("welcome", ["a", "b"], [mail("a"), mail("a"), mail("b")]),)
    assert violations(result(emails=emails, exposed=1)) == []
    assert len(violations(result(emails=emails, exposed=0))) == 1
    assert len(violations(result(emails=emails, exposed=1), allow_exposed_duplicates=False)) == 1


def test_everything_arriving_after_the_target_is_a_violation():
    assert violations(result(emails_after=45.0)) == [
        "every email arrived only 45.0s after quiet (target: within 30s)"
    ]


def test_a_case_that_accepted_nobody_fails():
    empty = result(accepted=0, emails=(count_template("welcome", [], []),),
                   read_model=count_read_model([], [], {}))
    assert violations(empty) == ["no signup was accepted: the case measured nothing"]


def test_a_zombie_case_does_not_take_the_delivery_metric_as_an_allowance():
    emails = (count_template("welcome", ["a", "b"], [mail("a"), mail("a"), mail("b")]),)
    assert violations(result(emails=emails, duplicate_metric=1)) == []
    assert len(violations(result(emails=emails, duplicate_metric=1), trust_metric=False)) == 1

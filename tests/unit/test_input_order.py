"""The person agent applies each partition's messages in offset order, none skipped."""

from agents.person.input_order import InputOrder, Order


def test_a_partition_not_started_is_unknown() -> None:
    assert InputOrder().admit(0, 5) is Order.UNKNOWN


def test_the_expected_offset_is_applied_and_the_next_one_expected() -> None:
    order = InputOrder()
    order.start(1, 19)
    assert [order.admit(1, offset) for offset in (19, 20, 21)] == [Order.APPLY] * 3
    assert order.expected(1) == 22


def test_an_offset_below_the_expected_one_was_applied_before() -> None:
    order = InputOrder()
    order.start(1, 19)
    order.admit(1, 19)
    assert order.admit(1, 19) is Order.REPLAYED
    assert order.admit(1, 3) is Order.REPLAYED
    assert order.expected(1) == 20


def test_an_offset_past_a_missing_one_is_not_applied_and_does_not_move_the_expectation() -> None:
    order = InputOrder()
    order.start(1, 19)
    assert order.admit(1, 56) is Order.AHEAD
    assert order.expected(1) == 19
    assert order.admit(1, 19) is Order.APPLY


def test_partitions_are_independent() -> None:
    order = InputOrder()
    order.start(0, 7)
    order.start(1, 19)
    assert order.admit(0, 7) is Order.APPLY
    assert order.admit(1, 7) is Order.REPLAYED


def test_a_revoked_partition_is_learnt_again() -> None:
    order = InputOrder()
    order.start(1, 19)
    order.forget([1])
    assert order.expected(1) is None
    assert order.admit(1, 19) is Order.UNKNOWN

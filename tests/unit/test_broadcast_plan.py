"""Broadcast planning and per-person sends (pure): one start per partition, deterministic ids."""

from __future__ import annotations

import pytest

from agents.broadcast.plan import BroadcastError, plan_broadcast, plan_reevaluation
from agents.person.ids import broadcast_message_id
from schemas.campaigns import Campaign

NEWS = Campaign.model_validate({"id": "news", "steps": [{"send": "newsletter"}]})


def test_a_broadcast_is_one_start_per_partition_sharing_the_rate() -> None:
    starts = plan_broadcast(NEWS, "pro", 4, rate=100)
    assert [s.partition for s in starts] == [0, 1, 2, 3]
    assert {s.id for s in starts} == {starts[0].id} and all(s.rate == 25 for s in starts)
    assert starts[0].template == "newsletter"


def test_only_a_single_send_campaign_can_be_broadcast() -> None:
    drip = Campaign.model_validate({"id": "d", "steps": [{"send": "a"}, {"wait": "1d"}, {"send": "b"}]})
    with pytest.raises(BroadcastError, match="exactly one step"):
        plan_broadcast(drip, "pro", 4)


def test_a_reevaluation_covers_every_partition() -> None:
    assert [s.kind for s in plan_reevaluation(3, reason="x")] == ["reevaluate"] * 3


def test_the_message_id_depends_only_on_broadcast_and_person() -> None:
    assert broadcast_message_id("b1", "ana") == broadcast_message_id("b1", "ana")
    assert broadcast_message_id("b1", "ana") != broadcast_message_id("b2", "ana")

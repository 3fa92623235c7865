"""Snapshot on subscribe in the state machine and the hold-back rule, with plain values."""

from __future__ import annotations

from typing import Any

from autosdlc_ws.broker.base import LOCAL_EPOCH, BrokerEvent, Position, VectorPosition
from autosdlc_ws.core.connection_core import AddSubscription, Send, SendSnapshot
from autosdlc_ws.core.last_values import still_live
from tests.unit.test_connection_core import authed, frames, send, subscribe


def with_snapshot(msg: dict[str, Any], value: object = True) -> dict[str, Any]:
    msg["data"]["snapshot"] = value
    return msg


def test_a_snapshot_is_asked_for_after_the_subscription_is_added_and_answered() -> None:
    core = authed()
    actions = send(core, with_snapshot(subscribe(["agent_status"], {"agentId": "a1"})))
    assert [type(a) for a in actions] == [AddSubscription, Send, SendSnapshot]
    add, _, snap = actions
    assert isinstance(add, AddSubscription) and isinstance(snap, SendSnapshot)
    assert snap.subscription is add.subscription
    assert frames(actions)[0]["data"]["status"] == "active"


def test_no_snapshot_unless_asked() -> None:
    core = authed()
    assert [type(a) for a in send(core, subscribe(["agent_status"]))] == [AddSubscription, Send]
    assert [type(a) for a in send(core, with_snapshot(subscribe(["agent_status"], msg_id="s2"), False))] == [
        AddSubscription, Send]


def test_snapshot_must_be_a_boolean() -> None:
    core = authed()
    (reply,) = frames(send(core, with_snapshot(subscribe(["agent_status"]), "yes")))
    assert reply["type"] == "error" and reply["data"]["code"] == "invalid_message"
    assert core.subscriptions == {}


def test_may_read_applies_the_connections_read_permissions_per_event() -> None:
    core = authed(perms=("read:agent:a1",))
    assert core.may_read({"type": "agent_status", "data": {"agentId": "a1"}})
    assert core.may_read({"type": "tdd_phase_change", "data": {"agentId": "a1", "taskId": "t9"}})
    assert not core.may_read({"type": "agent_status", "data": {"agentId": "a2"}})
    assert not core.may_read({"type": "system_notification", "data": {"message": "m"}})
    assert not core.may_read({"type": "agent_status", "data": "not an object"})


def test_held_back_live_events_covered_by_the_snapshot_are_dropped() -> None:
    types = frozenset({"agent_status"})
    filters = {"agentId": frozenset({"a1"})}
    a1 = {"type": "agent_status", "data": {"agentId": "a1"}}
    a2 = {"type": "agent_status", "data": {"agentId": "a2"}}
    snap = Position("e1", 10)

    def live(event: dict[str, object], offset: int, epoch: str = "e1") -> bool:
        return still_live(event, snap.covers(BrokerEvent(dict(event), offset, epoch)), types, filters)

    assert not live(a1, 10)  # at or below the snapshot's position
    assert not live(a1, 3)
    assert live(a1, 11)  # after it: live
    assert live(a2, 5)  # for another subscription of the connection
    assert live(a1, 0, LOCAL_EPOCH)  # a local alert is never in a snapshot


def test_a_vector_snapshot_covers_per_partition_and_epoch() -> None:
    snap = VectorPosition((Position("e0", 10), Position("e1", 3), Position("", 0)))
    assert snap.covers(BrokerEvent({}, 10, "e0", 0))
    assert not snap.covers(BrokerEvent({}, 11, "e0", 0))
    assert not snap.covers(BrokerEvent({}, 4, "e1", 1))  # its own partition's offset counts
    assert not snap.covers(BrokerEvent({}, 2, "other", 1))  # another epoch: never covered
    assert not snap.covers(BrokerEvent({}, 1, "x", 2))  # a partition never read
    assert not snap.covers(BrokerEvent({}, 1, "e0", 7))  # beyond the vector
    assert not snap.covers(BrokerEvent({}, 0, LOCAL_EPOCH, 0))

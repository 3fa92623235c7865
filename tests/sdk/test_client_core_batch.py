"""The client core with batched frames (protocol 1.1): an array frame is several events,
each handled exactly as if it had come alone. Plain values, no sockets."""

from __future__ import annotations

import gzip

import orjson

from autosdlc_ws.client.actions import Deliver, DropSocket, StateChanged
from autosdlc_ws.client.events import ConnectionState
from tests.sdk.core_helpers import T0, event, frame, make_core, of, open_link, started


def batch(*frames: str) -> str:
    return "[" + ",".join(frames) + "]"


def test_batch_opt_in_goes_into_the_upgrade() -> None:
    assert make_core(batch=True, compression="gzip").upgrade_params() == {"compression": "gzip", "batch": "1"}
    assert "batch" not in make_core().upgrade_params()


def test_an_array_frame_is_one_deliver_per_event_in_order() -> None:
    core = started(batch=True)
    actions = core.receive(batch(event("evt-1"), event("evt-2"), event("evt-3")), T0)
    assert actions == [Deliver("agent_log", orjson.loads(event(f"evt-{i}")), True) for i in (1, 2, 3)]
    assert core.stats.events_received == 3 and core.last_event_id == "evt-3"


def test_events_in_a_batch_are_deduplicated_like_single_ones() -> None:
    core = started(batch=True)
    core.receive(event("evt-1"), T0)
    actions = core.receive(batch(event("evt-1"), event("evt-2"), event("evt-2")), T0)
    assert [d.frame["id"] for d in of(actions, Deliver)] == ["evt-2"]
    assert core.stats.duplicates_dropped == 2 and core.last_event_id == "evt-2"


def test_snapshot_events_in_a_batch_do_not_move_the_resume_position() -> None:
    core = started(batch=True)
    snap = frame("agent_status", {"agentId": "a", "status": "idle"}, id="snap-1", metadata={"snapshot": True})
    core.receive(batch(event("evt-1"), snap), T0)
    assert core.last_event_id == "evt-1"


def test_a_gzip_array_is_decoded_too() -> None:
    core = started(batch=True, compression="gzip")
    payload = gzip.compress(batch(event("evt-1"), event("evt-2")).encode())
    assert [d.frame["id"] for d in of(core.receive(payload, T0), Deliver)] == ["evt-1", "evt-2"]


def test_a_resumed_replay_in_batches_continues_from_the_last_event() -> None:
    core = started(batch=True)
    core.receive(batch(event("evt-1"), event("evt-2")), T0)
    core.connection_lost(1006, "cut", T0)
    assert core.upgrade_params() == {"batch": "1", "session_id": "s-1", "last_event_id": "evt-2"}
    open_link(core, session="s-1", resumed=True)
    actions = core.receive(batch(event("evt-2"), event("evt-3"), event("evt-4")), T0)
    assert [d.frame["id"] for d in of(actions, Deliver)] == ["evt-3", "evt-4"]


def test_bad_arrays_are_ignored_whole() -> None:
    core = started(batch=True)
    for bad in ("[]", "[1, 2]", batch(event("evt-1"), '{"no": "type"}')):
        assert core.receive(bad, T0) == []
    assert core.stats.events_received == 0 and core.last_event_id is None


def test_a_batch_arriving_before_connect_fails_the_handshake_once() -> None:
    core = make_core(batch=True)
    core.start()
    core.socket_opened()
    actions = core.receive(batch(event("evt-1"), event("evt-2")), T0)
    assert len(of(actions, DropSocket)) == 1  # the second envelope belongs to a dropped link
    assert StateChanged(ConnectionState.OPEN) not in actions

"""Batched frames with plain values: how a batch connection's queue becomes frames."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from autosdlc_ws.core.batches import BatchMemo, array_frame, frames_for, split_runs
from autosdlc_ws.core.envelope import EncodedEvent
from autosdlc_ws.core.frames import OP_BINARY, OP_TEXT, build_frame

THRESHOLD = 1024


def ev(event_id: str, size: int = 0) -> EncodedEvent:
    return EncodedEvent({"id": event_id, "type": "agent_log", "timestamp": 1,
                         "data": {"agentId": "a", "message": "x" * size}, "metadata": {"version": "1.0"}},
                        gzip_threshold=THRESHOLD)


def unframe(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one unmasked server frame."""
    opcode, length = frame[0] & 0x0F, frame[1] & 0x7F
    offset = 2
    if length == 126:
        length, offset = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, offset = int.from_bytes(frame[2:10], "big"), 10
    assert len(frame) == offset + length, "exactly one frame"
    return opcode, frame[offset:]


def payload(frame: bytes) -> Any:
    opcode, body = unframe(frame)
    return orjson.loads(gzip.decompress(body) if opcode == OP_BINARY else body)


def test_a_run_of_events_is_one_array_of_their_exact_json_in_order() -> None:
    events = [ev("e1"), ev("e2"), ev("e3")]
    [frame] = frames_for(events, gzip=False, gzip_threshold=THRESHOLD, max_batch_bytes=65536)
    opcode, body = unframe(frame)
    assert opcode == OP_TEXT
    assert body == b"[" + b",".join(e.json for e in events) + b"]"
    assert [m["id"] for m in orjson.loads(body)] == ["e1", "e2", "e3"]


def test_a_single_event_is_its_plain_shared_frame_not_an_array() -> None:
    one = ev("solo")
    assert frames_for([one], gzip=False, gzip_threshold=THRESHOLD, max_batch_bytes=65536) == [one.text_frame]
    control = build_frame(OP_TEXT, b'{"type":"pong"}')
    frames = frames_for([control, one], gzip=False, gzip_threshold=THRESHOLD, max_batch_bytes=65536)
    assert frames == [control, one.text_frame]


def test_control_frames_keep_their_place_between_runs() -> None:
    reply = build_frame(OP_TEXT, b'{"type":"subscription_update"}')
    e1, e2, e3, e4 = ev("e1"), ev("e2"), ev("e3"), ev("e4")
    frames = frames_for([e1, e2, reply, e3, e4], gzip=False, gzip_threshold=THRESHOLD, max_batch_bytes=65536)
    assert len(frames) == 3
    assert [m["id"] for m in payload(frames[0])] == ["e1", "e2"]
    assert frames[1] is reply
    assert [m["id"] for m in payload(frames[2])] == ["e3", "e4"]


def test_arrays_are_split_at_max_batch_bytes_exactly() -> None:
    events = [ev(f"e{i}", size=100) for i in range(5)]
    size = len(events[0].json)
    two = 2 + 2 * size + 1  # "[a,b]"
    runs = split_runs(events, two)
    assert [len(r) for r in runs] == [2, 2, 1]
    assert [len(r) for r in split_runs(events, two - 1)] == [1, 1, 1, 1, 1]
    frames = frames_for(events, gzip=False, gzip_threshold=10**6, max_batch_bytes=two)
    assert all(len(unframe(f)[1]) <= two for f in frames)
    assert frames[2] == events[4].text_frame  # the leftover single is a plain envelope
    ids = [m["id"] for f in frames for m in (lambda p: p if isinstance(p, list) else [p])(payload(f))]
    assert ids == [f"e{i}" for i in range(5)]


def test_an_event_bigger_than_the_batch_limit_goes_alone() -> None:
    small, big, small2 = ev("s1"), ev("big", size=500), ev("s2")
    runs = split_runs([small, big, small2], 300)
    assert [tuple(e.message["id"] for e in r) for r in runs] == [("s1",), ("big",), ("s2",)]


def test_gzip_clients_get_one_gzip_array_marked_compressed_above_the_threshold() -> None:
    events = [ev("e1", size=400), ev("e2", size=400), ev("e3", size=400)]
    [frame] = frames_for(events, gzip=True, gzip_threshold=THRESHOLD, max_batch_bytes=65536)
    opcode, _ = unframe(frame)
    assert opcode == OP_BINARY
    decoded = payload(frame)
    assert [m["id"] for m in decoded] == ["e1", "e2", "e3"]
    assert all(m["metadata"] == {"version": "1.0", "compressed": True} for m in decoded)
    # under the threshold the array stays text, as a small single event does
    small = [ev("s1"), ev("s2")]
    [text] = frames_for(small, gzip=True, gzip_threshold=THRESHOLD, max_batch_bytes=65536)
    assert unframe(text)[0] == OP_TEXT and not any("compressed" in m["metadata"] for m in payload(text))


def test_the_memo_builds_each_distinct_queue_once_per_flush() -> None:
    events = [ev("e1"), ev("e2")]
    memo = BatchMemo()
    options: dict[str, Any] = {"gzip_threshold": THRESHOLD, "max_batch_bytes": 65536}
    first = memo.frames(events, gzip=False, **options)
    again = memo.frames(list(events), gzip=False, **options)
    assert first is again and (memo.built, memo.reused) == (1, 1)
    assert first == frames_for(events, gzip=False, **options)
    zipped = memo.frames(events, gzip=True, gzip_threshold=0, max_batch_bytes=65536)
    assert unframe(zipped[0])[0] == OP_BINARY and memo.built == 2  # gzip never shares a plain array
    other = memo.frames([events[1], events[0]], gzip=False, **options)
    assert [m["id"] for m in payload(other[0])] == ["e2", "e1"] and memo.built == 3
    reply = build_frame(OP_TEXT, b'{"type":"pong"}')
    mixed = memo.frames([reply, *events], gzip=False, **options)
    assert mixed[0] is reply and mixed[1] == first[0] and memo.built == 4


@pytest.mark.parametrize("gzip_client", [False, True])
def test_array_frame_matches_frames_for(gzip_client: bool) -> None:
    events = [ev("e1", size=600), ev("e2", size=600)]
    assert frames_for(events, gzip=gzip_client, gzip_threshold=THRESHOLD, max_batch_bytes=65536) == \
        [array_frame(events, gzip=gzip_client, gzip_threshold=THRESHOLD)]

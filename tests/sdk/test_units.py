"""The SDK's pure parts: backoff, bounded queues, patterns, frame decoding, models."""

from __future__ import annotations

import gzip

import orjson
import pytest

from autosdlc_ws.client import (
    Backoff,
    ConnectionClosed,
    QueueFull,
    ReconnectPolicy,
    TokenExpired,
    full_jitter,
)
from autosdlc_ws.client.backoff import parse_retry_after
from autosdlc_ws.client.close_rules import close_outcome
from autosdlc_ws.client.events import FrameError, decode_frame, is_event, matches, to_model, validate_pattern
from autosdlc_ws.client.queue import Outbox, QueuedFrame, SeenIds
from autosdlc_ws.core.messages import AgentStatusMessage, Envelope
from autosdlc_ws.errors import RECONNECT_CODES


def test_full_jitter_bounds_and_growth() -> None:
    assert full_jitter(0, 0.5, 30, lambda: 0.999) < 0.5
    assert full_jitter(3, 0.5, 30, lambda: 1.0) == 4.0
    assert full_jitter(10, 0.5, 30, lambda: 1.0) == 30  # capped
    assert full_jitter(10_000, 0.5, 30, lambda: 1.0) == 30  # no overflow
    assert full_jitter(5, 0.5, 30, lambda: 0.0) == 0


def test_backoff_counts_resets_and_gives_up() -> None:
    backoff = Backoff(1, 8, max_attempts=3, rng=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(4)] == [1, 2, 4, None]
    backoff.reset()
    assert backoff.next_delay() == 1
    with pytest.raises(ValueError):
        ReconnectPolicy(base=2, cap=1)
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=0)


def test_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_outbox_bound_requeue_and_removal() -> None:
    box = Outbox(2)
    box.append(QueuedFrame("a"))
    box.append(QueuedFrame("b", "req-1"))
    with pytest.raises(QueueFull):
        box.append(QueuedFrame("c"))
    box.requeue_front([QueuedFrame("x", "req-0")])  # in-flight requests: front, outside the bound
    assert [i.text for i in box] == ["x", "a", "b"]
    assert box.remove_request("req-1") and not box.remove_request("req-1")
    box.append(QueuedFrame("c"))
    first = box.popleft()
    box.appendleft(first)
    assert [box.popleft().text for _ in range(len(box))] == ["x", "a", "c"]


def test_seen_ids_is_a_bounded_lru() -> None:
    seen = SeenIds(2)
    assert seen.add("a") and seen.add("b") and not seen.add("a")
    assert seen.add("c")  # evicts b (a was touched)
    assert "a" in seen and "b" not in seen and len(seen) == 2


def test_patterns() -> None:
    assert matches("*", "agent_status") and matches("tdd_*", "tdd_phase_change")
    assert not matches("*", "pong") and matches("pong", "pong")
    assert matches("*", "brand_new_event")  # a newer server's event type is still an event
    assert not is_event("$reset") and not is_event("subscription_update")
    for bad in ("Agent", "no_such_*", "a*b"):
        with pytest.raises(ValueError):
            validate_pattern(bad)
    validate_pattern("$reset")
    validate_pattern("future_event")


def test_decode_frame_text_gzip_and_limits() -> None:
    obj = {"id": "e", "type": "agent_log", "timestamp": 1, "data": {"message": "x" * 100}}
    raw = orjson.dumps(obj)
    assert decode_frame(raw.decode(), binary=False, max_decompressed=1000) == obj
    assert decode_frame(gzip.compress(raw), binary=True, max_decompressed=1000) == obj
    with pytest.raises(FrameError):
        decode_frame(gzip.compress(raw), binary=True, max_decompressed=50)
    for bad in (b"not gzip",):
        with pytest.raises(FrameError):
            decode_frame(bad, binary=True, max_decompressed=1000)
    with pytest.raises(FrameError):
        decode_frame("[1, 2]", binary=False, max_decompressed=1000)


def test_to_model_types_and_falls_back() -> None:
    typed = to_model({"id": "e", "type": "agent_status", "timestamp": 1,
                      "data": {"agentId": "a", "status": "busy"}})
    assert isinstance(typed, AgentStatusMessage)
    unknown = to_model({"id": "e", "type": "brand_new_event", "timestamp": 1, "data": {"k": 1}})
    assert type(unknown) is Envelope and unknown.type == "brand_new_event"
    assert unknown.data.model_extra == {"k": 1}
    invalid = to_model({"id": "e", "type": "agent_status", "timestamp": 1, "data": {"status": "new"}})
    assert type(invalid) is Envelope  # not dropped: delivered untyped


def test_close_code_table() -> None:
    for code in (*RECONNECT_CODES, 1000, 1012, 4999):
        assert close_outcome(code, "", None, False) is None
    for code in (1008, 1009, 4001):
        stop = close_outcome(code, "why", None, True)
        assert isinstance(stop, ConnectionClosed) and stop.code == code and stop.reason == "why"
    assert isinstance(close_outcome(4003, "", None, False), TokenExpired)
    assert close_outcome(4003, "", None, True) is None  # a provider gives a fresh token
    told = close_outcome(1001, "going away", {"reason": "retired", "reconnect": False}, True)
    assert isinstance(told, ConnectionClosed) and told.reason == "retired"
    assert close_outcome(1001, "", {"reason": "restart", "reconnect": True}, False) is None

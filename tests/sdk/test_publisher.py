"""`Publisher`: HTTP publishing with client-side ids, idempotent retries and batching."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from autosdlc_ws.client import (
    AutoSDLCWebSocket,
    Publisher,
    PublishFailed,
    PublishRejected,
    QueueFull,
)
from autosdlc_ws.client.publisher import events_url
from autosdlc_ws.errors import BrokerUnavailable
from tests.conftest import PUBLISHER_KEY, RunningGateway, base_settings, free_port, make_token, timeout
from tests.sdk.conftest import wait_until


def log(i: int) -> dict[str, Any]:
    return {"agentId": "p", "level": "info", "message": f"m{i}", "seq": i}


async def collect(ws: AutoSDLCWebSocket, n: int) -> list[Any]:
    return [await asyncio.wait_for(ws.__anext__(), timeout(5)) for _ in range(n)]


async def test_publish_and_publish_many(server: RunningGateway) -> None:
    async with AutoSDLCWebSocket(server.ws_url, token=make_token()) as ws, \
            Publisher(server.http_url, api_key=PUBLISHER_KEY, source="tests") as pub:
        await ws.subscribe(["agent_log"], {"agentId": "p"})
        one = await pub.publish("agent_log", log(0), id="evt-chosen-by-caller")
        assert one == "evt-chosen-by-caller"
        many = await pub.publish_many([{"type": "agent_log", "data": log(i)} for i in range(1, 1201)])
        assert len(many) == 1200 and len(set(many)) == 1200
        assert pub.attempts == 3  # one + 1000 + 200 (the gateway takes at most 1000 per request)
        got = await collect(ws, 1201)
        assert [e.id for e in got] == [one, *many]
        assert got[0].metadata.source == "tests"


async def test_validation_errors_are_not_retried(server: RunningGateway) -> None:
    async with Publisher(server.http_url, token=make_token()) as pub:
        with pytest.raises(PublishRejected) as single:
            await pub.publish("agent_status", {"status": "busy"})
        assert (single.value.status, single.value.code, single.value.path) == (422, "invalid_message",
                                                                              "data.agentId")
        with pytest.raises(PublishRejected) as batch:
            await pub.publish_many([{"type": "agent_log", "data": log(0)},
                                    {"type": "agent_status", "data": {"agentId": "p", "status": 5}}])
        assert batch.value.path == "[1].data.status"
        assert pub.attempts == 2
    async with Publisher(server.http_url, api_key="wrong") as bad:
        with pytest.raises(PublishRejected) as unauthorized:
            await bad.publish("agent_log", log(0))
        assert unauthorized.value.status == 401 and bad.attempts == 1
    async with Publisher(server.http_url, token=make_token(permissions=("read:*",))) as reader:
        with pytest.raises(PublishRejected) as forbidden:
            await reader.publish("agent_log", log(0))
        assert forbidden.value.status == 403


async def test_retry_after_503_is_idempotent(server: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    event_log = server.gateway.backend.log
    original = event_log.publish
    calls: list[int] = []

    async def accepted_but_answer_lost(events: Any) -> Any:
        calls.append(len(events))
        receipts = await original(events)
        if len(calls) == 1:
            raise BrokerUnavailable("simulated: stored, then the broker connection dropped")
        return receipts

    monkeypatch.setattr(event_log, "publish", accepted_but_answer_lost)
    async with AutoSDLCWebSocket(server.ws_url, token=make_token()) as ws, \
            Publisher(server.http_url, token=make_token(), backoff_base=0.01) as pub:
        await ws.subscribe(["agent_log"], {"agentId": "p"})
        event_id = await pub.publish("agent_log", log(1))
        assert pub.attempts == 2 and calls == [1, 1]
        await pub.publish("agent_log", log(2))
        got = await collect(ws, 2)
        assert got[0].id == event_id and got[1].data.message == "m2"  # the retried one came once


async def test_429_honours_retry_after(gateway_factory: Any) -> None:
    running = await gateway_factory(base_settings(rate_publish_per_s=2.0, rate_publish_burst=1))
    async with Publisher(running.http_url, token=make_token(), backoff_base=0.01) as pub:
        for i in range(5):  # the HTTP limiter allows a burst of 5 here
            await pub.publish("agent_log", log(i))
        started = time.monotonic()
        await pub.publish("agent_log", log(5))
        assert pub.attempts == 7 and time.monotonic() - started >= 0.9  # Retry-After: 1


async def test_network_errors_retry_then_fail() -> None:
    pub = Publisher(f"http://127.0.0.1:{free_port()}", token="t", max_attempts=3, backoff_base=0.01)
    with pytest.raises(PublishFailed) as failed:
        await pub.publish("agent_log", log(0))
    assert failed.value.attempts == 3 and failed.value.status is None
    await pub.close()


async def test_auto_batching_by_size_and_by_time(server: RunningGateway) -> None:
    async with AutoSDLCWebSocket(server.ws_url, token=make_token()) as ws:
        await ws.subscribe(["agent_log"], {"agentId": "p"})
        async with Publisher(server.http_url, token=make_token(), batch_size=10, flush_interval=30) as pub:
            ids = [pub.enqueue("agent_log", log(i)) for i in range(25)]
            await wait_until(lambda: pub.attempts == 2)  # two full batches went at once
            await asyncio.sleep(0.05)
            assert pub.pending == 5 and pub.attempts == 2
            await pub.flush()
            assert pub.pending == 0 and pub.attempts == 3
        assert [e.id for e in await collect(ws, 25)] == ids
        async with Publisher(server.http_url, token=make_token(), batch_size=100, flush_interval=0.05) as pub:
            timed = [pub.enqueue("agent_log", log(i)) for i in range(3)]
            await wait_until(lambda: pub.pending == 0, 2)  # sent by the timer, no flush()
            assert pub.attempts == 1
            small = Publisher(server.http_url, token=make_token(), max_pending=2, flush_interval=30)
            small.enqueue("agent_log", log(0))
            small.enqueue("agent_log", log(1))
            with pytest.raises(QueueFull):
                small.enqueue("agent_log", log(2))
            await small.close()  # flushes the two
        assert [e.id for e in await collect(ws, 5)][:3] == timed


async def test_background_failures_surface_on_flush(server: RunningGateway) -> None:
    errors: list[Exception] = []
    pub = Publisher(server.http_url, token=make_token(), on_error=errors.append)
    pub.enqueue("agent_status", {"agentId": "p"})  # invalid: no status
    with pytest.raises(PublishRejected):
        await pub.flush()
    assert len(errors) == 1
    await pub.close()


def test_events_url() -> None:
    assert events_url("http://h:1") == "http://h:1/api/v1/events"
    assert events_url("ws://h:1/ws") == "http://h:1/api/v1/events"
    assert events_url("wss://h/prefix/ws?token=x") == "https://h/prefix/api/v1/events"
    assert events_url("https://h/api/v1/events") == "https://h/api/v1/events"

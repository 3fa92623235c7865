"""Batched frames and the write delay against the real gateway (CONTRACT.md section 11)."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

from autosdlc_ws.client import AutoSDLCWebSocket
from tests.conftest import RunningGateway, base_settings, make_token, timeout
from tests.integration.helpers import Client, agent_status, open_authed, open_ws, publish
from tests.integration.test_resume import until_gone


def ids(frame: Any) -> list[str]:
    items = frame if isinstance(frame, list) else [frame]
    return [item["id"] for item in items]


async def recv_json(client: Client) -> Any:
    raw = await client.recv_raw()
    return json.loads(gzip.decompress(raw) if isinstance(raw, bytes) else raw)


async def test_events_of_one_flush_arrive_as_one_array_and_others_are_unchanged(server: RunningGateway) -> None:
    batcher = await open_authed(server, query="batch=1")
    plain = await open_authed(server)
    try:
        assert batcher.connect is not None and batcher.connect["data"]["limits"]["maxBatchBytes"] == 65536
        for c in (batcher, plain):
            await c.subscribe(["agent_status"])
        events = [agent_status("a1", f"e{i}") for i in range(3)]
        await publish(server, events)
        raw = await batcher.recv_raw()
        assert isinstance(raw, str) and raw.startswith("[")
        batch = json.loads(raw)
        assert ids(batch) == ["e0", "e1", "e2"]
        singles = [await plain.recv_raw() for _ in events]
        assert all(isinstance(s, str) and s.startswith("{") for s in singles)
        # the array is the plain frames' exact bytes, glued
        assert raw == "[" + ",".join(str(s) for s in singles) + "]"

        await publish(server, agent_status("a1", "alone"))
        alone = json.loads(await batcher.recv_raw())
        assert isinstance(alone, dict) and alone["id"] == "alone"  # one due event: a plain envelope
        # replies are never batched
        reply = await batcher.request("ping", {})
        assert reply["type"] == "pong"
    finally:
        await batcher.close()
        await plain.close()


async def test_batch_opt_in_in_band_and_gzip_of_the_whole_array(server: RunningGateway) -> None:
    client = await open_ws(server.ws_url)
    try:
        await client.recv_type("connect")
        await client.send({"id": "auth", "type": "auth_request", "timestamp": 0,
                           "data": {"token": make_token(), "compression": "gzip", "batch": True}})
        await client.recv_type("connect")
        await client.recv_type("auth_success")
        await client.subscribe(["agent_status"])
        events = [agent_status("a1", f"g{i}", message="x" * 600) for i in range(3)]
        await publish(server, events)
        raw = await client.recv_raw()
        assert isinstance(raw, bytes), "an array over the gzip threshold is one binary gzip frame"
        batch = json.loads(gzip.decompress(raw))
        assert ids(batch) == ["g0", "g1", "g2"]
        assert all(item["metadata"]["compressed"] is True for item in batch)
    finally:
        await client.close()


async def test_arrays_stay_under_max_batch_bytes(gateway_factory: Any) -> None:
    server = await gateway_factory(base_settings(max_batch_bytes=1500))
    client = await open_authed(server, query="batch=1")
    try:
        await client.subscribe(["agent_status"])
        events = [agent_status("a1", f"s{i}", message="y" * 300) for i in range(10)]
        await publish(server, events)
        got: list[str] = []
        while len(got) < len(events):
            raw = await client.recv_raw()
            assert isinstance(raw, str) and len(raw.encode()) <= 1500
            got += ids(json.loads(raw))
        assert got == [f"s{i}" for i in range(10)]
    finally:
        await client.close()


async def test_resume_replays_in_batches(server: RunningGateway) -> None:
    token = make_token()
    first = await open_authed(server, token=token, query="batch=1")
    assert first.connect is not None
    session_id = first.connect["data"]["sessionId"]
    await first.subscribe(["agent_status"])
    await publish(server, agent_status("a1", "before"))
    assert ids(await recv_json(first)) == ["before"]
    await first.close()
    await until_gone(server, first)
    await publish(server, [agent_status("a1", f"m{i}") for i in range(5)])

    again = await open_authed(server, token=token, query=f"batch=1&session_id={session_id}&last_event_id=before")
    try:
        assert (await again.recv_type("subscription_update"))["data"]["status"] == "resumed"
        replayed = await recv_json(again)
        assert isinstance(replayed, list) and ids(replayed) == [f"m{i}" for i in range(5)]
    finally:
        await again.close()


async def test_write_delay_gathers_separate_publishes_into_one_write(gateway_factory: Any) -> None:
    server = await gateway_factory(base_settings(write_delay_ms=300))
    batcher = await open_authed(server, query="batch=1")
    plain = await open_authed(server)
    try:
        for c in (batcher, plain):
            await c.subscribe(["agent_status"])
        await publish(server, agent_status("a1", "d1"))
        await publish(server, agent_status("a1", "d2"))  # two POSTs, well within 300 ms
        assert ids(json.loads(await batcher.recv_raw())) == ["d1", "d2"]
        assert [ids(json.loads(await plain.recv_raw())) for _ in range(2)] == [["d1"], ["d2"]]
    finally:
        await batcher.close()
        await plain.close()


async def test_python_sdk_opts_in_and_decodes_batches(server: RunningGateway) -> None:
    token = make_token()
    async with AutoSDLCWebSocket(server.ws_url, token=token, batch=True) as ws:
        await ws.subscribe(["agent_status"])
        assert ws.connection_id is not None
        conn = server.gateway.connections[ws.connection_id]
        assert conn.core.batch is True
        frames_before = conn.frames_out
        await publish(server, [agent_status("a1", f"p{i}") for i in range(4)])
        got = [await asyncio.wait_for(ws.__anext__(), timeout(5)) for _ in range(4)]
        assert [e.id for e in got] == ["p0", "p1", "p2", "p3"]
        assert conn.frames_out == frames_before + 1  # all four in one frame
        assert ws.stats.events_received == 4

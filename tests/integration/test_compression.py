"""Negotiated gzip for outgoing messages (CONTRACT.md section 7)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from autosdlc_ws.core import batches, envelope
from tests.conftest import RunningGateway, make_token
from tests.integration.helpers import Client, agent_status, open_authed, open_ws, publish


def sized_event(event_id: str, size: int) -> dict[str, Any]:
    """An agent_status whose compact JSON is exactly `size` bytes (its version set,
    so the gateway adds nothing to it)."""
    ev = {**agent_status("a1", event_id, message=""), "metadata": {"version": "1.1"}}
    base = len(json.dumps(ev, separators=(",", ":")))
    ev["data"]["message"] = "x" * (size - base)
    assert len(json.dumps(ev, separators=(",", ":"))) == size
    return ev


async def gzip_in_band(server: RunningGateway) -> Client:
    client = await open_ws(server.ws_url)
    await client.recv_type("connect")
    await client.send({"id": "auth", "type": "auth_request", "timestamp": 0,
                       "data": {"token": make_token(), "compression": "gzip"}})
    await client.recv_type("connect")
    await client.recv_type("auth_success")
    return client


@pytest.mark.parametrize("negotiation", ["query", "auth_request"])
async def test_large_events_arrive_gzipped(server: RunningGateway, negotiation: str) -> None:
    if negotiation == "query":
        client = await open_authed(server, query="compression=gzip")
    else:
        client = await gzip_in_band(server)
    plain = await open_authed(server)
    try:
        for c in (client, plain):
            await c.subscribe(["agent_status"])
        big = sized_event("big", 1025)
        at_threshold = sized_event("edge", 1024)
        small = agent_status("a1", "small")  # delivered with its schema version added
        await publish(server, [big, at_threshold, small])

        raw = await client.recv_raw()
        assert isinstance(raw, bytes), "an event over the threshold must be a binary frame"
        unzipped = json.loads(gzip.decompress(raw))
        assert unzipped["metadata"]["compressed"] is True
        assert {k: v for k, v in unzipped.items() if k != "metadata"} == \
            {k: v for k, v in big.items() if k != "metadata"}
        for expected in (at_threshold, small):
            raw = await client.recv_raw()
            assert isinstance(raw, str), "events at or under the threshold stay text"
            assert json.loads(raw)["id"] == expected["id"]
            assert not (json.loads(raw).get("metadata") or {}).get("compressed")

        # a client that did not ask gets text for the same event
        for expected in (big, at_threshold, small):
            raw = await plain.recv_raw()
            assert isinstance(raw, str)
            assert json.loads(raw) == {"metadata": {"version": "1.1"}, **expected}
        # replies stay text even for the gzip client
        await client.send({"id": "p", "type": "ping", "timestamp": 0, "data": {}})
        assert isinstance(await client.recv_raw(), str)
    finally:
        await client.close()
        await plain.close()


async def test_each_message_is_compressed_once(server: RunningGateway,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = envelope.gzip_bytes

    def counting(body: bytes) -> bytes:
        calls.append(json.loads(body)["id"])
        return original(body)

    monkeypatch.setattr(envelope, "gzip_bytes", counting)
    clients = [await open_authed(server, query="compression=gzip") for _ in range(3)]
    try:
        for c in clients:
            await c.subscribe(["agent_status"])
            await c.subscribe(["agent_*"])  # two matching subscriptions, still one frame
        await publish(server, sized_event("once", 4000))
        for c in clients:
            raw = await c.recv_raw()
            assert isinstance(raw, bytes)
            assert json.loads(gzip.decompress(raw))["id"] == "once"
        assert calls == ["once"]
    finally:
        for c in clients:
            await c.close()


async def test_each_batch_is_compressed_once(server: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    original = batches.gzip_bytes

    def counting(body: bytes) -> bytes:
        calls.append([item["id"] for item in json.loads(body)])
        return original(body)

    monkeypatch.setattr(batches, "gzip_bytes", counting)
    clients = [await open_authed(server, query="compression=gzip&batch=1") for _ in range(3)]
    try:
        for c in clients:
            await c.subscribe(["agent_status"])
        await publish(server, [sized_event("b1", 2000), sized_event("b2", 2000)])
        for c in clients:
            raw = await c.recv_raw()
            assert isinstance(raw, bytes)
            assert [item["id"] for item in json.loads(gzip.decompress(raw))] == ["b1", "b2"]
        assert calls == [["b1", "b2"]]  # one gzip of the array, shared by the three recipients
    finally:
        for c in clients:
            await c.close()

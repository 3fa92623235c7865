"""Bad input, limits and heartbeats (CONTRACT.md sections 4.4 and 6)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from aiohttp import web

from tests.conftest import RunningGateway, base_settings, make_token, timeout
from tests.integration.helpers import Client, open_authed


async def error_for(client: Client, frame: str | bytes) -> dict[str, Any]:
    await client.send(frame)
    reply = await client.recv()
    assert reply["type"] == "error", reply
    assert "Traceback" not in reply["data"]["message"]
    return reply


async def still_usable(client: Client) -> None:
    reply = await client.request("ping", {}, req_id="alive")
    assert reply["type"] == "pong"


async def test_invalid_json(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        for frame in ("{not json", "", '{"id": "x", "type": "ping"', "\u00e9\u00e9"):
            reply = await error_for(client, frame)
            assert reply["data"]["code"] == "invalid_json", reply
        await still_usable(client)
    finally:
        await client.close()


async def test_non_object_message(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        for frame in ("[1, 2]", '"ping"', "42", "null"):
            reply = await error_for(client, frame)
            assert reply["data"]["code"] == "invalid_message", reply
        await still_usable(client)
    finally:
        await client.close()


@pytest.mark.parametrize(("msg", "path"), [
    ({"id": "v1", "type": "agent_status", "timestamp": 0,
      "data": {"agentId": "a1", "status": "busy", "currentTask": {"id": "t1", "progress": 150}}},
     "data.currentTask.progress"),
    ({"id": "v2", "type": "agent_status", "timestamp": 0, "data": {"agentId": "a1", "status": 0}},
     "data.status"),
    ({"id": "v3", "type": "agent_status", "timestamp": 0, "data": {"status": "idle"}}, "data.agentId"),
    ({"id": "v4", "type": "subscribe", "timestamp": 0, "data": {"events": "agent_status"}}, "data.events"),
    ({"id": "v5", "type": "ping", "timestamp": "soon", "data": {}}, "timestamp"),
    ({"id": "v6", "type": "ping", "timestamp": 0}, "data"),
    ({"id": "v7", "timestamp": 0, "data": {}}, "type"),
])
async def test_schema_errors_carry_the_path(server: RunningGateway, msg: dict[str, Any], path: str) -> None:
    client = await open_authed(server)
    try:
        reply = await error_for(client, json.dumps(msg))
        assert reply["data"]["code"] == "invalid_message", reply
        assert reply["data"]["path"] == path
        assert reply["metadata"]["correlationId"] == msg["id"]
        await still_usable(client)
    finally:
        await client.close()


async def test_unknown_type(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        reply = await client.request("agent_dance", {"agentId": "a1"}, req_id="u1")
        assert reply["type"] == "error" and reply["data"]["code"] == "unknown_type"
        await still_usable(client)
    finally:
        await client.close()


@pytest.mark.parametrize("type_", ["connect", "pong", "auth_success", "subscription_update", "error"])
async def test_server_only_type_is_invalid(server: RunningGateway, type_: str) -> None:
    client = await open_authed(server)
    try:
        reply = await client.request(type_, {}, req_id="srv")
        assert reply["type"] == "error" and reply["data"]["code"] == "invalid_message", reply
        assert reply["data"]["path"] == "type"
    finally:
        await client.close()


def padded_ping(size: int, req_id: str = "exact") -> str:
    frame = json.dumps({"id": req_id, "type": "ping", "timestamp": 0, "data": {}})
    return frame + " " * (size - len(frame))


async def test_frame_of_exactly_max_size_is_accepted_and_one_more_closes_1009(
        gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(max_frame_bytes=1024))
    client = await open_authed(server)
    assert client.connect is not None
    assert client.connect["data"]["limits"]["maxFrameBytes"] == 1024
    exact = padded_ping(1024)
    assert len(exact.encode()) == 1024
    await client.send(exact)
    pong = await client.recv()
    assert pong["type"] == "pong" and pong["metadata"]["correlationId"] == "exact"
    await client.send(padded_ping(1025))
    code, _ = await client.closed()
    assert code == 1009


async def test_oversize_binary_frame_closes_1009(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(max_frame_bytes=1024))
    client = await open_authed(server)
    await client.send(os.urandom(2000))
    code, _ = await client.closed()
    assert code == 1009


async def test_gzip_binary_frame_from_client(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.send(gzip.compress(json.dumps(
            {"id": "gz-sub", "type": "subscribe", "timestamp": 0,
             "data": {"events": ["agent_status"]}}).encode()))
        reply = await client.recv()
        assert reply["type"] == "subscription_update" and reply["metadata"]["correlationId"] == "gz-sub"
        await client.send(gzip.compress(json.dumps(
            {"id": "gz-pub", "type": "agent_status", "timestamp": 0,
             "data": {"agentId": "a1", "status": "idle"}}).encode()))
        assert (await client.recv())["id"] == "gz-pub"
        # a binary frame that is not gzip is an error, not a crash
        reply = await error_for(client, b"\x00\x01not gzip")
        assert reply["data"]["code"] == "invalid_json"
        await still_usable(client)
    finally:
        await client.close()


async def test_gzip_bomb_is_refused_and_connection_stays_usable(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        limit = server.gateway.settings.max_decompressed_bytes
        bomb = gzip.compress(padded_ping(limit * 8, "bomb").encode(), compresslevel=9)
        assert len(bomb) < server.gateway.settings.max_frame_bytes
        reply = await error_for(client, bomb)
        assert reply["data"]["code"] == "too_large"
        await still_usable(client)
        # exactly at the decompressed limit is fine
        await client.send(gzip.compress(padded_ping(limit, "at-limit").encode()))
        pong = await client.recv()
        assert pong["type"] == "pong" and pong["metadata"]["correlationId"] == "at-limit"
    finally:
        await client.close()


async def test_rate_limited_then_closed_1008_on_sustained_flood(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(rate_control_per_s=2, rate_control_burst=3,
                                                 rate_violations_before_close=5))
    client = await open_authed(server)
    for n in range(3):
        assert (await client.request("ping", {}, req_id=f"p{n}"))["type"] == "pong"
    limited = await client.request("ping", {}, req_id="p-over")
    assert limited["type"] == "error" and limited["data"]["code"] == "rate_limited"
    assert 0 < limited["data"]["retryAfterMs"] <= 1000
    # waiting as told lets the next one through
    await asyncio.sleep(limited["data"]["retryAfterMs"] / 1000 + 0.05)
    assert (await client.request("ping", {}, req_id="p-later"))["type"] == "pong"
    # a flood: rate_limited answers, then a 1008 close
    for n in range(50):
        try:
            await client.send({"id": f"f{n}", "type": "ping", "timestamp": 0, "data": {}})
        except Exception:
            break
    frames: list[dict[str, Any]] = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            frames.append(await client.recv())
    assert any(f["type"] == "error" and f["data"]["code"] == "rate_limited" for f in frames), frames
    rcvd = client.ws.protocol.close_rcvd
    assert rcvd is not None and rcvd.code == 1008


async def test_publish_rate_is_separate_from_control_rate(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(rate_publish_per_s=1, rate_publish_burst=2))
    client = await open_authed(server)
    try:
        for n in range(2):
            await client.send({"id": f"pub-{n}", "type": "agent_status", "timestamp": 0,
                               "data": {"agentId": "a1", "status": "idle"}})
        await client.send({"id": "pub-over", "type": "agent_status", "timestamp": 0,
                           "data": {"agentId": "a1", "status": "idle"}})
        reply = await client.recv()
        assert reply["data"]["code"] == "rate_limited" and reply["metadata"]["correlationId"] == "pub-over"
        await still_usable(client)
    finally:
        await client.close()


async def test_ping_pong_correlated(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        pong = await client.request("ping", {}, req_id="ping-42")
        assert pong["type"] == "pong" and pong["metadata"]["correlationId"] == "ping-42"
        assert isinstance(pong["timestamp"], int) and pong["id"]
    finally:
        await client.close()


async def raw_upgrade(server: RunningGateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made WebSocket upgrade; the caller then never reads or answers pings."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((
        f"GET /ws?token={make_token()} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), timeout(5))
    assert b" 101 " in status, status
    return reader, writer


async def wait_for_no_connections(server: RunningGateway, seconds: float) -> float:
    started = time.monotonic()
    while server.gateway.connections:
        assert time.monotonic() - started < timeout(seconds), "connection was not dropped"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_unresponsive_client_is_dropped_by_heartbeat(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(heartbeat_interval_s=0.3))
    _reader, writer = await raw_upgrade(server)
    try:
        await asyncio.sleep(0.05)
        assert len(server.gateway.connections) == 1
        await wait_for_no_connections(server, 0.3 * 5)
    finally:
        writer.close()


async def test_responsive_client_survives_heartbeats(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(heartbeat_interval_s=0.2))
    client = await open_authed(server)  # websockets answers pings by itself
    try:
        assert client.connect is not None and client.connect["data"]["heartbeatInterval"] == 200
        await asyncio.sleep(1.0)
        await still_usable(client)
        assert len(server.gateway.connections) == 1
    finally:
        await client.close()


async def test_flood_of_invalid_frames_is_rate_limited(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(rate_control_per_s=1, rate_control_burst=2,
                                                 rate_publish_per_s=1, rate_publish_burst=2,
                                                 rate_violations_before_close=5))
    client = await open_authed(server)
    for _ in range(100):
        try:
            await client.send("{not json")
        except Exception:
            break
    code, _ = await client.closed(1)
    assert code == 1008


GARBAGE = [
    '{"id": 5, "type": "ping", "timestamp": 0, "data": {}}',
    '{"id": "g", "type": null, "data": {}}',
    '{"id": "g", "type": "' + "x" * 5000 + '", "data": {}}',
    '{"id": "' + "i" * 500 + '", "type": "ping", "timestamp": 0, "data": {}}',
    '{"id": "g", "type": "subscribe", "timestamp": 0, "data": {"events": ["agent_status"], '
    '"filters": {"agentId": {"$ne": 1}}}}',
    '{"id": "g", "type": "subscribe", "timestamp": 0, "data": {"events": ["agent_status"], '
    '"filters": {"agentId": [1, 2]}}}',
    '{"id": "g", "type": "subscribe", "timestamp": 0, "data": {"events": ' + json.dumps(["agent_status"] * 100) + "}}",
    '{"id": "g", "type": "unsubscribe", "timestamp": 0, "data": {"subscriptionId": 5}}',
    '{"id": "g", "type": "auth_request", "timestamp": 0, "data": {"token": 5}}',
    '{"id": "g", "type": "agent_status", "timestamp": 1e400, "data": {"agentId": "a1", "status": "idle"}}',
    '{"id": "g", "type": "agent_status", "timestamp": -1, "data": {"agentId": "a1", "status": "idle"}}',
    '{"id": "g", "type": "agent_status", "timestamp": 0, "data": {"agentId": ["a1"], "status": "idle"}}',
    '{"id": "g", "type": "ping", "timestamp": 0, "data": NaN}',
    "[" * 5000 + "]" * 5000,
    '{"a": ' * 3000 + "1" + "}" * 3000,
    "\ufeff{}",
]


@pytest.mark.parametrize("frame", GARBAGE, ids=range(len(GARBAGE)))
async def test_garbage_gets_an_error_frame_and_nothing_else(server: RunningGateway, frame: str) -> None:
    client = await open_authed(server)
    try:
        reply = await error_for(client, frame)
        assert reply["data"]["code"] in ("invalid_json", "invalid_message", "unknown_type"), reply
        assert 'File "' not in reply["data"]["message"]
        assert len(reply["data"]["message"]) < 1000
        await still_usable(client)
    finally:
        await client.close()


async def test_a_client_gone_during_the_handshake_is_no_error_and_frees_its_slot(
    gateway_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clients that hang up mid-upgrade (a dropped laptop, a killed load generator) used to log an
    ERROR traceback per connection; they must also give back their per-address slot."""
    server = await gateway_factory(base_settings(max_connections_per_ip=1))
    real_prepare = web.WebSocketResponse.prepare

    async def gone(self: web.WebSocketResponse, request: web.BaseRequest) -> Any:
        raise ConnectionResetError("Cannot write to closing transport")

    monkeypatch.setattr(web.WebSocketResponse, "prepare", gone)
    for _ in range(2):
        with pytest.raises((websockets.exceptions.InvalidStatus, websockets.exceptions.InvalidMessage, OSError)):
            await asyncio.wait_for(websockets.connect(f"{server.ws_url}?token={make_token()}"), timeout(5))
    monkeypatch.setattr(web.WebSocketResponse, "prepare", real_prepare)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records
    client = await open_authed(server)  # the one slot of 127.0.0.1 was given back both times
    try:
        await still_usable(client)
    finally:
        await client.close()

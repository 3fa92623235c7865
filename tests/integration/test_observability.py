"""Admin views: error groups, runtime message logging, structured lines."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest
import websockets

from tests.conftest import ADMIN_KEY, READER_KEY, RunningGateway, make_token


async def _admin(http: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> tuple[int, dict]:
    async with http.request(method, url, headers={"X-API-Key": ADMIN_KEY}, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.json()


async def test_errors_are_grouped_by_code_and_type(server: RunningGateway) -> None:
    async with websockets.connect(f"{server.ws_url}?token={make_token()}") as ws:
        for _ in range(2):
            await ws.recv()
        for _ in range(3):
            await ws.send(json.dumps({"type": "agent_status", "data": {"agentId": "a", "status": ["zzz"]}}))
            await ws.recv()
        await ws.send(json.dumps({"type": "no_such_type", "data": {}}))
        await ws.recv()
    async with aiohttp.ClientSession() as http:
        status, body = await _admin(http, "GET", f"{server.http_url}/api/v1/errors")
        assert status == 200
        groups = {(g["code"], g["messageType"]): g["count"] for g in body["groups"]}
        assert groups[("invalid_message", "agent_status")] == 3
        assert groups[("unknown_type", "unknown")] == 1
        async with http.get(f"{server.http_url}/api/v1/errors", headers={"X-API-Key": READER_KEY}) as resp:
            assert resp.status == 403


async def test_message_logging_switches_at_runtime(server: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="autosdlc_ws.messages")
    async with aiohttp.ClientSession() as http, websockets.connect(f"{server.ws_url}?token={make_token()}") as ws:
        for _ in range(2):
            await ws.recv()
        await ws.send(json.dumps({"id": "p1", "type": "ping", "data": {}}))
        await ws.recv()
        assert not [r for r in caplog.records if r.name == "autosdlc_ws.messages"]
        status, config = await _admin(http, "PUT", f"{server.http_url}/api/v1/logging",
                                      json={"enabled": True, "types": ["ping", "pong"]})
        assert status == 200 and config["enabled"] is True
        await ws.send(json.dumps({"id": "p2", "type": "ping", "data": {}}))
        await ws.recv()
        await asyncio.sleep(0)
        logged = [(r.direction, r.type) for r in caplog.records if r.name == "autosdlc_ws.messages"]  # type: ignore[attr-defined]
        assert ("in", "ping") in logged and ("out", "pong") in logged
        status, body = await _admin(http, "PUT", f"{server.http_url}/api/v1/logging", json={"sampleRate": 5})
        assert status == 422 and body["error"]["code"] == "invalid_message"
        status, config = await _admin(http, "GET", f"{server.http_url}/api/v1/logging")
        assert config["types"] == ["ping", "pong"]


async def test_sent_counters_include_closed_connections(server: RunningGateway) -> None:
    async with websockets.connect(f"{server.ws_url}?token={make_token()}") as ws:
        for _ in range(2):
            await ws.recv()
        await ws.send(json.dumps({"type": "ping"}))
        await ws.recv()
    for _ in range(100):  # until the server has unregistered the closed connection
        if not server.gateway.connections:
            break
        await asyncio.sleep(0.01)
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
        text = await resp.text()
    assert "autosdlc_ws_messages_sent_total 3.0" in text  # connect, auth_success, pong

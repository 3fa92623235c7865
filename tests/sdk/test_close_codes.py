"""What the client does after each close code: reconnect, or stop and report.

1008, 1009 and 4001 come from the real gateway (admin close, oversize frame,
repeated bad credentials); the codes the gateway only sends in rare conditions
(1011, 1013, 4008, ...) come from a scripted WebSocket server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from autosdlc_ws.client import (
    AuthenticationFailed,
    AutoSDLCWebSocket,
    ConnectionClosed,
    ConnectionState,
    ReconnectFailed,
    ReconnectPolicy,
    TokenExpired,
)
from tests.conftest import ADMIN_KEY, RunningGateway, make_token, timeout
from tests.sdk.conftest import wait_until

FAST = ReconnectPolicy(base=0.01, cap=0.05, stable_after=10)


@dataclass
class Script:
    """A stand-in gateway: handshake frames, then close with `code` (or refuse with `http_status`)."""

    code: int = 1011
    disconnect: dict[str, Any] | None = None
    http_status_after_first: int | None = None
    queries: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
async def scripted() -> Any:
    runners: list[web.AppRunner] = []

    async def start(script: Script) -> Script:
        async def handler(request: web.Request) -> web.StreamResponse:
            script.queries.append(dict(request.query))
            if script.http_status_after_first and len(script.queries) > 1:
                return web.json_response({"error": {"code": "x", "message": "no"}},
                                         status=script.http_status_after_first)
            ws = web.WebSocketResponse(protocols=("autosdlc.v1",))
            await ws.prepare(request)
            await ws.send_json({"id": "m1", "type": "connect", "timestamp": 1, "data": {
                "connectionId": "conn-1", "sessionId": "sess-1", "heartbeatInterval": 25000,
                "protocolVersion": "1.0", "resumed": len(script.queries) > 1,
                "limits": {"maxFrameBytes": 65536}}})
            await ws.send_json({"id": "m2", "type": "auth_success", "timestamp": 1, "data": {
                "subject": "t", "permissions": ["read:*"], "expiresAt": None}})
            if script.disconnect is not None:
                await ws.send_json({"id": "m3", "type": "disconnect", "timestamp": 1,
                                    "data": script.disconnect})
            await asyncio.sleep(0.02)
            await ws.close(code=script.code, message=b"scripted")
            return ws

        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        runners.append(runner)
        script.url = f"ws://127.0.0.1:{port}/ws"
        return script

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012, 1013, 4008])
async def test_reconnects_after_transient_codes(scripted: Any, code: int) -> None:
    script = await scripted(Script(code=code))
    async with AutoSDLCWebSocket(script.url, token="t", reconnect=FAST) as ws:
        await wait_until(lambda: len(script.queries) >= 3)
        assert ws.error is None and ws.state is not ConnectionState.CLOSED
    assert script.queries[0].get("session_id") is None
    assert script.queries[1]["session_id"] == "sess-1"  # every reconnect asks to resume


@pytest.mark.parametrize("code", [1008, 1009, 4001])
async def test_stops_after_fatal_codes(scripted: Any, code: int) -> None:
    script = await scripted(Script(code=code))
    errors: list[Exception] = []
    ws = AutoSDLCWebSocket(script.url, token="t", reconnect=FAST, on_error=errors.append)
    await ws.connect()
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert closed.value.code == code and errors == [closed.value]
    await asyncio.sleep(0.2)
    assert len(script.queries) == 1 and ws.state is ConnectionState.CLOSED
    with pytest.raises(ConnectionClosed):
        await ws.__anext__()  # the iterator reports it too
    await ws.close()


async def test_4003_needs_a_token_provider(scripted: Any) -> None:
    script = await scripted(Script(code=4003))
    ws = AutoSDLCWebSocket(script.url, token="static", reconnect=FAST)
    await ws.connect()
    with pytest.raises(TokenExpired):
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert len(script.queries) == 1

    calls: list[int] = []

    async def provider() -> str:
        calls.append(1)
        return f"fresh-{len(calls)}"

    script2 = await scripted(Script(code=4003))
    async with AutoSDLCWebSocket(script2.url, token_provider=provider, reconnect=FAST) as ws2:
        await wait_until(lambda: len(script2.queries) >= 3)
        assert ws2.error is None and len(calls) >= 3  # a fresh token for every attempt


async def test_disconnect_without_reconnect_stops(scripted: Any) -> None:
    script = await scripted(Script(code=1001, disconnect={"reason": "decommissioned", "reconnect": False}))
    ws = AutoSDLCWebSocket(script.url, token="t", reconnect=FAST)
    await ws.connect()
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert closed.value.reason == "decommissioned"
    assert len(script.queries) == 1


async def test_gives_up_after_max_attempts(scripted: Any) -> None:
    script = await scripted(Script(code=1011, http_status_after_first=503))
    policy = ReconnectPolicy(base=0.01, cap=0.02, max_attempts=4)
    ws = AutoSDLCWebSocket(script.url, token="t", reconnect=policy)
    await ws.connect()
    with pytest.raises(ReconnectFailed) as failed:
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert failed.value.attempts == 4 and len(script.queries) == 5


async def test_401_on_reconnect_stops(scripted: Any) -> None:
    script = await scripted(Script(code=1011, http_status_after_first=401))
    ws = AutoSDLCWebSocket(script.url, token="t", reconnect=FAST)
    await ws.connect()
    with pytest.raises(AuthenticationFailed) as failed:
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert failed.value.status == 401 and len(script.queries) == 2


# --- the real gateway ---------------------------------------------------------------


async def _admin_close(server: RunningGateway, ws: AutoSDLCWebSocket) -> None:
    async with aiohttp.ClientSession() as http, http.delete(
            f"{server.http_url}/api/v1/connections/{ws.connection_id}",
            headers={"X-API-Key": ADMIN_KEY}) as resp:
        assert resp.status == 200


async def _oversize(server: RunningGateway, ws: AutoSDLCWebSocket) -> None:
    ws._core.max_frame_bytes = None  # skip the client's own MessageTooLarge check
    await ws.send({"type": "agent_log", "data": {"agentId": "a", "level": "info", "message": "x" * 70_000}})


async def _bad_credentials(server: RunningGateway, ws: AutoSDLCWebSocket) -> None:
    for _ in range(3):
        await ws.send({"type": "auth_request", "data": {"token": "garbage"}})


@pytest.mark.parametrize(("code", "trigger"), [(1008, _admin_close), (1009, _oversize),
                                                (4001, _bad_credentials)])
async def test_real_gateway_fatal_close_stops_without_retry(
        server: RunningGateway, code: int,
        trigger: Callable[[RunningGateway, AutoSDLCWebSocket], Awaitable[None]]) -> None:
    ws = AutoSDLCWebSocket(server.ws_url, token=make_token(), reconnect=FAST)
    await ws.connect()
    await trigger(server, ws)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert closed.value.code == code
    await asyncio.sleep(0.2)
    assert sum(server.gateway.stats.connections_opened.values()) == 1  # no retry loop
    assert ws.stats.connects == 1 and ws.state is ConnectionState.CLOSED
    await ws.close()

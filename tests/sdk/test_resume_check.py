"""The client's resume check: a server that says `resumed: true` but does not restore a
subscription must not leave the application silently without its events.

The real gateway restores every subscription (the other resume tests check that the
check stays quiet there); this scripted server can also forget them.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from autosdlc_ws.client import AutoSDLCWebSocket, ReconnectPolicy, ResetEvent
from tests.conftest import timeout
from tests.sdk.conftest import wait_until

FAST = ReconnectPolicy(base=0.01, cap=0.05)


@dataclass
class ForgetfulGateway:
    restore: bool
    url: str = ""
    connections: int = 0
    received: list[list[str]] = field(default_factory=list)  # frame types per connection
    subs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1))

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        first = self.connections == 1
        frames: list[str] = []
        self.received.append(frames)
        ws = web.WebSocketResponse(protocols=("autosdlc.v1",))
        await ws.prepare(request)
        await ws.send_json(self._msg("connect", {
            "connectionId": f"conn-{self.connections}", "sessionId": "sess-1", "heartbeatInterval": 25000,
            "protocolVersion": "1.0", "resumed": not first, "limits": {"maxFrameBytes": 65536}}))
        await ws.send_json(self._msg("auth_success", {"subject": "t", "permissions": ["read:*"],
                                                      "expiresAt": None}))
        if not first and self.restore:
            for sub_id, sub in self.subs.items():
                await ws.send_json(self._msg("subscription_update",
                                             {"subscriptionId": sub_id, "status": "resumed", **sub}))
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            frame = msg.json()
            frames.append(frame["type"])
            if frame["type"] == "ping":
                await ws.send_json(self._msg("pong", {}, frame["id"]))
            elif frame["type"] == "subscribe":
                sub_id = f"sub-{next(self.ids)}"
                self.subs[sub_id] = frame["data"]
                await ws.send_json(self._msg("subscription_update",
                                             {"subscriptionId": sub_id, "status": "active", **frame["data"]},
                                             frame["id"]))
                if first:
                    await ws.close(code=1011, message=b"scripted failure")
        return ws

    def _msg(self, type_: str, data: dict[str, Any], correlation: str | None = None) -> dict[str, Any]:
        meta = {"correlationId": correlation} if correlation else {}
        return {"id": f"m-{next(self.ids)}", "type": type_, "timestamp": 1, "data": data, "metadata": meta}


@pytest.fixture
async def forgetful() -> Any:
    runners: list[web.AppRunner] = []

    async def start(restore: bool) -> ForgetfulGateway:
        gateway = ForgetfulGateway(restore)
        app = web.Application()
        app.router.add_get("/ws", gateway.handler)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        gateway.url = f"ws://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ws"  # type: ignore[union-attr]
        runners.append(runner)
        return gateway

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_subscription_the_resumed_session_lacks_is_resent_and_reported(forgetful: Any) -> None:
    gateway = await forgetful(restore=False)
    async with AutoSDLCWebSocket(gateway.url, token="t", reconnect=FAST) as ws:
        sub_id = await ws.subscribe(["agent_status"], {"agentId": "a"})
        reset = await asyncio.wait_for(ws.__anext__(), timeout(5))
        assert isinstance(reset, ResetEvent) and reset.data.reason == "subscription_lost"
        assert reset.data.subscription_ids == (sub_id,)
        await wait_until(lambda: ws.subscriptions[sub_id].server_id not in (None, sub_id))  # re-sent, mapped
        assert gateway.received[1][-1] == "subscribe"


async def test_the_check_is_quiet_when_everything_was_restored(forgetful: Any) -> None:
    gateway = await forgetful(restore=True)
    async with AutoSDLCWebSocket(gateway.url, token="t", reconnect=FAST) as ws:
        sub_id = await ws.subscribe(["agent_status"], {"agentId": "a"})
        await wait_until(lambda: gateway.connections == 2 and gateway.received[1] == ["ping"])
        await asyncio.sleep(0.05)
        assert ws.stats.resets == 0 and ws.subscriptions[sub_id].server_id == sub_id

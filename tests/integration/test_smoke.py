"""The shortest end-to-end path: connect, subscribe, publish over HTTP, receive."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import websockets

from tests.conftest import RunningGateway, make_token, timeout


async def test_subscribe_then_receive_http_publish(server: RunningGateway) -> None:
    token = make_token()
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        connect = json.loads(await ws.recv())
        assert connect["type"] == "connect" and connect["data"]["resumed"] is False
        assert json.loads(await ws.recv())["type"] == "auth_success"
        await ws.send(json.dumps({"id": "s1", "type": "subscribe", "timestamp": 0,
                                  "data": {"events": ["agent_status"], "filters": {"agentId": "a1"}}}))
        update = json.loads(await ws.recv())
        assert update["data"]["status"] == "active"
        assert update["metadata"]["correlationId"] == "s1"
        async with aiohttp.ClientSession() as http:
            for agent in ("a2", "a1"):
                resp = await http.post(f"{server.http_url}/api/v1/events",
                                       headers={"Authorization": f"Bearer {token}"},
                                       json={"type": "agent_status",
                                             "data": {"agentId": agent, "status": "idle"}})
                assert resp.status == 202, await resp.text()
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
        assert event["type"] == "agent_status" and event["data"]["agentId"] == "a1"

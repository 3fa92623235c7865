"""The admin API on the memory broker: a deployment of one node (CONTRACT §10)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from autosdlc_ws.config import load_settings
from tests.conftest import ADMIN_KEY, RunningGateway, base_settings, make_token
from tests.integration.helpers import open_authed

ADMIN = {"X-API-Key": ADMIN_KEY}


async def call(server: RunningGateway, path: str, *, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.request(
            method, server.http_url + path, headers=ADMIN, json=body) as resp:
        return resp.status, await resp.json()


async def test_one_node_lists_itself_and_its_connections(server: RunningGateway) -> None:
    status, body = await call(server, "/api/v1/nodes")
    assert status == 200 and body["count"] == 1 and "partial" not in body
    (node,) = body["nodes"]
    own = server.gateway.node
    assert node["nodeId"] == own.node_id and node["pid"] == own.pid and node["version"] == own.version
    assert {"host", "startedAt", "lastSeen", "connections"} <= set(node)
    client = await open_authed(server, token=make_token("dora", ("read:*",)))
    await client.subscribe(["agent_status", "agent_log"], {"agentId": ["a1"]})
    status, body = await call(server, f"/api/v1/connections?nodeId={own.node_id}&subject=dora")
    assert status == 200 and body["count"] == 1 and body["connections"][0]["nodeId"] == own.node_id
    status, body = await call(server, "/api/v1/connections?nodeId=elsewhere")
    assert status == 200 and body == {"connections": [], "count": 0}
    status, body = await call(server, "/api/v1/connections?subject=a&subject=b")
    assert status == 422 and body["error"]["code"] == "invalid_message"
    status, body = await call(server, "/api/v1/subscriptions")
    assert status == 200
    assert body["resources"] == [{"resource": "agent:a1", "subscribers": 1}]
    assert body["types"] == [{"type": "agent_log", "subscribers": 1}, {"type": "agent_status", "subscribers": 1}]
    async with aiohttp.ClientSession() as http, http.get(server.http_url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'autosdlc_ws_subscribers_by_resource{resource="agent:a1"} 1.0' in metrics
    assert 'autosdlc_ws_subscribers_by_type{type="agent_log"} 1.0' in metrics


async def test_logging_round_trips_and_starts_from_config(gateway_factory: Any) -> None:
    settings = base_settings().replace(message_log=load_settings(
        env={"AUTOSDLC_WS_MESSAGE_LOG": json.dumps({"enabled": True, "types": ["agent_*"]})}).message_log)
    server = await gateway_factory(settings)
    status, body = await call(server, "/api/v1/logging")
    assert status == 200 and body["enabled"] is True and body["types"] == ["agent_*"]
    status, put = await call(server, "/api/v1/logging", method="PUT",
                             body={**body, "sampleRate": 0.5, "partial": True, "missingNodes": ["gone"]})
    assert status == 200 and put["sampleRate"] == 0.5 and "missingNodes" not in put
    assert server.gateway.message_log.config.sample_rate == 0.5

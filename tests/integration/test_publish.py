"""Publishing over HTTP and over the WebSocket (CONTRACT.md sections 2, 3, 4.5)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.conftest import PUBLISHER_KEY, READER_KEY, RunningGateway, make_token
from tests.integration.helpers import agent_status, event, open_authed, publish, workflow_started


async def post(server: RunningGateway, body: Any, headers: dict[str, str] | None = None,
               *, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        resp = await http.post(f"{server.http_url}/api/v1/events", headers=headers or {}, **kwargs)
        return resp.status, await resp.json()


async def test_publish_single_and_array(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status", "workflow_*"])
        body = await publish(server, agent_status("a1", "single-1"))
        assert body == {"ids": ["single-1"]}
        body = await publish(server, [agent_status("a2", "arr-1"), workflow_started("w1", "arr-2")])
        assert body == {"ids": ["arr-1", "arr-2"]}
        got = await client.until_event("arr-2")
        assert [m["id"] for m in got] == ["single-1", "arr-1", "arr-2"]
    finally:
        await client.close()


async def test_server_assigns_missing_id_and_timestamp(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        body = await publish(server, [{"type": "agent_status", "data": {"agentId": "a1", "status": "idle"}},
                                      {"type": "agent_status", "data": {"agentId": "a2", "status": "idle"}}])
        ids = body["ids"]
        assert len(ids) == 2 and all(isinstance(i, str) and i for i in ids) and ids[0] != ids[1]
        first, second = await client.recv(), await client.recv()
        assert [first["id"], second["id"]] == ids
        assert isinstance(first["timestamp"], int) and first["timestamp"] > 1_600_000_000_000
    finally:
        await client.close()


async def test_invalid_body_is_422_with_path(server: RunningGateway) -> None:
    auth = {"X-API-Key": PUBLISHER_KEY}
    status, body = await post(server, [agent_status("a1"), event("agent_status", None, agentId="a2",
                                                                    status="s" * 65)], auth)
    assert status == 422
    assert set(body["error"]) == {"code", "message", "path"}
    assert body["error"]["code"] == "invalid_message"
    assert body["error"]["path"] == "[1].data.status"

    status, body = await post(server, event("agent_status", None, agentId="a1", status="busy",
                                            currentTask={"id": "t", "progress": 150}), auth)
    assert (status, body["error"]["path"]) == (422, "data.currentTask.progress")

    status, body = await post(server, [agent_status("a1"), 42], auth)
    assert (status, body["error"]["path"]) == (422, "[1]")

    status, body = await post(server, None, auth, raw=b"{oops")
    assert status == 422 and body["error"]["code"] == "invalid_json"

    status, body = await post(server, {"type": "ping", "data": {}}, auth)
    assert status == 422 and body["error"]["path"] == "type"

    status, body = await post(server, {"type": "agent_party", "data": {}}, auth)
    assert status == 422 and body["error"]["code"] == "unknown_type"

    status, body = await post(server, [], auth)
    assert status == 422


async def test_rejected_batch_publishes_nothing(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        status, _ = await post(server, [agent_status("a1", "good"), {"type": "agent_status", "data": {}}],
                               {"X-API-Key": PUBLISHER_KEY})
        assert status == 422
        await publish(server, agent_status("a1", "sentinel"))
        assert (await client.recv())["id"] == "sentinel"
    finally:
        await client.close()


async def test_publish_needs_credentials_and_permission(server: RunningGateway) -> None:
    status, body = await post(server, agent_status("a1"))
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _ = await post(server, agent_status("a1"), {"X-API-Key": "ask_wrong"})
    assert status == 401
    status, _ = await post(server, agent_status("a1"), {"Authorization": "Bearer nope"})
    assert status == 401
    status, body = await post(server, agent_status("a1"), {"X-API-Key": READER_KEY})
    assert status == 403 and body["error"]["code"] == "forbidden"
    # publish permission for one agent only
    token = make_token("agent-a1", ("publish:agent:a1", "read:agent:a1"))
    headers = {"Authorization": f"Bearer {token}"}
    status, _ = await post(server, agent_status("a1"), headers)
    assert status == 202
    status, body = await post(server, [agent_status("a1"), agent_status("a2")], headers)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _ = await post(server, workflow_started("w1"), headers)
    assert status == 403


async def test_websocket_publish_fans_out_like_http(server: RunningGateway) -> None:
    watcher = await open_authed(server, token=make_token("watcher", ("read:*",)))
    publisher = await open_authed(server, token=make_token("pub", ("publish:agent:*", "read:*")))
    try:
        await watcher.subscribe(["agent_*"])
        await publisher.subscribe(["agent_status"])
        await publisher.send(agent_status("a1", "ws-1"))
        await publish(server, agent_status("a1", "http-1"))
        assert [m["id"] for m in await watcher.until_event("http-1")] == ["ws-1", "http-1"]
        assert [m["id"] for m in await publisher.until_event("http-1")] == ["ws-1", "http-1"]
        # no publish permission for workflows
        await publisher.send(workflow_started("w1", "ws-wf"))
        reply = await publisher.recv()
        assert reply["type"] == "error" and reply["data"]["code"] == "forbidden"
        assert reply["metadata"]["correlationId"] == "ws-wf"
    finally:
        await watcher.close()
        await publisher.close()


async def test_websocket_publish_without_permission_is_forbidden(server: RunningGateway) -> None:
    from tests.integration.helpers import open_ws

    client = await open_ws(f"{server.ws_url}?api_key={READER_KEY}")
    try:
        await client.recv_type("connect")
        await client.recv_type("auth_success")
        await client.subscribe(["agent_status"])
        await client.send(agent_status("a1", "sneaky"))
        reply = await client.recv()
        assert reply["type"] == "error" and reply["data"]["code"] == "forbidden"
        assert reply["metadata"]["correlationId"] == "sneaky"
        await publish(server, agent_status("a1", "sentinel"))
        assert (await client.recv())["id"] == "sentinel"
    finally:
        await client.close()


async def test_unknown_fields_pass_through_unchanged(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        original: dict[str, Any] = {
            "id": "fwd-1", "type": "agent_status", "timestamp": 1703775135000,
            "data": {"agentId": "a1", "status": "busy", "futureField": {"nested": [1, 2.5, None]},
                     "currentTask": {"id": "t1", "progress": 10, "eta": "soon"}},
            "metadata": {"version": "1.0", "source": "agent", "traceId": "abc"},
            "priority": "high",
        }
        await publish(server, original)
        assert await client.recv() == original
        ws_original = {**original, "id": "fwd-2", "data": {**original["data"], "x-extra": True}}
        await client.send(ws_original)
        assert await client.recv() == ws_original
    finally:
        await client.close()


async def test_duplicate_id_is_delivered_once(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        assert (await publish(server, agent_status("a1", "dup-1")))["ids"] == ["dup-1"]
        assert (await publish(server, agent_status("a1", "dup-1")))["ids"] == ["dup-1"]
        await client.send(agent_status("a1", "dup-1"))
        await publish(server, [agent_status("a1", "dup-2"), agent_status("a1", "dup-2")])
        await publish(server, agent_status("a1", "sentinel"))
        got = await client.until_event("sentinel")
        assert [m["id"] for m in got] == ["dup-1", "dup-2", "sentinel"]
    finally:
        await client.close()


async def test_large_batch_arriving_in_many_reads_is_accepted(server: RunningGateway) -> None:
    """A body bigger than one socket read (here ~900 KB) is read whole, not truncated."""
    client = await open_authed(server, max_queue=None)
    try:
        await client.subscribe(["agent_status"])
        batch = [agent_status("a1", f"big-{n}", message="y" * 850) for n in range(1000)]
        body = await publish(server, batch)
        assert len(body["ids"]) == 1000
        got = await client.until_event("big-999")
        assert len(got) == 1000
    finally:
        await client.close()


async def test_body_over_the_cap_is_413(server: RunningGateway) -> None:
    cap = server.gateway.settings.http_publish_max_bytes
    blob = agent_status("a1", "huge", message="z" * cap)
    status, body = await post(server, blob, {"X-API-Key": PUBLISHER_KEY})
    assert status == 413 and body["error"]["code"] == "too_large"


async def test_http_api_ignores_query_and_cookie_credentials(server: RunningGateway) -> None:
    """docs/protocol.md: the HTTP API takes `Authorization: Bearer` or `X-API-Key` only. A cookie
    would let any web page publish as its visitor (a cross-site text/plain POST has no preflight)."""
    token = make_token("alice", ("publish:*", "read:*", "admin:*"))
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/api/v1/events", data=json.dumps(agent_status("a1")),
                               headers={"Cookie": f"autosdlc_token={token}", "Content-Type": "text/plain"})
        assert resp.status == 401
        resp = await http.post(f"{server.http_url}/api/v1/events?token={token}", json=agent_status("a1"))
        assert resp.status == 401
        resp = await http.post(f"{server.http_url}/api/v1/events?api_key={PUBLISHER_KEY}",
                               json=agent_status("a1"))
        assert resp.status == 401
        resp = await http.get(f"{server.http_url}/api/v1/connections",
                              headers={"Cookie": f"autosdlc_token={token}"})
        assert resp.status == 401

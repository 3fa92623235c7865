"""Health, metrics, schemas, the connections API, GitHub webhooks (CONTRACT.md section 2), /sw.js."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from autosdlc_ws.server import app as app_module
from tests.conftest import ADMIN_KEY, FIXTURES, PUBLISHER_KEY, READER_KEY, REPO, RunningGateway, make_token
from tests.integration.helpers import agent_status, open_authed, publish

WEBHOOKS = FIXTURES / "github-webhooks"
GH_SECRET = b"gh-test-secret"  # base_settings()' github_webhook_secret


async def get(server: RunningGateway, path: str, headers: dict[str, str] | None = None,
              method: str = "GET") -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as http:
        resp = await http.request(method, f"{server.http_url}{path}", headers=headers or {})
        return resp.status, await resp.read(), resp.headers


async def test_healthz_and_readyz(server: RunningGateway) -> None:
    status, body, _ = await get(server, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body, _ = await get(server, "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "broker": "memory"}


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_metrics(server: RunningGateway) -> None:
    status, body, headers = await get(server, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    before = body.decode()
    assert metric(before, "autosdlc_ws_connections_active") == 0
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        await publish(server, agent_status("a1", "m-1"))
        await client.recv()
        _, body, _ = await get(server, "/metrics")
        text = body.decode()
        assert metric(text, "autosdlc_ws_connections_active") == 1
        assert metric(text, "autosdlc_ws_subscriptions_active") == 1
        assert metric(text, "autosdlc_ws_events_published_total") == \
            metric(before, "autosdlc_ws_events_published_total") + 1
        assert metric(text, 'autosdlc_ws_messages_received_total{type="subscribe"}') == 1
    finally:
        await client.close()


async def test_schemas(server: RunningGateway) -> None:
    status, body, headers = await get(server, "/schemas/agent_status.json")
    assert status == 200
    assert "json" in headers["Content-Type"]
    expected = (REPO / "src" / "autosdlc_ws" / "schemas" / "agent_status.json").read_bytes()
    assert body == expected
    assert json.loads(body)["properties"]["type"]["const"] == "agent_status"
    status, body, _ = await get(server, "/schemas/no_such_type.json")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, body, _ = await get(server, "/schemas/")
    assert status == 200 and "/schemas/tdd_phase_change.json" in json.loads(body)["schemas"]


async def test_service_worker_served_from_the_root(server: RunningGateway, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # At the root so its scope covers the page at `/`; revalidated on every check.
    monkeypatch.setattr(app_module, "STATIC_DIR", tmp_path)
    status, _, _ = await get(server, "/sw.js")
    assert status == 404  # dashboard not built: no worker
    (tmp_path / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    status, body, headers = await get(server, "/sw.js")
    assert status == 200 and body.startswith(b"self.addEventListener")
    assert headers["Content-Type"].startswith("text/javascript")
    assert headers["Cache-Control"] == "no-cache"


async def test_connections_api_needs_admin(server: RunningGateway) -> None:
    status, body, _ = await get(server, "/api/v1/connections")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"
    for key in (READER_KEY, PUBLISHER_KEY):
        status, body, _ = await get(server, "/api/v1/connections", {"X-API-Key": key})
        assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"
    status, _, _ = await get(server, "/api/v1/connections", {"X-API-Key": "ask_wrong"})
    assert status == 401
    status, _, _ = await get(server, "/api/v1/connections",
                             {"Authorization": f"Bearer {make_token('root', ('admin:*',))}"})
    assert status == 200


async def test_connections_api_lists_and_closes(server: RunningGateway) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    client = await open_authed(server, token=make_token("carol", ("read:*",)), query="compression=gzip")
    assert client.connect is not None
    conn_id = client.connect["data"]["connectionId"]
    sub_id = await client.subscribe(["agent_*"], {"agentId": ["a2", "a1"]})
    status, body, _ = await get(server, "/api/v1/connections", admin)
    assert status == 200
    listing = json.loads(body)
    assert listing["count"] == 1
    (entry,) = listing["connections"]
    assert entry["connectionId"] == conn_id
    assert entry["subject"] == "carol" and entry["state"] == "open" and entry["compression"] == "gzip"
    assert entry["subscriptions"] == [{"subscriptionId": sub_id, "events": ["agent_*"],
                                       "filters": {"agentId": ["a1", "a2"]}}]
    status, body, _ = await get(server, f"/api/v1/connections/{conn_id}", admin)
    assert status == 200 and json.loads(body)["connectionId"] == conn_id

    status, body, _ = await get(server, f"/api/v1/connections/{conn_id}", {"X-API-Key": READER_KEY},
                                method="DELETE")
    assert status == 403
    status, body, _ = await get(server, f"/api/v1/connections/{conn_id}", admin, method="DELETE")
    assert status == 200
    code, _ = await client.closed()
    assert code is not None and code >= 1000
    status, body, _ = await get(server, "/api/v1/connections", admin)
    assert json.loads(body)["count"] == 0
    status, _, _ = await get(server, f"/api/v1/connections/{conn_id}", admin, method="DELETE")
    assert status == 404


# --- GitHub webhooks ------------------------------------------------------------------


async def webhook(server: RunningGateway, event: str, body: bytes, *, delivery: str | None = None,
                  secret: bytes = GH_SECRET) -> tuple[int, dict[str, Any]]:
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/webhooks/github", data=body, headers=headers)
        return resp.status, await resp.json()


def fixture(name: str) -> bytes:
    return (WEBHOOKS / name).read_bytes()


async def test_signed_webhook_is_published(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["github_*"], {"repository": "Codertocat/Hello-World"})
        status, body = await webhook(server, "pull_request", fixture("pull_request.opened.json"),
                                     delivery="d-1")
        assert status == 202
        (event_id,) = body["ids"]
        event = await client.recv()
        assert event["type"] == "github_pr_update" and event["id"] == event_id
        assert event["data"]["repository"] == "Codertocat/Hello-World"
        assert event["data"]["action"] == "opened" and event["data"]["number"] == 2
        assert event["metadata"]["source"] == "github"
    finally:
        await client.close()


@pytest.mark.parametrize("signature", ["wrong-secret", "missing", "garbage"])
async def test_webhook_bad_signature_is_401(server: RunningGateway, signature: str) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["github_*"])
        body = fixture("pull_request.opened.json")
        if signature == "wrong-secret":
            status, reply = await webhook(server, "pull_request", body, secret=b"nope")
        else:
            headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-x"}
            if signature == "garbage":
                headers["X-Hub-Signature-256"] = "sha256=zz"
            async with aiohttp.ClientSession() as http:
                resp = await http.post(f"{server.http_url}/webhooks/github", data=body, headers=headers)
                status, reply = resp.status, await resp.json()
        assert status == 401 and reply["error"]["code"] == "unauthorized"
        await client.silent(0.1)
    finally:
        await client.close()


async def test_webhook_ping(server: RunningGateway) -> None:
    status, body = await webhook(server, "ping", fixture("ping.payload.json"))
    assert status == 200 and body["ok"] is True


async def test_webhook_duplicate_delivery_is_published_once(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["github_*", "agent_status"])
        body = fixture("pull_request.opened.json")
        first = await webhook(server, "pull_request", body, delivery="dup-delivery")
        second = await webhook(server, "pull_request", body, delivery="dup-delivery")
        assert first[0] == 202 and len(first[1]["ids"]) == 1
        assert second[0] == 200 and second[1] == {"duplicate": True}
        await publish(server, agent_status("a1", "sentinel"))
        got = await client.until_event("sentinel")
        assert [m["type"] for m in got] == ["github_pr_update", "agent_status"]
    finally:
        await client.close()


async def test_webhook_unmapped_event_is_202(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["*"])
        status, body = await webhook(server, "push", fixture("push.payload.json"))
        assert status == 202 and body["published"] is False
        await client.silent(0.1)
    finally:
        await client.close()


async def test_webhook_invalid_payload_is_422(server: RunningGateway) -> None:
    status, body = await webhook(server, "pull_request", b'{"action": "opened"}')
    assert status == 422 and body["error"]["code"] == "invalid_message"
    status, body = await webhook(server, "pull_request", b"not json")
    assert status == 422


async def test_draining_gateway_refuses_new_work(server: RunningGateway) -> None:
    server.gateway.draining = True
    try:
        status, body, headers = await get(server, "/readyz")
        assert status == 503 and json.loads(body)["status"] == "draining"
        status, body, headers = await get(server, f"/ws?token={make_token()}")
        assert status == 503 and headers.get("Retry-After")
    finally:
        server.gateway.draining = False

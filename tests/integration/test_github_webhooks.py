"""Every real GitHub payload through the HTTP endpoint, signed at test time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from autosdlc_ws.sources.github import MAPPED_EVENTS
from tests.conftest import FIXTURES, RunningGateway, make_token, timeout

WEBHOOK_FILES = sorted((FIXTURES / "github-webhooks").glob("*.json"))
SECRET = b"gh-test-secret"  # conftest.base_settings


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


async def deliver(server: RunningGateway, event: str, body: bytes, *, delivery: str | None = None,
                  signature: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-Hub-Signature-256": signature if signature is not None else sign(body),
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.http_url}/webhooks/github", data=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()


def test_every_fixture_is_covered() -> None:
    assert len(WEBHOOK_FILES) >= 15, f"fixtures missing under {FIXTURES}"


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=lambda p: p.name)
async def test_fixture_delivery(server: RunningGateway, path: Path) -> None:
    event_name = path.name.split(".")[0]
    body = path.read_bytes()
    token = make_token(permissions=("read:*",))
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        for _ in range(2):
            await ws.recv()
        events = ["github_*", "deployment_status"]
        await ws.send(json.dumps({"id": "s", "type": "subscribe", "data": {"events": events}}))
        assert json.loads(await ws.recv())["data"]["status"] == "active"
        status, answer = await deliver(server, event_name, body)
        if event_name == "ping":
            assert status == 200 and answer["ok"] is True
            return
        if event_name not in MAPPED_EVENTS:
            assert status == 202 and answer == {"published": False, "event": event_name}
            return
        assert status == 202, answer
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
        assert event["id"] == answer["ids"][0]
        payload = json.loads(body)
        assert event["data"]["repository"] == payload["repository"]["full_name"]


async def test_bad_signature_publishes_nothing(server: RunningGateway) -> None:
    body = (FIXTURES / "github-webhooks" / "issues.opened.json").read_bytes()
    before = server.gateway.stats.events_published
    for signature in ("", "sha256=" + "0" * 64, sign(body, b"wrong-secret"), sign(body + b" ")):
        status, answer = await deliver(server, "issues", body, signature=signature)
        assert status == 401 and answer["error"]["code"] == "unauthorized"
    assert server.gateway.stats.events_published == before


async def test_redelivery_is_published_once(server: RunningGateway) -> None:
    body = (FIXTURES / "github-webhooks" / "pull_request.opened.json").read_bytes()
    before = server.gateway.stats.events_published
    first = await deliver(server, "pull_request", body, delivery="d-1")
    again = await deliver(server, "pull_request", body, delivery="d-1")
    assert first[0] == 202 and again == (200, {"duplicate": True})
    assert server.gateway.stats.events_published == before + 1


async def test_missing_headers_and_bad_json(server: RunningGateway) -> None:
    body = b"{not json"
    status, answer = await deliver(server, "issues", body)
    assert status == 422 and answer["error"]["code"] == "invalid_json"
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.http_url}/webhooks/github", data=b"{}", headers={"X-Hub-Signature-256": sign(b"{}")}
    ) as resp:
        assert resp.status == 400

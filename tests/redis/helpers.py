"""Wire-level helpers for the multi-worker tests (websockets + aiohttp, not the SDK)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import PUBLISHER_KEY, make_token, timeout


def agent_event(n: int | str, agent: str = "a1", prefix: str = "r") -> dict[str, Any]:
    return {"id": f"{prefix}-{n}", "type": "agent_status", "timestamp": 1_700_000_000_000,
            "data": {"agentId": agent, "status": "busy", "n": n}}


class WsClient:
    def __init__(self, ws: ClientConnection, connect: dict[str, Any]) -> None:
        self.ws = ws
        self.connect = connect

    @property
    def session_id(self) -> str:
        sid: str = self.connect["data"]["sessionId"]
        return sid

    @property
    def connection_id(self) -> str:
        cid: str = self.connect["data"]["connectionId"]
        return cid

    async def recv(self, seconds: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout(seconds))
        msg: dict[str, Any] = json.loads(raw)
        return msg

    async def request(self, type_: str, data: dict[str, Any], req_id: str) -> dict[str, Any]:
        await self.ws.send(json.dumps({"id": req_id, "type": type_, "timestamp": 0, "data": data}))
        while True:
            msg = await self.recv()
            if (msg.get("metadata") or {}).get("correlationId") == req_id:
                return msg

    async def subscribe(self, events: list[str], filters: dict[str, Any] | None = None) -> str:
        reply = await self.request("subscribe", {"events": events, "filters": filters or {}}, "sub-1")
        assert reply["type"] == "subscription_update" and reply["data"]["status"] == "active", reply
        sub_id: str = reply["data"]["subscriptionId"]
        return sub_id

    async def events(self, count: int, seconds: float = 10.0, type_: str = "agent_status") -> list[
            dict[str, Any]]:
        """The next `count` frames of `type_` (other frames are skipped)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout(seconds)
        while len(got) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(got)} of {count} events")
            msg = await self.recv(left)
            if msg["type"] == type_:
                got.append(msg)
        return got

    async def close(self) -> None:
        await self.ws.close()


async def connect(ws_url: str, *, query: str = "", token: str | None = None) -> WsClient:
    """Open a socket authenticated in the query; consume `connect` and `auth_success`."""
    token = token or make_token("alice")
    # max_queue=None: with websockets' bounded receive queue, a client that closes while
    # frames are unread stops reading and never sees the server's close frame (10 s wait).
    ws = await websockets.connect(f"{ws_url}?token={token}{'&' + query if query else ''}",
                                  open_timeout=timeout(5), max_size=None, compression=None, max_queue=None)
    first = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
    assert first["type"] == "connect", first
    auth = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
    assert auth["type"] == "auth_success", auth
    return WsClient(ws, first)


async def publish(http_url: str, events: list[dict[str, Any]], *, expect: int = 202,
                  session: aiohttp.ClientSession | None = None) -> tuple[int, dict[str, Any], str | None]:
    """POST events; (status, body, Retry-After). Asserts the status when `expect` is set."""
    own = session is None
    http = session or aiohttp.ClientSession()
    try:
        resp = await http.post(f"{http_url}/api/v1/events", headers={"X-API-Key": PUBLISHER_KEY},
                               json=events, timeout=aiohttp.ClientTimeout(total=timeout(10)))
        body: dict[str, Any] = await resp.json()
        if expect:
            assert resp.status == expect, (resp.status, body)
        return resp.status, body, resp.headers.get("Retry-After")
    finally:
        if own:
            await http.close()


async def get_status(url: str) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            resp = await http.get(url, timeout=aiohttp.ClientTimeout(total=timeout(3)))
            return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0


async def wait_status(url: str, status: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + timeout(seconds)
    last = None
    while time.monotonic() < deadline:
        last = await get_status(url)
        if last == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} answered {last}, expected {status}")


async def publish_until(stop: asyncio.Event, http_url: str, accepted: list[str], maybe: list[str]) -> None:
    """Publish batches of 10 until `stop`, sorting ids into accepted (202) and maybe
    (the request failed mid-fault: the event may or may not be in the log)."""
    n = 0
    while not stop.is_set():
        batch = [agent_event(f"{n}-{k}") for k in range(10)]
        try:
            status, _, _ = await publish(http_url, batch, expect=0)
        except (TimeoutError, aiohttp.ClientError, OSError):
            status = 0  # the request hit the worker or host being killed
        (accepted if status == 202 else maybe).extend(e["id"] for e in batch)
        n += 1
        await asyncio.sleep(0.005)

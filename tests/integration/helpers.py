"""Small helpers for the integration tests: a thin JSON layer over `websockets`.

Deliberately not the project's SDK: the tests talk the wire protocol
themselves, so an SDK bug cannot hide a server bug (or the other way round).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
from typing import Any

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import PUBLISHER_KEY, RunningGateway, make_token, timeout

_ids = itertools.count(1)


def next_id(prefix: str = "req") -> str:
    return f"{prefix}-{next(_ids)}"


def event(type_: str, event_id: str | None = None, **data: Any) -> dict[str, Any]:
    """An event envelope; without `event_id` the server assigns one."""
    env: dict[str, Any] = {"type": type_, "timestamp": 1_700_000_000_000, "data": data}
    if event_id is not None:
        env["id"] = event_id
    return env


def agent_status(agent: str, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return event("agent_status", event_id, agentId=agent, status="busy", **extra)


def workflow_started(workflow: str, event_id: str | None = None) -> dict[str, Any]:
    return event("workflow_started", event_id, workflowId=workflow, name="build")


def decode(frame: str | bytes) -> dict[str, Any]:
    if isinstance(frame, bytes):
        frame = gzip.decompress(frame)
    obj: dict[str, Any] = json.loads(frame)
    return obj


class Client:
    """One WebSocket connection speaking JSON envelopes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.connect: dict[str, Any] | None = None
        self.auth: dict[str, Any] | None = None

    async def recv_raw(self, seconds: float = 5.0) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), timeout(seconds))

    async def recv(self, seconds: float = 5.0) -> dict[str, Any]:
        return decode(await self.recv_raw(seconds))

    async def recv_type(self, type_: str, seconds: float = 5.0) -> dict[str, Any]:
        msg = await self.recv(seconds)
        assert msg["type"] == type_, msg
        return msg

    async def send(self, msg: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))

    async def request(self, type_: str, data: dict[str, Any], *, req_id: str | None = None,
                      seconds: float = 5.0) -> dict[str, Any]:
        """Send a control message; return the next frame (asserting it is correlated)."""
        req_id = req_id or next_id(type_)
        await self.send({"id": req_id, "type": type_, "timestamp": 0, "data": data})
        reply = await self.recv(seconds)
        assert (reply.get("metadata") or {}).get("correlationId") == req_id, reply
        return reply

    async def subscribe(self, events: list[str], filters: dict[str, Any] | None = None) -> str:
        data: dict[str, Any] = {"events": events}
        if filters is not None:
            data["filters"] = filters
        reply = await self.request("subscribe", data)
        assert reply["type"] == "subscription_update" and reply["data"]["status"] == "active", reply
        sub_id: str = reply["data"]["subscriptionId"]
        return sub_id

    async def until(self, pred: Any, seconds: float = 5.0) -> list[dict[str, Any]]:
        """Every frame up to and including the first one `pred` accepts."""
        seen = []
        while True:
            msg = await self.recv(seconds)
            seen.append(msg)
            if pred(msg):
                return seen

    async def until_event(self, event_id: str, seconds: float = 5.0) -> list[dict[str, Any]]:
        return await self.until(lambda m: m.get("id") == event_id, seconds)

    async def silent(self, seconds: float = 0.2) -> None:
        """Assert nothing arrives for a short while."""
        try:
            msg = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {msg!r}")

    async def closed(self, seconds: float = 5.0) -> tuple[int | None, str]:
        """Read until the server closes; return (code, reason)."""
        async def drain() -> None:
            try:
                while True:
                    await self.ws.recv()
            except websockets.ConnectionClosed:
                return
        await asyncio.wait_for(drain(), timeout(seconds))
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code if rcvd else None, rcvd.reason if rcvd else "")

    async def close(self) -> None:
        await self.ws.close()


async def open_ws(url: str, **kwargs: Any) -> Client:
    kwargs.setdefault("open_timeout", timeout(5))
    kwargs.setdefault("max_size", None)
    kwargs.setdefault("compression", None)
    ws = await websockets.connect(url, **kwargs)
    return Client(ws)


async def open_authed(server: RunningGateway, *, token: str | None = None, query: str = "",
                      **kwargs: Any) -> Client:
    """Connect with a token in the query; consume `connect` and `auth_success`."""
    token = token or make_token()
    sep = "&" if query else ""
    client = await open_ws(f"{server.ws_url}?token={token}{sep}{query}", **kwargs)
    client.connect = await client.recv_type("connect")
    client.auth = await client.recv_type("auth_success")
    return client


async def publish(server: RunningGateway, events: dict[str, Any] | list[dict[str, Any]], *,
                  key: str = PUBLISHER_KEY, expect: int = 202) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/api/v1/events", headers={"X-API-Key": key},
                               json=events)
        body: dict[str, Any] = await resp.json()
        assert resp.status == expect, (resp.status, body)
        return body

"""Receive throughput of the Python SDK (`AutoSDLCWebSocket`), gateway left out.

Two set-ups, each for plain dicts (`typed=False`), typed models, gzip binary frames and
batched frames (`batch=True`: arrays of 10 and of 50 envelopes per frame, protocol 1.1):

* `socket`: a minimal aiohttp server plays the gateway's handshake (`connect`,
  `auth_success`) and then writes EVENTS `agent_log` frames as fast as the socket takes
  them; the client iterates until it has them all. Events per CPU second of the process
  (the fake server's sending is in it too, the same for every client version; CPU time
  is steadier than wall time on a shared machine).
* `in-process`: the same frames handed to the client by a stand-in for aiohttp's
  WebSocket (no socket, no server): the SDK's own cost, in events per CPU second.

Medians of RUNS.

    .venv/bin/python benchmarks/bench_sdk_receive.py [--events 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import time
from typing import Any

import orjson
from aiohttp import WSMessage, WSMsgType, web

from autosdlc_ws.client import AutoSDLCWebSocket, ReconnectPolicy


def frames(count: int, compressed: bool, batch: int = 1) -> list[str | bytes]:
    """`count` events, one per frame, or `batch` per frame as JSON arrays."""
    texts = [orjson.dumps({"id": f"evt-{i}", "type": "agent_log", "timestamp": 1,
                           "data": {"agentId": "coder-001", "level": "info", "message": f"line {i}"}})
             for i in range(count)]
    if batch > 1:
        texts = [b"[" + b",".join(texts[i:i + batch]) + b"]" for i in range(0, count, batch)]
    return [gzip.compress(text) if compressed else text.decode() for text in texts]


def fake_gateway(payloads: list[str | bytes]) -> web.Application:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("autosdlc.v1",))
        await ws.prepare(request)
        await ws.send_str(orjson.dumps({"id": "c", "type": "connect", "timestamp": 1, "data": {
            "sessionId": "s-1", "connectionId": "c-1", "resumed": False,
            "heartbeatInterval": 30_000}}).decode())
        await ws.send_str(orjson.dumps({"id": "a", "type": "auth_success", "timestamp": 1,
                                        "data": {}}).decode())
        for payload in payloads:
            if isinstance(payload, bytes):
                await ws.send_bytes(payload)
            else:
                await ws.send_str(payload)
        async for msg in ws:  # keep the socket open until the client closes it
            if msg.type is WSMsgType.CLOSE:
                break
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


class StandInSocket:
    """Plays `aiohttp.ClientWebSocketResponse` for the client: hands out `messages`, then
    waits until closed."""

    def __init__(self, messages: list[WSMessage]) -> None:
        self._messages = iter(messages)
        self._closed = asyncio.Event()
        self.closed = False

    async def receive(self, timeout: float | None = None) -> WSMessage:
        message = next(self._messages, None)
        if message is not None:
            return message
        await self._closed.wait()
        return WSMessage(WSMsgType.CLOSED, None, None)

    async def send_str(self, data: str) -> None:
        return None

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed = True
        self._closed.set()
        return True

    def exception(self) -> BaseException | None:
        return None


class StandInSession:
    """Plays the `aiohttp.ClientSession` the client opens its WebSocket with."""

    closed = False

    def __init__(self, payloads: list[str | bytes]) -> None:
        handshake = [orjson.dumps({"id": "c", "type": "connect", "timestamp": 1, "data": {
            "sessionId": "s-1", "connectionId": "c-1", "resumed": False, "heartbeatInterval": 30_000}}),
            orjson.dumps({"id": "a", "type": "auth_success", "timestamp": 1, "data": {}})]
        self._messages = [WSMessage(WSMsgType.TEXT, m.decode(), None) for m in handshake] + [
            WSMessage(WSMsgType.BINARY if isinstance(p, bytes) else WSMsgType.TEXT, p, None) for p in payloads]

    async def ws_connect(self, url: str, **options: Any) -> StandInSocket:
        return StandInSocket(self._messages)

    async def close(self) -> None:
        return None


async def events_per_cpu_second(ws: AutoSDLCWebSocket, count: int) -> float:
    """Connect, receive `count` events, close: events per CPU-second of this process."""
    started = time.process_time()
    await ws.connect()
    received = 0
    async for _event in ws:
        received += 1
        if received == count:
            break
    elapsed = time.process_time() - started
    await ws.close()
    return count / elapsed


async def in_process_run(count: int, typed: bool, compressed: bool, batch: int = 1) -> float:
    session = StandInSession(frames(count, compressed, batch))
    ws = AutoSDLCWebSocket("ws://stand-in/ws", api_key="k", typed=typed, http_session=session,  # type: ignore[arg-type]
                           reconnect=ReconnectPolicy(max_attempts=1), batch=batch > 1)
    return await events_per_cpu_second(ws, count)


async def one_run(count: int, typed: bool, compressed: bool, batch: int = 1) -> float:
    runner = web.AppRunner(fake_gateway(frames(count, compressed, batch)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        ws = AutoSDLCWebSocket(f"ws://127.0.0.1:{port}/ws", api_key="k", typed=typed,
                               reconnect=ReconnectPolicy(max_attempts=1), batch=batch > 1)
        return await events_per_cpu_second(ws, count)
    finally:
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for setup, run, unit in (("socket", one_run, "events per CPU s"),
                             ("in-process", in_process_run, "events per CPU s")):
        for label, typed, compressed, batch in (("dicts", False, False, 1), ("typed", True, False, 1),
                                                ("dicts+gzip", False, True, 1), ("dicts, x10", False, False, 10),
                                                ("dicts, x50", False, False, 50), ("typed, x50", True, False, 50)):
            rates = [await run(args.events, typed, compressed, batch) for _ in range(args.runs)]
            print(f"{setup:10s} {label:11s} {statistics.median(rates):9,.0f} {unit} "
                  f"(min {min(rates):,.0f}, max {max(rates):,.0f}, {args.runs} runs of {args.events})")


if __name__ == "__main__":
    asyncio.run(main())

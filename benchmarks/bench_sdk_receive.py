"""Receive throughput of the Python SDK (`AutoSDLCWebSocket`), gateway left out.

A minimal aiohttp server plays the gateway's handshake (`connect`, `auth_success`)
and then writes EVENTS `agent_log` frames as fast as the socket takes them; the
client iterates until it has them all. Reports events per CPU second of the process
(median of RUNS; the fake server's sending is in it too, the same for every client
version, and CPU time is steadier than wall time on a shared machine), for plain dicts
(`typed=False`), typed models, and gzip binary frames.

    .venv/bin/python benchmarks/bench_sdk_receive.py [--events 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import time

import orjson
from aiohttp import WSMsgType, web

from autosdlc_ws.client import AutoSDLCWebSocket, ReconnectPolicy


def frames(count: int, compressed: bool) -> list[str | bytes]:
    out: list[str | bytes] = []
    for i in range(count):
        text = orjson.dumps({"id": f"evt-{i}", "type": "agent_log", "timestamp": 1,
                             "data": {"agentId": "coder-001", "level": "info", "message": f"line {i}"}})
        out.append(gzip.compress(text) if compressed else text.decode())
    return out


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


async def one_run(count: int, typed: bool, compressed: bool) -> float:
    runner = web.AppRunner(fake_gateway(frames(count, compressed)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        ws = AutoSDLCWebSocket(f"ws://127.0.0.1:{port}/ws", api_key="k", typed=typed,
                               reconnect=ReconnectPolicy(max_attempts=1))
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
    finally:
        await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for label, typed, compressed in (("dicts", False, False), ("typed", True, False),
                                     ("dicts+gzip", False, True)):
        rates = [await one_run(args.events, typed, compressed) for _ in range(args.runs)]
        print(f"{label:11s} {statistics.median(rates):9,.0f} events per CPU s "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f}, {args.runs} runs of {args.events})")


if __name__ == "__main__":
    asyncio.run(main())

"""A hostile client for the flood test, run as its own process:

    python tests/security/flooder.py WS_URL TOKEN MAX_SECONDS [STOP_FILE]

It stops when STOP_FILE appears (the test creates it once it has measured) or
after MAX_SECONDS, whichever comes first.

Sends publishes and pings as fast as it can, reading what comes back (so the
server cannot drop it as a slow consumer), reconnects whenever it is closed,
and prints one JSON line: frames sent, answers by kind, close codes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import websockets

BATCH = 200  # frames written before giving the reader a turn


async def flood(url: str, token: str, seconds: float, stop_file: str | None = None) -> dict[str, object]:
    end = time.monotonic() + seconds

    def going() -> bool:
        return time.monotonic() < end and not (stop_file and os.path.exists(stop_file))

    sent = 0
    answers: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    connections = 0
    publish = json.dumps({"type": "agent_status", "data": {"agentId": "flood", "status": "busy"}})
    ping = json.dumps({"type": "ping", "data": {}})

    async def read(ws: websockets.ClientConnection) -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                answers[msg["data"].get("code", msg["type"]) if msg["type"] == "error" else msg["type"]] += 1
        except websockets.ConnectionClosed:
            pass

    while going():
        try:
            ws = await websockets.connect(f"{url}?token={token}", max_size=None, compression=None,
                                          open_timeout=5)
        except websockets.InvalidStatus as exc:
            refusals[str(exc.response.status_code)] += 1
            await asyncio.sleep(0.05)
            continue
        except OSError:
            await asyncio.sleep(0.05)
            continue
        connections += 1
        reader = asyncio.get_running_loop().create_task(read(ws))
        try:
            while going() and not reader.done():
                for n in range(BATCH):
                    await ws.send(ping if n % 4 == 0 else publish)
                    sent += 1
                await asyncio.sleep(0)
        except websockets.ConnectionClosed:
            pass
        if not reader.done():
            await ws.close()
        await reader
        rcvd = ws.protocol.close_rcvd
        closes[str(rcvd.code) if rcvd else "1006"] += 1
    return {"sent": sent, "answers": dict(answers), "closes": dict(closes), "refusals": dict(refusals),
            "connections": connections}


if __name__ == "__main__":
    stop = sys.argv[4] if len(sys.argv) > 4 else None
    print(json.dumps(asyncio.run(flood(sys.argv[1], sys.argv[2], float(sys.argv[3]), stop))), flush=True)

"""A consumer that stops reading is closed; others keep every event (CONTRACT.md section 6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import base_settings, timeout
from tests.integration.helpers import agent_status, open_authed, publish

EVENTS = 5000
BATCH = 100
PAD = "x" * 900  # ~1 KB per event


async def test_stalled_consumer_is_closed_and_reader_gets_everything(
        gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(outgoing_buffer_bytes=64 * 1024))
    stalled = await open_authed(server)
    reader = await open_authed(server)
    assert stalled.connect is not None
    stalled_id = stalled.connect["data"]["connectionId"]
    for c in (stalled, reader):
        await c.subscribe(["agent_status"])
    stalled.ws.transport.pause_reading()  # never reads again

    received: list[str] = []

    async def read_all() -> None:
        while len(received) < EVENTS:
            msg = await reader.recv(10)
            assert msg["type"] == "agent_status", msg
            received.append(msg["id"])

    reading = asyncio.create_task(read_all())
    started = time.monotonic()
    try:
        for start in range(0, EVENTS, BATCH):
            await publish(server, [agent_status("a1", f"ev-{n}", message=PAD)
                                   for n in range(start, start + BATCH)])
        await asyncio.wait_for(reading, timeout(20))
    finally:
        reading.cancel()
    assert received == [f"ev-{n}" for n in range(EVENTS)]
    # the stalled one is gone on the server side, the reader is not
    deadline = time.monotonic() + timeout(5)
    while stalled_id in server.gateway.connections:
        assert time.monotonic() < deadline, "the stalled consumer was never closed"
        await asyncio.sleep(0.02)
    assert reader.connect is not None
    assert reader.connect["data"]["connectionId"] in server.gateway.connections
    assert server.gateway.stats.slow_consumer_disconnects == 1
    assert time.monotonic() - started < timeout(30)
    stalled.ws.transport.abort()
    await reader.close()


async def test_stalled_consumer_gets_4008(gateway_factory: Callable[..., Any]) -> None:
    """The close code is visible once the stalled client reads again (if the frame made it)."""
    server = await gateway_factory(base_settings(outgoing_buffer_bytes=64 * 1024))
    stalled = await open_authed(server)
    await stalled.subscribe(["agent_status"])
    stalled.ws.transport.pause_reading()
    n = 0
    while server.gateway.connections and n < 3000:
        await publish(server, [agent_status("a1", f"s-{n + i}", message=PAD) for i in range(BATCH)])
        n += BATCH
    assert not server.gateway.connections or n < 3000
    stalled.ws.transport.resume_reading()
    code, _ = await stalled.closed(10)
    assert code in (4008, None)  # None: the server aborted before its close frame got out

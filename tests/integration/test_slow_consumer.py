"""A consumer that stops reading is closed; others keep every event (CONTRACT.md section 6)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

from tests.conftest import base_settings, timeout
from tests.integration.helpers import Client, agent_status, open_authed, publish

EVENTS = 5000
BATCH = 100
PAD = "x" * 900  # ~1 KB per event


async def test_stalled_consumer_is_closed_and_reader_gets_everything(
        gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(outgoing_buffer_bytes=64 * 1024))
    stalled = await open_authed(server, sock=small_buffer_socket(server.port))
    reader = await open_authed(server, max_queue=None)  # reads as fast as the server writes
    assert stalled.connect is not None
    stalled_id = stalled.connect["data"]["connectionId"]
    for c in (stalled, reader):
        await c.subscribe(["agent_status"])
    shrink_server_send_buffers(server, only=stalled)  # the kernel must not absorb all 5 MB
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
    # and its socket is really released, although the client never reads again
    deadline = time.monotonic() + timeout(5)
    while len(server.runner.server.connections) > 1:
        assert time.monotonic() < deadline, "the stalled consumer's socket was never released"
        await asyncio.sleep(0.05)
    assert reader.connect is not None
    assert reader.connect["data"]["connectionId"] in server.gateway.connections
    assert server.gateway.stats.slow_consumer_disconnects == 1
    assert time.monotonic() - started < timeout(30)
    stalled.ws.transport.abort()
    await reader.close()


def small_buffer_socket(port: int) -> socket.socket:
    """A connected client socket with a small receive buffer, so a stalled client
    cannot hide megabytes in the kernel."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def shrink_server_send_buffers(server: Any, only: Client | None = None) -> None:
    """Fix the server side's kernel send buffers small (no autotuning), so unsent
    bytes pile up in the process, where the server has to deal with them."""
    port = only.ws.transport.get_extra_info("sockname")[1] if only is not None else None
    for handler in server.runner.server.connections:
        if port is not None and handler.transport.get_extra_info("peername")[1] != port:
            continue
        sock = handler.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)


async def test_stalled_client_missing_pongs_is_cut_off(gateway_factory: Callable[..., Any]) -> None:
    """Heartbeat timeout on a client that stopped reading with a full send buffer:
    the server must not leave the socket half-closed waiting for it to drain."""
    server = await gateway_factory(base_settings(heartbeat_interval_s=0.3,
                                                 outgoing_buffer_bytes=64 * 1024 * 1024))
    stalled = await open_authed(server, sock=small_buffer_socket(server.port))
    await stalled.subscribe(["agent_status"])
    shrink_server_send_buffers(server)
    stalled.ws.transport.pause_reading()
    await publish(server, [agent_status("a1", f"h-{n}", message=PAD) for n in range(1000)])
    (conn,) = server.gateway.connections.values()
    assert conn.transport.get_write_buffer_size() > 0, "the kernel took it all: nothing is stuck"
    deadline = time.monotonic() + timeout(5)
    while server.gateway.connections or server.runner.server.connections:
        assert time.monotonic() < deadline, (
            f"registered={len(server.gateway.connections)} sockets={len(server.runner.server.connections)}")
        await asyncio.sleep(0.05)
    stalled.ws.transport.abort()


async def test_stalled_consumer_gets_4008(gateway_factory: Callable[..., Any]) -> None:
    """A stalled client that reads again soon after sees the 4008 close frame, queued
    behind what it had not read."""
    server = await gateway_factory(base_settings(outgoing_buffer_bytes=64 * 1024))
    stalled = await open_authed(server, sock=small_buffer_socket(server.port))
    await stalled.subscribe(["agent_status"])
    stalled.ws.transport.pause_reading()
    n = 0
    while not server.gateway.stats.slow_consumer_disconnects:
        assert n < 20_000, "never detected as a slow consumer"
        await publish(server, [agent_status("a1", f"s-{n + i}", message=PAD) for i in range(BATCH)])
        n += BATCH
    stalled.ws.transport.resume_reading()
    code, reason = await stalled.closed(10)
    assert (code, reason) == (4008, "slow consumer")


async def test_shutdown_with_a_stalled_client_ends_within_the_grace_period(
        gateway_factory: Callable[..., Any]) -> None:
    """Draining owes the stalled client its bytes only for `shutdown_grace_s`; the good
    client still gets `disconnect` and 1001, and shutdown does not hang."""
    server = await gateway_factory(base_settings(shutdown_grace_s=0.5,
                                                 outgoing_buffer_bytes=64 * 1024 * 1024))
    stalled = await open_authed(server, sock=small_buffer_socket(server.port))
    await stalled.subscribe(["agent_status"])
    shrink_server_send_buffers(server)
    stalled.ws.transport.pause_reading()
    good = await open_authed(server, max_queue=None)
    await publish(server, [agent_status("a1", f"d-{n}", message=PAD) for n in range(1000)])
    started = time.monotonic()
    cleanup = asyncio.create_task(server.runner.cleanup())
    frames = await good.until(lambda m: m["type"] == "disconnect")
    assert frames[-1]["data"]["reconnect"] is True
    code, _ = await good.closed()
    assert code == 1001
    await asyncio.wait_for(cleanup, timeout(5))
    assert time.monotonic() - started < timeout(2)
    # the stalled client's socket was cut off rather than left waiting for it
    stalled.ws.transport.resume_reading()
    code, _ = await stalled.closed(5)
    assert code in (1006, None), code

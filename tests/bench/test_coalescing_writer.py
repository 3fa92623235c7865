"""The coalescing writer of server/connection.py: frames due in one loop iteration
leave in one write, in order, none lost; a connection that falls past the
outgoing bound is closed with 4008 and its buffers dropped. Correctness only."""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Any

import pytest

from autosdlc_ws.bench.loadgen import LoadConfig, Phase, run_loadgen
from autosdlc_ws.broker.memory import memory_backend
from autosdlc_ws.core.connection_core import ConnectionCore
from autosdlc_ws.core.envelope import EncodedEvent, make_message
from autosdlc_ws.errors import CloseCode
from autosdlc_ws.server.connection import Connection
from autosdlc_ws.server.gateway import Gateway
from tests.conftest import base_settings, make_token, start_gateway, timeout


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0  # what the kernel has not taken yet, as asyncio would report it
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "write after close"
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.aborted = self.closing = True

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeWS:
    def __init__(self, *, hang: bool = False) -> None:
        self.close_codes: list[int] = []
        self.hang = hang

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.close_codes.append(code)
        if self.hang:
            await asyncio.sleep(3600)
        return True


def make_conn(limit: int = 64 * 1024, *, hang: bool = False) -> tuple[Connection, FakeTransport, FakeWS]:
    settings = base_settings(outgoing_buffer_bytes=limit)
    gateway = Gateway(settings, backend=memory_backend())
    core = ConnectionCore(settings=settings, authenticator=gateway.authenticator, connection_id="conn-t",
                          session_id="sess-t", opened_at_ms=0)
    transport, ws = FakeTransport(), FakeWS(hang=hang)
    conn = Connection(gateway, ws, transport, core, "127.0.0.1")  # type: ignore[arg-type]
    return conn, transport, ws


def event(i: int, size: int = 0) -> EncodedEvent:
    data = {"agentId": "a", "level": "info", "message": "x" * size, "i": i}
    return EncodedEvent(make_message("agent_log", data, now_ms=0, msg_id=f"evt-{i}"), gzip_threshold=1024)


def parse_frames(stream: bytes) -> list[bytes]:
    """Split unmasked server frames (RFC 6455) back into payloads."""
    payloads, pos = [], 0
    while pos < len(stream):
        b0, b1 = stream[pos], stream[pos + 1]
        assert b0 & 0x80 and not b1 & 0x80, "final, unmasked frames only"
        length, pos = b1 & 0x7F, pos + 2
        if length == 126:
            (length,), pos = struct.unpack("!H", stream[pos:pos + 2]), pos + 2
        elif length == 127:
            (length,), pos = struct.unpack("!Q", stream[pos:pos + 8]), pos + 8
        payloads.append(stream[pos:pos + length])
        pos += length
    return payloads


async def next_iteration() -> None:
    await asyncio.sleep(0)


async def settle(iterations: int = 20) -> None:
    """Let the tasks the writer started (the close) take their first steps."""
    for _ in range(iterations):
        await asyncio.sleep(0)


async def test_frames_due_in_one_iteration_leave_in_one_write_in_order() -> None:
    conn, transport, _ = make_conn()
    outs = [event(i) for i in range(50)]
    for i, out in enumerate(outs):
        conn.deliver(out, i + 1)
    conn.send_message(make_message("pong", {}, now_ms=0, msg_id="msg-last"))
    assert transport.writes == []  # nothing written before the loop turns
    await next_iteration()
    assert len(transport.writes) == 1
    payloads = parse_frames(transport.writes[0])
    assert payloads[:50] == [o.json for o in outs]
    assert b'"msg-last"' in payloads[50] and len(payloads) == 51
    assert conn.frames_out == 51  # summed into autosdlc_ws_messages_sent_total at scrape time


@pytest.mark.parametrize("seed", range(5))
async def test_random_interleavings_never_reorder_or_lose(seed: int) -> None:
    rng = random.Random(seed)
    conn, transport, _ = make_conn(limit=1 << 30)
    expected: list[bytes] = []
    iterations_with_frames = 0
    counter = 0
    for _ in range(200):
        queued = 0
        for _ in range(rng.randrange(0, 12)):
            counter += 1
            if rng.random() < 0.8:
                out = event(counter, size=rng.choice((0, 10, 200, 70_000)))
                conn.deliver(out, counter)
                expected.append(out.json)
            else:
                msg = make_message("pong", {}, now_ms=0, msg_id=f"msg-{counter}")
                conn.send_message(msg)
                expected.append(EncodedEvent(msg, gzip_threshold=1024).json)
            queued += 1
        if queued:
            iterations_with_frames += 1
        await next_iteration()
    await next_iteration()
    assert parse_frames(b"".join(transport.writes)) == expected
    assert len(transport.writes) == iterations_with_frames  # one write per iteration that had frames


async def test_within_the_bound_everything_is_written() -> None:
    conn, transport, ws = make_conn(limit=64 * 1024)
    transport.buffered = 32 * 1024  # behind, but within the bound
    for i in range(10):
        conn.deliver(event(i, size=100), i)
    await next_iteration()
    assert len(parse_frames(transport.writes[0])) == 10
    assert not conn.closing and ws.close_codes == []


async def test_past_the_bound_the_connection_is_closed_4008_and_dropped() -> None:
    conn, transport, ws = make_conn(limit=64 * 1024)
    conn.deliver(event(0), 1)
    await next_iteration()
    assert len(transport.writes) == 1
    transport.buffered = 64 * 1024 + 1  # the kernel took nothing for a while
    for i in range(1, 20):
        conn.deliver(event(i, size=1000), i + 1)
    await settle()
    assert conn.closing
    assert ws.close_codes == [CloseCode.SLOW_CONSUMER]
    assert len(transport.writes) == 1  # nothing more was written
    assert conn._pending == [] and conn._pending_bytes == 0
    assert isinstance(conn.host, Gateway) and conn.host.stats.slow_consumer_disconnects == 1
    conn.deliver(event(99), 99)  # later events are dropped, not queued
    await next_iteration()
    assert conn._pending == [] and len(transport.writes) == 1


async def test_a_slow_consumer_that_ignores_the_close_is_aborted() -> None:
    conn, transport, ws = make_conn(limit=1024, hang=True)
    transport.buffered = 4096
    conn.deliver(event(0), 1)
    await settle()
    assert ws.close_codes == [CloseCode.SLOW_CONSUMER]
    for _ in range(int(timeout(3) / 0.05)):
        if transport.aborted:
            break
        await asyncio.sleep(0.05)
    assert transport.aborted


@pytest.mark.parametrize("client", ["aiohttp", "picows"])
async def test_a_real_stalled_reader_is_closed_and_the_others_get_everything(client: str) -> None:
    """Through real sockets: two readers and one raw socket that never reads."""
    running = await start_gateway(base_settings(outgoing_buffer_bytes=64 * 1024,
                                                max_connections_per_identity=100))
    try:
        cfg = LoadConfig(target="gateway", base_url=running.http_url, n=2, token=make_token(),
                         client=client, progress=False, warmup_events=0, settle_s=0.0, event_size=4096,
                         stalled=1, drain_timeout=timeout(10), connect_timeout=timeout(30),
                         phases=[Phase("stall", batch=20, duration=0.0, max_events=3000, min_events=3000)])
        result = await run_loadgen(cfg)
    finally:
        gateway = running.gateway
        await running.runner.cleanup()
    assert result["ok"], result  # the two readers got every event, in order
    assert gateway.stats.slow_consumer_disconnects == 1
    assert result["phases"][0]["slow_consumer_disconnects"] == 1

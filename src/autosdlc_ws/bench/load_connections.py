"""The load generator's client connections: aiohttp or picows, and stalled readers.

Each connection checks every frame against the next event it must receive
(`LoadGen` keeps the expected bytes); anything else goes the slow path and
is classified there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from autosdlc_ws.bench.errors import BenchError
from autosdlc_ws.bench.protocol import SOCKETIO_TARGETS

monotonic_ns = time.monotonic_ns

try:  # the fastest client available; aiohttp's client otherwise
    import picows  # type: ignore[import-not-found,unused-ignore]

    HAVE_PICOWS = True
except ImportError:  # pragma: no cover - depends on the bench extra
    picows = None  # type: ignore[assignment,unused-ignore]
    HAVE_PICOWS = False

if TYPE_CHECKING:
    from autosdlc_ws.bench.loadgen import LoadGen


# --- connections -------------------------------------------------------------------------


def _expected_array(conn: Any, payload: bytes) -> bool:
    """A batched frame holding exactly the next expected events, checked as plain
    frames are (one bytes comparison per event, no parsing): counted, True."""
    lg: LoadGen = conn.lg
    frames, exp, end = lg.frames, conn.expected, len(payload) - 1
    if payload[end:] != b"]":
        return False
    pos, first = 1, exp
    while True:  # envelope, then "," and another, or the closing "]"
        if exp >= lg.published:
            return False
        frame = frames[exp]
        if not payload.startswith(frame, pos):
            return False
        pos += len(frame)
        exp += 1
        if pos == end:
            break
        if payload[pos:pos + 1] != b",":
            return False
        pos += 1
    now = monotonic_ns()
    for seq in range(first, exp):
        lg.lat_append(now - lg.sent_ns[seq])
    lg.last_ns = now
    conn.expected = exp
    count = lg.count + exp - first
    lg.count = count
    if count >= lg.wake_at:
        lg.wake()
    return True


def _slow_path(conn: Any, payload: bytes, binary: bool) -> None:
    """A frame that is not the next expected event: a batch of them, a control
    frame or an error."""
    lg: LoadGen = conn.lg
    if payload[:1] == b"[" and _expected_array(conn, payload):
        return
    try:
        kind, msg = lg.proto.decode(payload, binary)
    except Exception as exc:
        lg.error(conn, "undecodable", -1, detail=f"{type(exc).__name__}: {payload[:80]!r}")
        return
    if kind == "control":
        lg.proto.on_control(conn, msg)
        return
    if kind == "events":  # a batched frame: each envelope counted as if it came alone
        for item in msg:
            _account(conn, item, payload)
        return
    _account(conn, msg, payload)


def _account(conn: Any, msg: Any, payload: bytes) -> None:
    """Check one received event against what was published; count it and its latency."""
    lg: LoadGen = conn.lg
    data = msg.get("data") if isinstance(msg, dict) else None
    seq = data.get("seq") if isinstance(data, dict) else None
    if not isinstance(seq, int) or data.get("run") != lg.run_id or not 0 <= seq < lg.published:  # type: ignore[union-attr]
        lg.error(conn, "foreign", -1, detail=repr(payload[:80]))
        return
    now = monotonic_ns()
    exp = conn.expected
    if seq < exp:
        lg.error(conn, "duplicate", seq)
        return
    if seq > exp:
        lg.error(conn, "missing", exp, count=seq - exp)
    if data != lg.datas[seq]:
        lg.error(conn, "corrupt", seq)
    lg.lat_append(now - lg.sent_ns[seq])
    lg.last_ns = now
    conn.expected = seq + 1
    count = lg.count + 1 + (seq - exp)
    lg.count = count
    if count >= lg.wake_at:
        lg.wake()


class _ConnBase:
    lg: LoadGen
    index: int
    expected: int

    def _init(self, lg: LoadGen, index: int) -> None:
        self.lg = lg
        self.index = index
        self.expected = 0  # sequence number of the next event this connection must receive
        self.close_code: int | None = None
        self.is_ready = False
        self.failure: str | None = None
        self.ready_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ready(self) -> None:
        if not self.is_ready:
            self.is_ready = True
            self.lg.ready_count += 1
            if not self.ready_fut.done():
                self.ready_fut.set_result(None)

    def fail(self, why: str) -> None:
        self.failure = why
        if not self.ready_fut.done():
            self.ready_fut.set_exception(BenchError(f"connection {self.index}: {why}"))

    def closed(self, code: int | None) -> None:
        self.close_code = code
        if not self.lg.stopping:
            self.lg.error(self, "closed", self.expected, detail=f"close code {code}")
        if not self.ready_fut.done():
            self.ready_fut.set_exception(BenchError(f"connection {self.index} closed ({code})"))


if HAVE_PICOWS:
    _TEXT = picows.WSMsgType.TEXT
    _BINARY = picows.WSMsgType.BINARY
    _CLOSE = picows.WSMsgType.CLOSE

    class PicowsConn(picows.WSListener, _ConnBase):  # type: ignore[misc,unused-ignore]
        def __init__(self, lg: LoadGen, index: int) -> None:
            super().__init__()
            self._init(lg, index)
            self.transport: Any = None

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            self.lg.proto.on_open(self)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            mt = frame.msg_type
            if mt is _TEXT or mt is _BINARY:
                payload = frame.get_payload_as_bytes()
                lg = self.lg
                exp = self.expected
                if exp < lg.published and payload == lg.frames[exp]:  # the hot path: the next event
                    now = monotonic_ns()
                    lg.lat_append(now - lg.sent_ns[exp])
                    lg.last_ns = now
                    self.expected = exp + 1
                    count = lg.count + 1
                    lg.count = count
                    if count >= lg.wake_at:
                        lg.wake()
                    return
                _slow_path(self, payload, mt is _BINARY)
            elif mt is _CLOSE:
                code = frame.get_close_code()
                self.closed(int(code.value) if hasattr(code, "value") else int(code))
                with contextlib.suppress(Exception):
                    transport.send_close(code)
                transport.disconnect()

        def on_ws_disconnected(self, transport: Any) -> None:
            if self.close_code is None:
                self.closed(1006)

        def send_text(self, data: bytes) -> None:
            self.transport.send(_TEXT, data)

        def shutdown(self) -> None:
            if self.transport is not None:
                with contextlib.suppress(Exception):
                    self.transport.send_close()
                self.transport.disconnect()


class AiohttpConn(_ConnBase):
    def __init__(self, lg: LoadGen, index: int) -> None:
        self._init(lg, index)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None

    def send_text(self, data: bytes) -> None:
        assert self.ws is not None
        self.lg.loop.create_task(self.ws.send_str(data.decode()))

    async def reader(self) -> None:
        ws = self.ws
        assert ws is not None
        lg = self.lg
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        async for msg in ws:
            if msg.type is text:
                payload = msg.data.encode()
            elif msg.type is binary:
                payload = msg.data
            else:
                continue
            exp = self.expected
            if exp < lg.published and payload == lg.frames[exp]:
                now = monotonic_ns()
                lg.lat_append(now - lg.sent_ns[exp])
                lg.last_ns = now
                self.expected = exp + 1
                count = lg.count + 1
                lg.count = count
                if count >= lg.wake_at:
                    lg.wake()
                continue
            _slow_path(self, payload, msg.type is binary)
        self.closed(ws.close_code)

    def shutdown(self) -> None:
        if self.ws is not None and not self.ws.closed:
            self.lg.loop.create_task(self.ws.close())


async def open_picows(lg: LoadGen, index: int, url: str, headers: dict[str, str], *,
                      local_addr: str | None = None) -> Any:
    """One picows connection feeding `lg` (needs the bench extra: `HAVE_PICOWS`), from
    source address `local_addr` when given (each has its own ~28k ephemeral ports)."""
    kw: dict[str, Any] = {"local_addr": (local_addr, 0)} if local_addr else {}
    _, listener = await picows.ws_connect(
        lambda: PicowsConn(lg, index), url, extra_headers=headers,
        websocket_handshake_timeout=60, enable_auto_pong=True, max_frame_size=64 * 1024 * 1024,
        read_buffer_init_size=4096, **kw)
    return listener


# --- stalled readers -------------------------------------------------------------------


def _masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return header + mask + masked


def open_stalled_reader(ws_url: str, headers: dict[str, str], target: str, *, rcvbuf: int,
                        index: int, timeout: float = 10.0) -> socket.socket:
    """A raw socket that upgrades, subscribes like a normal client, then never reads again."""
    url = urllib.parse.urlsplit(ws_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((url.hostname or "127.0.0.1", url.port or 80))
    key = base64.b64encode(os.urandom(16)).decode()
    path = url.path + (f"?{url.query}" if url.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"{extra}\r\n").encode())
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        while marker not in seen:
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError(f"stalled reader {index}: closed during the handshake")
            seen += chunk

    read_until(b"\r\n\r\n")
    if b" 101 " not in seen.split(b"\r\n", 1)[0]:
        raise BenchError(f"stalled reader {index}: upgrade refused: {seen[:200]!r}")
    if target == "gateway":
        read_until(b'"auth_success"')
        sock.sendall(_masked_text_frame(orjson.dumps({
            "id": f"stalled-{index}", "type": "subscribe", "timestamp": 1_700_000_000_000,
            "data": {"events": ["agent_log"]}})))
        read_until(b'"subscription_update"')
    elif target in SOCKETIO_TARGETS:
        read_until(b'"sid"')
        sock.sendall(_masked_text_frame(b"40"))
        read_until(b"40{")
    return sock

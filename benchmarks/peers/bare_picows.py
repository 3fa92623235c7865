"""Peer (e): a bare picows (Cython) server on uvloop that only broadcasts. The physical-limit line.

The fastest Python WebSocket stack there is, doing nothing but fan-out: for
each published event, `transport.send(TEXT, text)` to every connection (one
send() system call per delivery, as every stack pays). No auth, no
subscriptions, no history, no metrics: what one Python core can write.

picows speaks only WebSocket, but the load generator publishes with
`POST /api/v1/events` like for every target, so one listening port serves both:
the first request head of a TCP connection decides. An upgrade request is
handed, bytes and all, to a picows protocol; anything else stays with a tiny
HTTP/1.1 handler (keep-alive, pipelined requests, `Content-Length` bodies)
that answers `POST /api/v1/events` (one event or an array) and `GET /healthz`.

    python benchmarks/peers/bare_picows.py --port 8804
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import dataclass
from typing import Any

import orjson
import picows
from picows.picows import WSProtocol  # the protocol picows' own server makes per connection

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 16 * 1024
MAX_BODY = 16 * 1024 * 1024


# --- HTTP/1.1, from plain bytes (no I/O) ----------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


class BadRequest(ValueError):
    """The bytes are not an HTTP/1.1 request this server handles."""


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Request line and headers of one request head (without the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def is_websocket_upgrade(head: bytes) -> bool:
    """Whether a request head asks for a WebSocket (then picows takes the connection)."""
    method, _, headers = parse_head(head)
    return method == "GET" and headers.get("upgrade", "").lower() == "websocket"


def split_requests(buffer: bytes) -> tuple[list[Request], bytes]:
    """The complete requests at the start of `buffer` and the bytes left over (pipelining)."""
    requests = []
    while True:
        end = buffer.find(HEAD_END)
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise BadRequest("request head too large")
            return requests, buffer
        method, path, headers = parse_head(buffer[:end])
        if "transfer-encoding" in headers:
            raise BadRequest("only Content-Length bodies are handled")
        length_text = headers.get("content-length", "0")
        length = int(length_text) if length_text.isdigit() else -1
        if not 0 <= length <= MAX_BODY:
            raise BadRequest(f"bad Content-Length {length_text!r}")
        start = end + len(HEAD_END)
        if len(buffer) < start + length:
            return requests, buffer
        requests.append(Request(method, path, headers, buffer[start:start + length]))
        buffer = buffer[start + length:]


def response(status: int, body: dict[str, Any], *, keep_alive: bool = True) -> bytes:
    reasons = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}
    payload = orjson.dumps(body)
    return (f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: {'keep-alive' if keep_alive else 'close'}"
            "\r\n\r\n").encode() + payload


# --- the server ---------------------------------------------------------------------------


class Broadcaster:
    """Every open WebSocket; `publish` writes each event to all of them."""

    def __init__(self) -> None:
        self.transports: set[Any] = set()

    def publish(self, events: list[Any]) -> None:
        text_type = picows.WSMsgType.TEXT
        for event in events:
            text = orjson.dumps(event)
            for transport in list(self.transports):
                transport.send(text_type, text)


class BroadcastListener(picows.WSListener):  # type: ignore[misc]
    def __init__(self, broadcaster: Broadcaster) -> None:
        super().__init__()
        self.broadcaster = broadcaster

    def on_ws_connected(self, transport: Any) -> None:
        self.broadcaster.transports.add(transport)

    def on_ws_disconnected(self, transport: Any) -> None:
        self.broadcaster.transports.discard(transport)

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type is picows.WSMsgType.CLOSE:
            self.broadcaster.transports.discard(transport)
            transport.send_close(frame.get_close_code())
            transport.disconnect()


def websocket_protocol(broadcaster: Broadcaster) -> Any:
    """A server-side picows protocol, configured as `picows.ws_create_server` configures it."""
    return WSProtocol(
        None, None, False, lambda request: BroadcastListener(broadcaster),
        logging.getLogger("picows.server"), True, 5.0,
        False, 20.0, 20.0, picows.WSAutoPingStrategy.PING_WHEN_IDLE,
        True, 16 * 1024 * 1024, None, 16 * 1024)


class HttpOrWebSocket(asyncio.Protocol):
    """One TCP connection: the tiny HTTP API, until a request asks for a WebSocket."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self.broadcaster = broadcaster
        self.transport: Any = None  # asyncio's or uvloop's TCP transport (not an asyncio.Transport)
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        end = self.buffer.find(HEAD_END)
        try:
            if end >= 0 and is_websocket_upgrade(self.buffer[:end]):
                self._hand_over()
                return
            requests, self.buffer = split_requests(self.buffer)
        except (BadRequest, ValueError) as exc:
            self.transport.write(response(400, {"error": str(exc)}, keep_alive=False))
            self.transport.close()
            return
        for request in requests:
            self.transport.write(self._answer(request))
            if not request.keep_alive:
                self.transport.close()
                return

    def _answer(self, request: Request) -> bytes:
        keep = request.keep_alive
        if request.method == "GET" and request.path == "/healthz":
            return response(200, {"status": "ok"}, keep_alive=keep)
        if request.method == "POST" and request.path == "/api/v1/events":
            payload = orjson.loads(request.body)
            events = payload if isinstance(payload, list) else [payload]
            self.broadcaster.publish(events)
            return response(202, {"ids": [e.get("id") for e in events]}, keep_alive=keep)
        return response(404, {"error": "not found"}, keep_alive=keep)

    def _hand_over(self) -> None:
        """Give the connection, with the bytes read so far, to a picows protocol."""
        assert self.transport is not None
        ws = websocket_protocol(self.broadcaster)
        self.transport.set_protocol(ws)
        ws.connection_made(self.transport)
        data = memoryview(self.buffer)
        while data:
            room = ws.get_buffer(len(data))
            n = min(len(room), len(data))
            room[:n] = data[:n]
            ws.buffer_updated(n)
            data = data[n:]
        self.buffer = b""


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    broadcaster = Broadcaster()
    server = await loop.create_server(lambda: HttpOrWebSocket(broadcaster), host, port)
    print(f"bare-picows listening on http://{host}:{port} (picows {picows.__version__}, "
          f"{type(loop).__module__.split('.')[0]} loop)", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for transport in list(broadcaster.transports):
        transport.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description="bare-picows: a benchmark peer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8804)
    args = parser.parse_args()
    try:  # the fastest loop, as picows is the fastest WebSocket stack: the physical limit
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()

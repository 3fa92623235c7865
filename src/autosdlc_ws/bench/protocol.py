"""What the load generator sends and expects, per target: events and the three wire protocols.

Every benchmark event is an `agent_log` envelope whose `data` carries the run
id, a sequence number and the publisher's `time.monotonic_ns()`. The harness
also knows the exact bytes each server will send for each event (servers
encode the same dict with the same key order), so checking a delivery is one
bytes comparison; anything else falls back to parsing, which tells a
duplicate, a gap, a foreign or a corrupted delivery apart.
"""

from __future__ import annotations

import abc
import os
import random
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from autosdlc_ws.core.envelope import compress_message

TARGETS = ("gateway", "bare-aiohttp", "socketio", "node-socketio", "bare-picows")
#: Targets that speak Socket.IO (python-socketio and Node.js `socket.io`): the same wire and room emit.
SOCKETIO_TARGETS = ("socketio", "node-socketio")
#: Targets that send each published event as it is, to every connection, with no handshake.
BARE_TARGETS = ("bare-aiohttp", "bare-picows")
EVENT_TYPE = "agent_log"


def new_run_id() -> str:
    return os.urandom(4).hex()


@dataclass(slots=True)
class EventFactory:
    """Envelopes of about `size` bytes of JSON, numbered per run."""

    run_id: str
    size: int = 300
    _pad: str = ""

    def __post_init__(self) -> None:
        probe = orjson.dumps(self._build(10_000, 1_000_000_000_000_000, ""))
        self._pad = log_text(max(0, self.size - len(probe)))

    def _build(self, seq: int, t_ns: int, pad: str) -> dict[str, Any]:
        return {
            "id": f"bench-{self.run_id}-{seq}",
            "type": EVENT_TYPE,
            "timestamp": 1_700_000_000_000 + seq,
            "data": {"agentId": "bench-agent", "level": "info", "message": pad,
                     "run": self.run_id, "seq": seq, "t": t_ns},
            "metadata": {"version": "1.0", "source": "bench"},
        }

    def make(self, seq: int, t_ns: int) -> dict[str, Any]:
        return self._build(seq, t_ns, self._pad)


_WORDS = ("agent", "task", "build", "test", "passed", "failed", "coverage", "workflow", "step", "retry",
          "commit", "branch", "merge", "deploy", "error", "warning", "module", "function", "line", "timeout",
          "queue", "worker", "cache", "request", "response", "latency", "ms", "ok", "status", "phase")


def log_text(size: int) -> str:
    """`size` characters of log-like text (compresses like real logs, unlike one repeated byte)."""
    rng = random.Random(size)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS) if rng.random() < 0.8 else str(rng.randrange(100_000))
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def gzip_payload(event: dict[str, Any]) -> bytes:
    """The gateway's gzip form of an event (`metadata.compressed: true` inside)."""
    return compress_message(event)


class Protocol(abc.ABC):
    """One target's wire protocol, from the client side."""

    name = ""
    binary_events = False

    def __init__(self, *, compression: bool = False) -> None:
        self.compression = compression
        self.gzip_threshold = 1024

    @abc.abstractmethod
    def ws_url(self, base_http: str) -> str: ...

    def headers(self, token: str | None) -> dict[str, str]:
        return {}

    def expected(self, event: dict[str, Any], event_json: bytes) -> bytes:
        """The payload of the frame the server sends for `event`."""
        return event_json

    @abc.abstractmethod
    def decode(self, payload: bytes, binary: bool) -> tuple[str, Any]:
        """("event", envelope) or ("control", message) or ("ignore", None)."""

    def on_control(self, conn: Any, message: Any) -> None:  # noqa: B027 - optional hook
        """Handshake steps; calls `conn.ready()` when the connection receives events."""

    def on_open(self, conn: Any) -> None:  # noqa: B027 - optional hook
        """Right after the WebSocket upgrade."""


class GatewayProtocol(Protocol):
    name = "gateway"

    def __init__(self, *, compression: bool = False, batch: bool = False,
                 subscribe: dict[str, Any] | None = None) -> None:
        super().__init__(compression=compression)
        self.batch = batch
        self.subscribe = subscribe or {"events": [EVENT_TYPE]}

    def ws_url(self, base_http: str) -> str:
        url = base_http.replace("http://", "ws://", 1).rstrip("/") + "/ws"
        query = [q for q, on in (("compression=gzip", self.compression), ("batch=1", self.batch)) if on]
        return url + ("?" + "&".join(query) if query else "")

    def headers(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def expected(self, event: dict[str, Any], event_json: bytes) -> bytes:
        if self.compression and len(event_json) > self.gzip_threshold:
            return gzip_payload(event)
        return event_json

    def decode(self, payload: bytes, binary: bool) -> tuple[str, Any]:
        if binary:
            payload = zlib.decompress(payload, wbits=31)
        msg = orjson.loads(payload)
        if isinstance(msg, list):  # batched frames: several events, in order
            return "events", msg
        if msg.get("type") == EVENT_TYPE:
            return "event", msg
        return "control", msg

    def on_control(self, conn: Any, message: Any) -> None:
        kind = message.get("type")
        if kind == "connect":
            limits = message.get("data", {}).get("limits", {})
            self.gzip_threshold = int(limits.get("gzipThresholdBytes", self.gzip_threshold))
        elif kind == "auth_success":
            conn.send_text(orjson.dumps({"id": f"sub-{conn.index}", "type": "subscribe",
                                         "timestamp": 1_700_000_000_000, "data": self.subscribe}))
        elif kind == "subscription_update" and message["data"].get("status") == "active":
            conn.ready()
        elif kind in ("error", "auth_failure"):
            conn.fail(f"{kind}: {message.get('data')}")


class BareProtocol(Protocol):
    name = "bare-aiohttp"

    def ws_url(self, base_http: str) -> str:
        return base_http.replace("http://", "ws://", 1).rstrip("/") + "/ws"

    def on_open(self, conn: Any) -> None:
        conn.ready()

    def decode(self, payload: bytes, binary: bool) -> tuple[str, Any]:
        msg = orjson.loads(payload)
        if isinstance(msg, dict) and msg.get("type") == EVENT_TYPE:
            return "event", msg
        return "control", msg


class SocketIOProtocol(Protocol):
    """The minimal Engine.IO v4 / Socket.IO v5 text protocol over a WebSocket.

    `0{...}` open -> we send `40`; `40{...}` namespace connected (ready);
    `2` ping -> `3` pong; `42["event", data]` a message."""

    name = "socketio"

    def ws_url(self, base_http: str) -> str:
        return (base_http.replace("http://", "ws://", 1).rstrip("/")
                + "/socket.io/?EIO=4&transport=websocket")

    def expected(self, event: dict[str, Any], event_json: bytes) -> bytes:
        return b'42["event",' + event_json + b"]"

    def decode(self, payload: bytes, binary: bool) -> tuple[str, Any]:
        if payload[:2] == b"42":
            body = orjson.loads(payload[2:])
            if isinstance(body, list) and len(body) == 2 and body[0] == "event":
                return "event", body[1]
        return "control", payload

    def on_control(self, conn: Any, message: Any) -> None:
        if message == b"2":
            conn.send_text(b"3")
        elif message[:1] == b"0":
            conn.send_text(b"40")
        elif message[:2] == b"40":
            conn.ready()
        elif message[:2] in (b"41", b"44"):
            conn.fail(f"socket.io refused the namespace: {message[:200]!r}")


def make_protocol(target: str, *, compression: bool = False, batch: bool = False,
                  subscribe: dict[str, Any] | None = None) -> Protocol:
    if target == "gateway":
        return GatewayProtocol(compression=compression, batch=batch, subscribe=subscribe)
    if compression or batch:
        raise ValueError(f"compression and batch apply to the gateway only, not {target}")
    if target in BARE_TARGETS:
        return BareProtocol()
    if target in SOCKETIO_TARGETS:
        return SocketIOProtocol()
    raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")

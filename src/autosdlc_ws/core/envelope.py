"""Envelope parsing and encoding: JSON in, JSON out, once per message.

`parse_frame` turns what a client sent (text, or gzip in a binary frame) into
a dict, refusing oversize input and compression bombs without allocating the
bomb. `EncodedEvent` holds one message ready for every recipient: the WebSocket
frame of its JSON, and (built on first need, then shared) the frame of its gzip.
"""

from __future__ import annotations

import itertools
import os
import zlib
from typing import Any

import orjson

from autosdlc_ws.core.frames import OP_BINARY, OP_TEXT, build_frame
from autosdlc_ws.core.schema_versions import schema_version
from autosdlc_ws.errors import InvalidJSON, InvalidMessage, TooLarge

_counter = itertools.count(1)
_prefix = os.urandom(4).hex()


def _new_prefix() -> None:
    """A forked process (a worker from the fork server) must not repeat its parent's ids."""
    global _counter, _prefix
    _counter = itertools.count(1)
    _prefix = os.urandom(4).hex()


os.register_at_fork(after_in_child=_new_prefix)


def new_id(prefix: str = "evt") -> str:
    """Unique within the process and across processes (random prefix + counter)."""
    return f"{prefix}-{_prefix}{next(_counter):x}"


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress gzip, refusing output over `limit` bytes before producing it."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidJSON(f"binary frame is not valid gzip: {exc}") from None
    if len(out) > limit:
        raise TooLarge(f"decompressed message exceeds {limit} bytes")
    if not inflater.eof:
        raise InvalidJSON("binary frame holds a truncated gzip stream")
    return out


DEFAULT_MAX_DEPTH = 32


def too_deep(obj: Any, limit: int) -> bool:
    """Is `obj` (decoded JSON) nested more than `limit` arrays/objects deep? The top level is 1."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def check_depth(obj: Any, raw: str | bytes, limit: int) -> None:
    """Refuse JSON nested deeper than `limit`: deep values cost recursion in every
    consumer, and orjson cannot even encode past 254 levels, so such an event
    would fail at fan-out instead of at the door. Counting brackets in the raw
    text first keeps the common case (a handful of them) free."""
    brackets = raw.count("{") + raw.count("[") if isinstance(raw, str) else raw.count(b"{") + raw.count(b"[")
    if brackets > limit and isinstance(obj, (dict, list)) and too_deep(obj, limit):
        raise InvalidMessage(f"JSON nested deeper than {limit} levels", path="")


def parse_frame(payload: str | bytes, *, binary: bool, max_decompressed: int,
                max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """The JSON object a client frame holds; binary frames hold gzip of it."""
    if binary:
        assert isinstance(payload, bytes)
        payload = gunzip_capped(payload, max_decompressed)
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg.lower():  # orjson stops at 1024 levels
            raise InvalidMessage(f"JSON nested deeper than {max_depth} levels", path="") from None
        raise InvalidJSON(f"frame is not valid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise InvalidMessage("a message must be a JSON object", path="")
    check_depth(obj, payload, max_depth)
    return obj


def make_message(
    type_: str,
    data: dict[str, Any],
    *,
    now_ms: int,
    correlation_id: str | None = None,
    msg_id: str | None = None,
) -> dict[str, Any]:
    """A server-originated envelope (control frames, replies)."""
    metadata: dict[str, Any] = {"version": schema_version(type_), "source": "gateway"}
    if correlation_id is not None:
        metadata["correlationId"] = correlation_id
    return {
        "id": msg_id or new_id("msg"),
        "type": type_,
        "timestamp": now_ms,
        "data": data,
        "metadata": metadata,
    }


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class EncodedEvent:
    """One message encoded once, shared by all recipients (the fan-out unit)."""

    __slots__ = ("_compressed_json", "_gzip_frame", "_threshold", "json", "message", "text_frame")

    def __init__(self, message: dict[str, Any], *, gzip_threshold: int) -> None:
        self.message = message
        self.json = orjson.dumps(message)
        self.text_frame = build_frame(OP_TEXT, self.json)
        self._gzip_frame: bytes | None = None
        self._compressed_json: bytes | None = None
        self._threshold = gzip_threshold

    @property
    def compressible(self) -> bool:
        return len(self.json) > self._threshold

    @property
    def compressed_json(self) -> bytes:
        """The JSON with `metadata.compressed: true` inside: what a gzip frame
        holds, alone or in a batch (built on first need, then shared)."""
        body = self._compressed_json
        if body is None:
            body = self._compressed_json = compressed_json(self.message)
        return body

    def frame_for(self, gzip: bool) -> bytes:
        if not gzip or len(self.json) <= self._threshold:
            return self.text_frame
        frame = self._gzip_frame
        if frame is None:
            frame = self._gzip_frame = build_frame(OP_BINARY, gzip_bytes(self.compressed_json))
        return frame


def compressed_json(message: dict[str, Any]) -> bytes:
    """The message's JSON with `metadata.compressed: true` inside."""
    metadata = dict(message.get("metadata") or {})
    metadata["compressed"] = True
    return orjson.dumps({**message, "metadata": metadata})


def gzip_bytes(body: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, 31)
    return deflater.compress(body) + deflater.flush()


def compress_message(message: dict[str, Any]) -> bytes:
    """gzip of the message's JSON with `metadata.compressed: true` inside."""
    return gzip_bytes(compressed_json(message))

"""Envelope parsing (text, gzip, bombs), encoding once per message, and frame headers."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import Any

import orjson
import pytest

from autosdlc_ws.core.envelope import (
    EncodedEvent,
    compress_message,
    gunzip_capped,
    make_message,
    new_id,
    parse_frame,
)
from autosdlc_ws.core.frames import OP_BINARY, OP_CLOSE, OP_TEXT, build_frame
from autosdlc_ws.errors import InvalidJSON, InvalidMessage, TooLarge

MIB = 1024 * 1024


def decode_frame(frame: bytes) -> tuple[bool, int, bytes]:
    """A minimal RFC 6455 decoder for one unmasked server frame: (fin, opcode, payload).

    Fails (AssertionError) on anything a server frame must not be: reserved bits,
    a mask, a length in a longer form than needed, trailing or missing bytes.
    """
    assert len(frame) >= 2
    b0, b1 = frame[0], frame[1]
    fin = bool(b0 & 0x80)
    assert b0 & 0x70 == 0, "RSV bits set"
    opcode = b0 & 0x0F
    assert not b1 & 0x80, "server frames are not masked"
    length = b1 & 0x7F
    offset = 2
    if length == 126:
        (length,) = struct.unpack("!H", frame[2:4])
        assert length >= 126, "16-bit length used for a short payload"
        offset = 4
    elif length == 127:
        (length,) = struct.unpack("!Q", frame[2:10])
        assert length >= 1 << 16, "64-bit length used for a medium payload"
        assert length < 1 << 63
        offset = 10
    payload = frame[offset:]
    assert len(payload) == length, f"header says {length} bytes, frame carries {len(payload)}"
    return fin, opcode, payload


# ------------------------------------------------------------------------ parse_frame


def test_parse_text_frame() -> None:
    msg = {"id": "m1", "type": "ping", "data": {}}
    assert parse_frame(orjson.dumps(msg).decode(), binary=False, max_decompressed=MIB) == msg


def test_parse_gzip_binary_frame() -> None:
    msg = {"id": "m1", "type": "subscribe", "data": {"events": ["agent_*"]}}
    payload = gzip.compress(orjson.dumps(msg))
    assert parse_frame(payload, binary=True, max_decompressed=MIB) == msg


@pytest.mark.parametrize("text", ["{", "not json", "", "{'a': 1}", "[1,", '{"a": NaN}'])
def test_parse_invalid_json(text: str) -> None:
    with pytest.raises(InvalidJSON):
        parse_frame(text, binary=False, max_decompressed=MIB)


@pytest.mark.parametrize("text", ["[]", "[1, 2]", "1", '"s"', "null", "true"])
def test_parse_non_object(text: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse_frame(text, binary=False, max_decompressed=MIB)
    assert info.value.code.value == "invalid_message"


def test_binary_frame_that_is_not_gzip() -> None:
    with pytest.raises(InvalidJSON):
        parse_frame(b'{"type": "ping"}', binary=True, max_decompressed=MIB)


def test_truncated_gzip() -> None:
    payload = gzip.compress(orjson.dumps({"type": "ping", "data": {"pad": "x" * 5000}}))
    with pytest.raises(InvalidJSON) as info:
        parse_frame(payload[: len(payload) // 2], binary=True, max_decompressed=MIB)
    assert "truncated" in info.value.message or "gzip" in info.value.message
    with pytest.raises(InvalidJSON):
        parse_frame(payload[:-4], binary=True, max_decompressed=MIB)  # trailer cut off
    with pytest.raises(InvalidJSON):
        parse_frame(b"", binary=True, max_decompressed=MIB)


def test_gzip_of_invalid_json() -> None:
    with pytest.raises(InvalidJSON):
        parse_frame(gzip.compress(b"{nope"), binary=True, max_decompressed=MIB)
    with pytest.raises(InvalidJSON):
        parse_frame(gzip.compress(b"\xff\xfe{}"), binary=True, max_decompressed=MIB)


def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * (10 * MIB), compresslevel=9)
    assert len(bomb) < 20_000  # a few KB on the wire
    with pytest.raises(TooLarge):
        parse_frame(bomb, binary=True, max_decompressed=MIB)


def test_gunzip_capped_stops_at_the_cap() -> None:
    with pytest.raises(TooLarge):
        gunzip_capped(gzip.compress(b"a" * (MIB + 1)), MIB)
    assert len(gunzip_capped(gzip.compress(b"a" * MIB), MIB)) == MIB


def _json_of_size(size: int) -> bytes:
    head = b'{"type":"ping","id":"p","data":{},"pad":"'
    tail = b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


def test_payload_exactly_at_the_cap_passes_and_one_more_byte_does_not() -> None:
    exact = _json_of_size(MIB)
    parsed = parse_frame(gzip.compress(exact), binary=True, max_decompressed=MIB)
    assert parsed["type"] == "ping" and len(parsed["pad"]) > MIB - 100
    with pytest.raises(TooLarge):
        parse_frame(gzip.compress(_json_of_size(MIB + 1)), binary=True, max_decompressed=MIB)


def test_unicode_text_frame() -> None:
    assert parse_frame('{"m": "héllo ☃"}', binary=False, max_decompressed=MIB) == {"m": "héllo ☃"}


# ------------------------------------------------------------------------- make_message


def test_make_message_envelope() -> None:
    msg = make_message("pong", {}, now_ms=1234, correlation_id="req-1")
    assert msg["type"] == "pong" and msg["timestamp"] == 1234 and msg["data"] == {}
    assert msg["metadata"]["correlationId"] == "req-1"
    assert msg["metadata"]["version"] == "1.0"
    assert "correlationId" not in make_message("pong", {}, now_ms=1)["metadata"]
    assert make_message("pong", {}, now_ms=1, msg_id="fixed")["id"] == "fixed"


def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    """Workers are forked from one preloaded fork server: each needs its own id prefix."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next id and leave without running any cleanup
        os.write(write_end, new_id().encode())
        os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 100).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_id = new_id()
    assert child_id.startswith("evt-") and parent_id.startswith("evt-")
    assert child_id[4:12] != parent_id[4:12]  # the per-process prefix differs


def test_new_id_is_unique() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(i.startswith("evt-") for i in ids)
    assert new_id("sub").startswith("sub-")


# --------------------------------------------------------------------------- EncodedEvent

SMALL: dict[str, Any] = {"id": "e1", "type": "agent_status", "timestamp": 1,
                         "data": {"agentId": "a1", "status": "idle"}, "metadata": {"version": "1.0"}}
BIG: dict[str, Any] = {**SMALL, "data": {"agentId": "a1", "status": "idle", "note": "n" * 5000}}


def test_text_frame_is_a_valid_websocket_frame_of_the_json() -> None:
    out = EncodedEvent(SMALL, gzip_threshold=1024)
    fin, opcode, payload = decode_frame(out.text_frame)
    assert fin and opcode == OP_TEXT
    assert orjson.loads(payload) == SMALL
    assert payload == out.json


def test_big_text_frame_uses_extended_length() -> None:
    out = EncodedEvent(BIG, gzip_threshold=1024)
    fin, opcode, payload = decode_frame(out.text_frame)
    assert fin and opcode == OP_TEXT and orjson.loads(payload) == BIG


def test_gzip_only_above_threshold() -> None:
    small = EncodedEvent(SMALL, gzip_threshold=1024)
    assert not small.compressible
    assert small.frame_for(gzip=True) is small.text_frame
    big = EncodedEvent(BIG, gzip_threshold=1024)
    assert big.compressible
    assert big.frame_for(gzip=False) is big.text_frame
    assert big.frame_for(gzip=True) != big.text_frame
    # exactly at the threshold is not above it
    at = EncodedEvent(SMALL, gzip_threshold=len(orjson.dumps(SMALL)))
    assert at.frame_for(gzip=True) is at.text_frame
    below = EncodedEvent(SMALL, gzip_threshold=len(orjson.dumps(SMALL)) - 1)
    assert below.frame_for(gzip=True) is not below.text_frame


def test_gzip_frame_is_built_once_and_shared() -> None:
    out = EncodedEvent(BIG, gzip_threshold=1024)
    first = out.frame_for(gzip=True)
    assert all(out.frame_for(gzip=True) is first for _ in range(5))


def test_gzip_frame_holds_the_message_marked_compressed() -> None:
    out = EncodedEvent(BIG, gzip_threshold=1024)
    fin, opcode, payload = decode_frame(out.frame_for(gzip=True))
    assert fin and opcode == OP_BINARY
    assert len(payload) < len(out.json)
    inner = orjson.loads(gzip.decompress(payload))
    assert inner["metadata"]["compressed"] is True
    assert inner["metadata"]["version"] == "1.0"
    assert {k: v for k, v in inner.items() if k != "metadata"} == {
        k: v for k, v in BIG.items() if k != "metadata"}
    # the shared message itself is not modified
    assert "compressed" not in BIG["metadata"]
    assert "compressed" not in orjson.loads(out.json)["metadata"]


def test_compress_message_without_metadata() -> None:
    msg = {"id": "x", "type": "system_alert", "timestamp": 1, "data": {}}
    inner = orjson.loads(zlib.decompress(compress_message(msg), wbits=31))
    assert inner["metadata"] == {"compressed": True}
    assert "metadata" not in msg


# ------------------------------------------------------------------------------ frames


@pytest.mark.parametrize(
    ("length", "header_len", "length_byte"),
    [(0, 2, 0), (1, 2, 1), (125, 2, 125), (126, 4, 126), (65535, 4, 126), (65536, 10, 127),
     (70000, 10, 127)],
)
def test_build_frame_lengths(length: int, header_len: int, length_byte: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    assert len(payload) == length
    frame = build_frame(OP_BINARY, payload)
    assert len(frame) == header_len + length
    assert frame[0] == 0x80 | OP_BINARY
    assert frame[1] == length_byte
    fin, opcode, decoded = decode_frame(frame)
    assert fin and opcode == OP_BINARY and decoded == payload


def test_build_close_frame() -> None:
    frame = build_frame(OP_CLOSE, struct.pack("!H", 1001) + b"bye")
    fin, opcode, payload = decode_frame(frame)
    assert fin and opcode == OP_CLOSE
    assert struct.unpack("!H", payload[:2]) == (1001,) and payload[2:] == b"bye"

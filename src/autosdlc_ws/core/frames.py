"""Server-to-client WebSocket frames built once and written to many sockets.

Frames a server sends are not masked (RFC 6455 §5.1), so one event's frame
is the same bytes for every recipient. Building it here, once per event,
lets fan-out be a plain `transport.write(frame)` per connection, and lets a
connection write all frames due in one loop iteration with a single call.
The permessage-deflate extension is never negotiated, so no per-connection
state alters the bytes.
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8

_FIN = 0x80


def build_frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((_FIN | opcode, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", _FIN | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, 127, length)
    return header + payload

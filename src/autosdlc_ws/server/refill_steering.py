"""A replacement worker takes every new connection until it has caught up (Linux).

With `serve --workers N` every worker listens on the same port with
SO_REUSEPORT and the kernel hashes each new connection to one of them. When
a worker dies, its clients come back within a second or two and the hash
spreads them over every listening socket: the survivors keep extra
connections, the replacement starts nearly empty, and since a worker's
memory stays at the high-water mark of what it has held, the imbalance
outlives the connections. So a replacement attaches a one-instruction
classic BPF program to the port's reuseport group, "always my socket", and
detaches it once it holds as many connections as its least loaded sibling
(`core.refill`); no client is refused or has to retry.

Which socket is "mine": the group numbers its sockets in the order they
joined, a closed socket's slot taken by the last one, so with every sibling
listening the replacement's socket is the last, `workers - 1`. A program
that answers an index past the end makes the kernel fall back to its hash,
so a wrong guess (two workers restarting at once) costs balance, never a
connection. Elsewhere than Linux nothing is attached and the hash decides.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

from autosdlc_ws.core.refill import MAX_STEER_S, refilled

log = logging.getLogger("autosdlc_ws.workers")

SO_ATTACH_REUSEPORT_CBPF = 51
SO_DETACH_REUSEPORT_BPF = 68  # Linux 5.3+
_BPF_RET_K = 0x06  # return the constant k
_BPF_RET_A = 0x16  # return the accumulator
_BPF_LD_W_ABS = 0x20
_BPF_ALU_MOD_K = 0x94
_SKF_AD_RANDOM = 0xFFFFF000 + 56  # SKF_AD_OFF + SKF_AD_RANDOM: a random u32
#: How often the replacement looks at the counts while it steers.
CHECK_EVERY_S = 0.5


def _attach(sock: Any, instructions: Sequence[tuple[int, int]]) -> None:
    """setsockopt(SO_ATTACH_REUSEPORT_CBPF) with `(code, k)` instructions (jt = jf = 0)."""
    code = b"".join(struct.pack("HBBI", op, 0, 0, k) for op, k in instructions)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(instructions), ctypes.addressof(buffer))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def steer_to(sockets: Sequence[Any], index: int) -> bool:
    """Send every new connection of these sockets' reuseport groups to socket `index`."""
    try:
        for sock in sockets:
            _attach(sock, [(_BPF_RET_K, index)])
    except OSError as exc:
        log.info("cannot steer new connections (%s); the kernel's hash spreads them", exc)
        return False
    return bool(sockets)


def stop_steering(sockets: Sequence[Any], workers: int) -> None:
    """Give the choice back to the kernel's hash (or, on kernels without detach, to an
    equally even random pick)."""
    for sock in sockets:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
        except OSError:
            try:
                _attach(sock, [(_BPF_LD_W_ABS, _SKF_AD_RANDOM), (_BPF_ALU_MOD_K, max(1, workers)), (_BPF_RET_A, 0)])
            except OSError as exc:
                log.error("could not stop steering new connections to this worker: %s", exc)


async def steer_until_refilled(sockets: Sequence[Any], workers: int, own: Callable[[], int],
                               siblings: Callable[[], list[int]]) -> None:
    """Run in a replacement worker from the moment it listens: every new connection of the
    port comes here until `core.refill.refilled` says it has caught up."""
    if not steer_to(sockets, workers - 1):
        return
    started = time.monotonic()
    log.info("replacement worker: taking every new connection until it holds as many as its least "
             "loaded sibling (at most %.0f s)", MAX_STEER_S)
    try:
        while not refilled(elapsed := time.monotonic() - started, own(), counts := siblings()):
            await asyncio.sleep(CHECK_EVERY_S)
    finally:
        stop_steering(sockets, workers)
    log.info("replacement worker: caught up after %.1f s with %d connections (siblings: %s); "
             "the kernel spreads new connections again", elapsed, own(), counts or "none reported")


"""`server.refill_steering` on real loopback sockets: a reuseport group's new connections
go where the attached program says, and back to an even spread when steering stops.
Linux, like the rest of the suite (it reads /proc and uses prctl)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from autosdlc_ws.server import refill_steering
from autosdlc_ws.server.refill_steering import steer_to, steer_until_refilled, stop_steering


@pytest.fixture
def group() -> Iterator[list[socket.socket]]:
    """Three listeners in one reuseport group; the first is closed, as a killed worker's
    would be, and a fourth (the replacement) joins: it is the group's last socket."""
    socks: list[socket.socket] = []
    port = 0
    for i in range(4):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        port = s.getsockname()[1]
        s.listen(64)
        s.setblocking(False)
        socks.append(s)
        if i == 2:
            socks.pop(0).close()
    yield socks
    for s in socks:
        s.close()


def landed(socks: list[socket.socket], count: int = 40) -> list[int]:
    """Open `count` connections to the group's port; how many each listener accepted."""
    port = socks[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    got = []
    for s in socks:
        n = 0
        while True:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                break
            conn.close()
            n += 1
        got.append(n)
    for c in clients:
        c.close()
    return got


def test_steering_sends_every_connection_to_the_last_socket_and_stopping_spreads_again(
        group: list[socket.socket]) -> None:
    assert steer_to(group[:1], 2)  # set through any socket of the group
    assert landed(group) == [0, 0, 40]
    stop_steering(group, 3)
    assert all(n > 0 for n in landed(group, 60))  # all on one of three by chance: 3 * (1/3)^59


def test_an_index_past_the_end_falls_back_to_the_kernels_spread(group: list[socket.socket]) -> None:
    assert steer_to(group, 7)  # a wrong guess: two workers restarting at once
    assert all(n > 0 for n in landed(group, 60))


def test_without_detach_stopping_attaches_an_even_random_pick(
        group: list[socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    steer_to(group, 2)
    monkeypatch.setattr(refill_steering, "SO_DETACH_REUSEPORT_BPF", -1)  # as on a kernel before 5.3
    stop_steering(group, 3)
    assert all(n > 0 for n in landed(group, 60))


async def test_a_replacement_steers_until_it_has_caught_up(
        group: list[socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refill_steering, "CHECK_EVERY_S", 0.01)
    own = {"count": 0}
    task = asyncio.create_task(steer_until_refilled(group, 3, lambda: own["count"], lambda: [25, 30]))
    await asyncio.sleep(0.05)
    assert landed(group) == [0, 0, 40]  # still behind: everything to the replacement
    own["count"] = 25
    await asyncio.wait_for(task, 2)
    assert all(n > 0 for n in landed(group, 60))

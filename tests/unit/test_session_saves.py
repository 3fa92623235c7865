"""SessionSaves: a session write that fails is retried until it lands, one in flight per connection."""

from __future__ import annotations

import asyncio

from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.session_saves import SessionSaves


class Store:
    """A record store whose next `fail` writes fail; `gate` holds a write in flight."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.state = 0  # what the connection's record would say now
        self.written: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.gate: asyncio.Event | None = None

    async def write(self) -> None:
        state = self.state  # read when the write runs, as the gateway's does
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.fail:
                self.fail -= 1
                raise BrokerUnavailable("redis: No connection available.")
            self.written.append(state)
        finally:
            self.in_flight -= 1


def saves_with_recorded_sleeps() -> tuple[SessionSaves, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    return SessionSaves(first_retry_s=0.25, max_retry_s=1.0, sleep=sleep), slept


async def settle(saves: SessionSaves) -> None:
    for _ in range(200):
        if not len(saves):
            return
        await asyncio.sleep(0)
    raise AssertionError("a save never finished")


async def test_a_failed_write_is_retried_with_backoff_until_it_lands() -> None:
    saves, slept = saves_with_recorded_sleeps()
    store = Store(fail=4)
    store.state = 7
    saves.schedule("conn-1", store.write, "sess-1")
    await settle(saves)
    assert store.written == [7]
    assert slept == [0.25, 0.5, 1.0, 1.0]  # doubling, capped
    assert saves.failures == 4


async def test_a_burst_of_changes_is_one_write() -> None:
    saves, _ = saves_with_recorded_sleeps()
    store = Store()
    for state in range(5):
        store.state = state
        saves.schedule("conn-1", store.write, "sess-1")
    await settle(saves)
    assert store.written == [4]


async def test_a_change_during_a_write_is_written_after_it_never_beside_it() -> None:
    saves, _ = saves_with_recorded_sleeps()
    store = Store()
    store.gate = asyncio.Event()
    store.state = 1
    saves.schedule("conn-1", store.write, "sess-1")
    for _ in range(3):
        await asyncio.sleep(0)
    assert store.in_flight == 1
    store.state = 2  # a subscription added while the first write is in flight
    saves.schedule("conn-1", store.write, "sess-1")
    store.gate.set()
    await settle(saves)
    assert store.written == [1, 2]
    assert store.most_in_flight == 1  # an older state can never land after a newer one


async def test_a_change_during_failing_writes_lands_with_the_retry() -> None:
    saves, _ = saves_with_recorded_sleeps()
    store = Store(fail=2)
    store.state = 1
    saves.schedule("conn-1", store.write, "sess-1")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    store.state = 2
    saves.schedule("conn-1", store.write, "sess-1")
    await settle(saves)
    assert store.written[-1] == 2


async def test_cancel_stops_the_retries() -> None:
    saves, slept = saves_with_recorded_sleeps()
    store = Store(fail=10_000)
    saves.schedule("conn-1", store.write, "sess-1")
    for _ in range(20):
        await asyncio.sleep(0)
    saves.cancel("conn-1")
    await asyncio.sleep(0)
    attempts = len(slept)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(slept) == attempts and not len(saves) and store.written == []


async def test_connections_are_saved_independently() -> None:
    saves, _ = saves_with_recorded_sleeps()
    failing, fine = Store(fail=3), Store()
    failing.state, fine.state = 1, 2
    saves.schedule("conn-1", failing.write, "sess-1")
    saves.schedule("conn-2", fine.write, "sess-2")
    await settle(saves)
    assert (failing.written, fine.written) == ([1], [2])


async def test_a_write_with_a_deadline_gives_up_after_it() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        await asyncio.sleep(0)

    saves = SessionSaves(first_retry_s=1.0, max_retry_s=4.0, sleep=sleep, clock=lambda: now[0])
    store = Store(fail=10_000)
    saves.schedule("conn-1", store.write, "sess-1", give_up_after_s=10.0)
    await settle(saves)
    assert slept == [1.0, 2.0, 4.0, 4.0]  # 11 s: the next failure is past the deadline
    assert store.written == [] and saves.failures == 5


async def test_close_drops_every_pending_write() -> None:
    saves, _ = saves_with_recorded_sleeps()
    stores = [Store(fail=10_000) for _ in range(3)]
    for i, store in enumerate(stores):
        saves.schedule(f"conn-{i}", store.write, f"sess-{i}")
    await asyncio.sleep(0)
    saves.close()
    await asyncio.sleep(0)
    assert not len(saves)

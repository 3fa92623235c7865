"""The gate on session starts: at most `limit` at once, the rest wait in order, a long wait is a 1013."""

from __future__ import annotations

import asyncio

import pytest

from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.start_gate import StartGate


async def test_at_most_limit_starts_run_at_once_and_the_rest_wait_in_order() -> None:
    gate = StartGate(limit=2, wait_s=5)
    release = asyncio.Event()
    entered: list[int] = []
    most = 0

    async def start(n: int) -> None:
        nonlocal most
        async with gate:
            entered.append(n)
            most = max(most, gate.running)
            await release.wait()

    tasks = [asyncio.create_task(start(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert entered == [0, 1] and gate.running == 2 and gate.waiting == 3
    release.set()
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2, 3, 4] and most == 2
    assert gate.running == 0 and gate.waiting == 0


async def test_a_start_that_waits_too_long_is_refused_and_leaves_no_slot_taken() -> None:
    gate = StartGate(limit=1, wait_s=0.05)
    hold = asyncio.Event()

    async def first() -> None:
        async with gate:
            await hold.wait()

    task = asyncio.create_task(first())
    await asyncio.sleep(0.01)
    with pytest.raises(BrokerUnavailable, match="retry shortly"):
        async with gate:
            raise AssertionError("the gate let a second start through")
    assert gate.waiting == 0 and gate.running == 1
    hold.set()
    await task
    async with gate:  # the refused start did not keep a slot
        assert gate.running == 1


async def test_a_start_that_fails_inside_gives_its_slot_back() -> None:
    gate = StartGate(limit=1, wait_s=0.05)
    with pytest.raises(RuntimeError):
        async with gate:
            raise RuntimeError("history read failed")
    async with gate:
        assert gate.running == 1


def test_a_gate_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        StartGate(limit=0)

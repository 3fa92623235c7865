"""The Pub/Sub listener on a scripted fake connection: dispatch, and a dead peer noticed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from autosdlc_ws.broker.redis_pubsub import listen, subscribe_confirmed


class ScriptedPubSub:
    """Hands out the scripted messages, then silence; counts pings (never answered)."""

    def __init__(self, messages: list[dict[str, Any] | None]) -> None:
        self.messages = messages
        self.pings = 0
        self.subscribed: list[str] = []

    async def subscribe(self, *channels: str) -> None:
        self.subscribed.extend(channels)

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        await asyncio.sleep(0.001)
        return self.messages.pop(0) if self.messages else None

    async def ping(self) -> None:
        self.pings += 1


async def test_messages_reach_the_handler_and_a_silent_peer_is_given_up() -> None:
    fake = ScriptedPubSub([{"type": "subscribe", "channel": b"c", "data": 1},
                           {"type": "message", "channel": b"c", "data": b"one"},
                           {"type": "message", "channel": "d", "data": b"two"}])
    got: list[tuple[str, bytes]] = []

    async def on_message(channel: str, data: bytes) -> None:
        got.append((channel, data))

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="ping"):
        await listen(fake, on_message, idle_ping_s=0.05, timeout_s=0.05, running=lambda: True)  # type: ignore[arg-type]
    assert got == [("c", b"one"), ("d", b"two")]
    assert fake.pings == 1  # one ping, unanswered, then the connection is declared dead
    assert 0.1 <= time.monotonic() - started < 2


async def test_listen_returns_when_no_longer_running() -> None:
    fake = ScriptedPubSub([])
    await listen(fake, lambda c, d: asyncio.sleep(0), idle_ping_s=10, timeout_s=10,  # type: ignore[arg-type]
                 running=lambda: False)
    assert fake.pings == 0


async def test_subscribe_waits_for_every_confirmation() -> None:
    fake = ScriptedPubSub([{"type": "subscribe"}, None, {"type": "subscribe"}])
    await subscribe_confirmed(fake, ["a", "b"], timeout_s=1)  # type: ignore[arg-type]
    assert fake.subscribed == ["a", "b"]
    with pytest.raises(TimeoutError):
        await subscribe_confirmed(ScriptedPubSub([{"type": "subscribe"}]), ["a", "b"], timeout_s=0.05)  # type: ignore[arg-type]

"""Pub/Sub reading shared by the Redis modules: confirmed subscribes, a
listener that notices a dead connection, and the reconnect loop around them.

On Redis Cluster the channels are *sharded* (`SSUBSCRIBE`, messages of
type `smessage`): the connection goes to the node that owns the channel's
slot, which the reader looks up again at every attempt, and a `sunsubscribe`
pushed by Redis (the slot moved to another node) ends the attempt like a
lost connection, so the reader subscribes again where the slot went.

A Pub/Sub connection that Redis (or a proxy, or the network) silently drops
never raises on its own: the reader would just wait for messages forever. So
the listener pings when the connection has been idle for `idle_ping_s`, and
gives up (raising `TimeoutError`, for the caller's reconnect loop) when the
pong does not come within `timeout_s` more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from autosdlc_ws.broker.redis_link import REDIS_FAILURES

log = logging.getLogger("autosdlc_ws.broker.redis")

#: `on_message(channel, data)` for every published message.
MessageHandler = Callable[[str, bytes], Awaitable[None]]

#: How long one wait for a message lasts: the granularity of the idle checks.
POLL_S = 0.5


class SlotMoved(ConnectionError):
    """Redis ended a sharded subscription: the channel's slot now lives elsewhere."""


async def subscribe_confirmed(pubsub: PubSub, channels: Sequence[str], timeout_s: float, *,
                              sharded: bool = False) -> None:
    """Subscribe and wait until Redis confirms every channel (raises `TimeoutError`)."""
    if sharded:
        for channel in channels:  # one SSUBSCRIBE per channel: its channels must share a slot
            await pubsub.ssubscribe(channel)
    else:
        await pubsub.subscribe(*channels)
    confirm = "ssubscribe" if sharded else "subscribe"
    confirmed = 0
    deadline = time.monotonic() + timeout_s
    while confirmed < len(channels):
        msg = await pubsub.get_message(timeout=max(0.01, deadline - time.monotonic()))
        if msg is not None and msg["type"] == confirm:
            confirmed += 1
        elif time.monotonic() >= deadline:
            raise TimeoutError("no subscribe confirmation from redis")


async def listen(pubsub: PubSub, on_message: MessageHandler, *, idle_ping_s: float, timeout_s: float,
                 running: Callable[[], bool]) -> None:
    """Hand every message to `on_message` while `running()`; ping when idle so a dead
    peer is noticed (`TimeoutError`); connection errors propagate to the caller."""
    last_rx = time.monotonic()
    ping_sent: float | None = None
    while running():
        msg = await pubsub.get_message(timeout=POLL_S)
        now = time.monotonic()
        if msg is None:
            if ping_sent is not None:
                if now - ping_sent > idle_ping_s + timeout_s:
                    raise TimeoutError("redis did not answer a ping on the pub/sub connection")
            elif now - last_rx > idle_ping_s:
                await pubsub.ping()
                ping_sent = now
            continue
        last_rx, ping_sent = now, None
        kind = msg["type"]
        if kind == "message" or kind == "smessage":
            channel = msg["channel"]
            await on_message(channel.decode() if isinstance(channel, bytes) else channel, msg["data"])
        elif kind == "sunsubscribe":
            raise SlotMoved(f"redis ended the sharded subscription to {msg['channel']!r}")


@dataclass(frozen=True, slots=True)
class ReaderTimings:
    """reconnect_min_s/max_s: the jittered exponential wait between attempts;
    idle_ping_s, timeout_s: as `listen`, and timeout_s also bounds the subscribe."""

    reconnect_min_s: float
    reconnect_max_s: float
    idle_ping_s: float
    timeout_s: float


async def read_forever(connect: Callable[[], Awaitable[Redis]], channels: Sequence[str],
                       on_message: MessageHandler, *, on_up: Callable[[], Awaitable[None]],
                       on_down: Callable[[BaseException], None], running: Callable[[], bool],
                       timings: ReaderTimings, name: str, sharded: bool = False) -> None:
    """Subscribe, run `on_up` (catch up, register...), listen; on any failure call
    `on_down` and start over after a jittered, growing wait, until `running()` is False.
    A failure inside `on_up` counts as a failed attempt. `connect` gives the client
    of each attempt (on a cluster: one to the node that owns the channels' slot)."""
    delay = timings.reconnect_min_s
    while running():
        pubsub: PubSub | None = None
        try:
            pubsub = (await connect()).pubsub()
            await subscribe_confirmed(pubsub, channels, timings.timeout_s, sharded=sharded)
            await on_up()
            delay = timings.reconnect_min_s
            await listen(pubsub, on_message, idle_ping_s=timings.idle_ping_s, timeout_s=timings.timeout_s,
                         running=running)
        except asyncio.CancelledError:
            raise
        except REDIS_FAILURES as exc:
            on_down(exc)
        except Exception as exc:  # a bug must not end the reader for good
            log.exception("%s reader failed", name)
            on_down(exc)
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
        if not running():
            break
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(timings.reconnect_max_s, delay * 2)

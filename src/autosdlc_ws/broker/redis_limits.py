"""Shared limits in Redis: connection slots under leases, and token buckets.

One Lua script call each (`ACQUIRE_SLOT`, `TAKE_TOKENS`), times from Redis's
clock. A slot is held under a lease of `slot_lease_s` (30 s by default) that
this worker renews for all its holders every `slot_refresh_s` (a third of
the lease), so the slots of a worker that dies without releasing them
(kill -9, a lost host) lapse within one lease. While Redis is unreachable
both fail open to this worker's own view (`local_limits`): a slot is granted
while this worker holds fewer than the limit for the identity (and is
written to Redis by the first refresh after it returns), a bucket is a local
one with the same rate and burst. See docs/deployment.md, "Limits across
workers".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from autosdlc_ws.broker.base import SharedLimits
from autosdlc_ws.broker.local_limits import LocalBuckets, LocalSlots
from autosdlc_ws.broker.redis_link import REDIS_FAILURES, RedisLink, cancel_all
from autosdlc_ws.errors import BrokerUnavailable

log = logging.getLogger("autosdlc_ws.broker.redis")

#: Identities per REFRESH_SLOTS call.
REFRESH_CHUNK = 200


class RedisSharedLimits(SharedLimits):
    def __init__(self, link: RedisLink, *, slot_lease_s: float = 30.0, slot_refresh_s: float | None = None,
                 limit_retry_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.slot_lease_s = slot_lease_s
        self.slot_refresh_s = slot_refresh_s if slot_refresh_s is not None else slot_lease_s / 3
        if not 0 < self.slot_refresh_s < slot_lease_s:
            raise ValueError("slot_refresh_s must be positive and shorter than slot_lease_s")
        self._limit_retry_s = limit_retry_s
        self._clock = clock
        self._retry_at = 0.0  # after a failed limit call, decide locally until then
        self._slots = LocalSlots()  # identity -> holders this worker keeps alive
        self._unreleased: set[tuple[str, str]] = set()  # releases Redis has not seen yet
        self._fallback_buckets = LocalBuckets(clock)
        self._degraded_now = False
        self._seen_up = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self.limit_fallbacks = 0  # slot and bucket decisions taken locally (Redis unreachable)
        link.on_up(self._redis_is_back)

    async def start(self) -> None:
        self._closed = False
        self._tasks.append(asyncio.get_running_loop().create_task(
            self._refresh_forever(), name="redis-broker-slots"))

    async def close(self) -> None:
        self._closed = True
        tasks, self._tasks = self._tasks, []
        await cancel_all(tasks)

    def _redis_is_back(self) -> None:
        self._retry_at = 0.0
        if self._seen_up and (self._slots or self._unreleased) and not self._closed:
            # slots granted and released while Redis was away: tell it now, not at the next refresh
            self._tasks.append(asyncio.get_running_loop().create_task(self._refresh_quietly()))
        self._seen_up = True

    def _slot_key(self, identity: str) -> str:
        return f"{self.link.prefix}slots:{identity}"

    def _usable(self) -> bool:
        return self.link.available and self._clock() >= self._retry_at

    def _degraded(self, what: str, exc: BaseException | None) -> None:
        self.limit_fallbacks += 1
        if exc is not None:
            self._retry_at = self._clock() + self._limit_retry_s
        if not self._degraded_now:
            self._degraded_now = True
            log.warning("redis unreachable for shared limits (%s%s); deciding locally until it returns",
                        what, f": {type(exc).__name__}: {exc}" if exc else "")

    def _recovered(self) -> None:
        if self._degraded_now:
            self._degraded_now = False
            log.info("shared limits are counted in redis again")

    async def acquire_slot(self, identity: str, holder_id: str, limit: int) -> bool:
        if self._usable():
            try:
                taken, _ = await self.link.limit_script(
                    "ACQUIRE_SLOT", [self._slot_key(identity)],
                    [holder_id, limit, int(self.slot_lease_s * 1000)])
            except REDIS_FAILURES as exc:
                self._degraded("connection slot", exc)
            else:
                self._recovered()
                if not int(taken):
                    return False
                self._slots.add(identity, holder_id)
                self._unreleased.discard((identity, holder_id))
                return True
        else:
            self._degraded("connection slot", None)
        # Fail open to this worker's own count: at most `limit` here, written
        # to Redis (and counted by every worker) as soon as it is back.
        return self._slots.take(identity, holder_id, limit)

    async def release_slot(self, identity: str, holder_id: str) -> None:
        self._slots.drop(identity, holder_id)
        if self._usable():
            try:
                await self.link.limit_call(self.link.limits_client().hdel(self._slot_key(identity), holder_id))
                return
            except REDIS_FAILURES as exc:
                log.debug("could not release slot %s of %s: %s", holder_id, identity, exc)
        # Tried again after the next refresh; at worst the lease runs out.
        self._unreleased.add((identity, holder_id))

    def _released_since(self, snapshot: dict[str, list[str]]) -> set[tuple[str, str]]:
        return {(i, h) for i, holders in snapshot.items() for h in holders if not self._slots.holds(i, h)}

    async def refresh_slots(self) -> None:
        """Renew the lease of every slot this worker holds; retry releases Redis missed.

        Raises `BrokerUnavailable` when Redis could not be told (the caller retries)."""
        snapshot = {identity: sorted(holders) for identity, holders in self._slots.holders.items() if holders}
        pending, self._unreleased = self._unreleased, set()
        lease_ms = int(self.slot_lease_s * 1000)
        try:
            items = list(snapshot.items())
            for start in range(0, len(items), REFRESH_CHUNK):
                chunk = items[start:start + REFRESH_CHUNK]
                args: list[str | bytes | int | float] = [lease_ms]
                for _, holders in chunk:
                    args.append(len(holders))
                    args.extend(holders)
                await self.link.limit_script("REFRESH_SLOTS", [self._slot_key(i) for i, _ in chunk], args)
            # A release that raced this refresh may have been overwritten by it:
            # delete every holder of the snapshot that is no longer held.
            stale = pending | self._released_since(snapshot)
            if stale:
                pipe = self.link.limits_client().pipeline(transaction=False)
                for identity, holder in stale:
                    pipe.hdel(self._slot_key(identity), holder)
                await self.link.limit_call(pipe.execute())
        except REDIS_FAILURES as exc:
            self._unreleased |= pending | self._released_since(snapshot)
            raise BrokerUnavailable(f"redis: {exc}") from exc

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_slots()
        except BrokerUnavailable as exc:
            log.debug("slot refresh failed: %s", exc)

    async def _refresh_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.slot_refresh_s)
            if self.link.available and (self._slots or self._unreleased):
                await self._refresh_quietly()

    async def take_tokens(self, key: str, rate_per_s: float, burst: float, cost: float = 1) -> int:
        if self._usable():
            try:
                wait_ms = await self.link.limit_script(
                    "TAKE_TOKENS", [f"{self.link.prefix}{key}"], [rate_per_s, burst, cost])
            except REDIS_FAILURES as exc:
                self._degraded("token bucket", exc)
            else:
                self._recovered()
                return int(wait_ms)
        else:
            self._degraded("token bucket", None)
        # Fail open to a bucket of this worker's own (same rate and burst).
        return self._fallback_buckets.take(key, rate_per_s, burst, cost)

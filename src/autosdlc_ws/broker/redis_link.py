"""The connection to Redis shared by the Redis log, session store and limits.

One `RedisLink` per gateway process: the command pool (with the log's Lua
scripts), the limits pool (no retries, short timeouts), and whether Redis is
reachable. The live reader of `redis_log` is the one that notices: it calls
`went_down`/`went_up`, and the limits follow (`on_up` listeners, `available`).

Key layout (all under `prefix`, default `{autosdlc}:`; see `redis_scripts`):

    <prefix>epoch          random; a Redis that lost its data gets a new one
    <prefix>seq            last offset of this epoch
    <prefix>log            Stream, entry id "<offset>-0", fields t (Redis ms), e (event JSON)
    <prefix>ids            sorted set event id -> offset (resume by id, idempotent publish)
    <prefix>lv:order       sorted set last-value key -> offset (snapshot on subscribe; these
    <prefix>lv:val         four are written by the PUBLISH script, see `redis_scripts`)
    <prefix>lv:tags
    <prefix>lv:idx
    <prefix>session:<id>   a session record (JSON), with a TTL
    <prefix>events         the Pub/Sub channel
    <prefix>slots:<ident>  hash: connection holder -> lease expiry (shared connection caps)
    <prefix>rate:<key>     hash: a token bucket (tokens, last refill), expiring when idle
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from autosdlc_ws.broker import redis_scripts
from autosdlc_ws.broker.urls import redact_url

#: Failures that mean "Redis cannot be reached or used right now".
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

LOG_SCRIPTS = ("PUBLISH", "HEAD", "TRIM", "REMEMBER_IDS", "SNAPSHOT")
LIMIT_SCRIPTS = ("ACQUIRE_SLOT", "REFRESH_SLOTS", "TAKE_TOKENS")


class RedisLink:
    def __init__(self, url: str, *, prefix: str = "{autosdlc}:", connect_timeout_s: float = 1.0,
                 command_timeout_s: float = 5.0, max_connections: int = 64,
                 limit_timeout_s: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.limit_timeout_s = limit_timeout_s
        self._max_connections = max_connections
        self.log_keys = [f"{prefix}epoch", f"{prefix}seq", f"{prefix}log", f"{prefix}ids",
                         f"{prefix}lv:order", f"{prefix}lv:val", f"{prefix}lv:tags", f"{prefix}lv:idx"]
        self._client: Redis | None = None
        self._limits_client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        #: False while the live reader is cut off from Redis.
        self.available = False
        self._up_listeners: list[Callable[[], None]] = []

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    def client(self) -> Redis:
        """The command client: a blocking pool with retries (publishing is
        idempotent, ids are deduplicated in the script, so a retried call never
        appends an event twice). Blocking: a burst of commands (1,000 clients
        connecting at once, each saving its session) waits for a free
        connection instead of failing."""
        if self._client is None:
            pool = BlockingConnectionPool.from_url(
                self.url, max_connections=self._max_connections, timeout=self.command_timeout_s,
                socket_connect_timeout=self.connect_timeout_s, socket_timeout=self.command_timeout_s,
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2))
            self._client = Redis.from_pool(pool)
            for name in LOG_SCRIPTS:
                self._scripts[name] = self._client.register_script(getattr(redis_scripts, name))
        return self._client

    def limits_client(self) -> Redis:
        """The client of the limit calls: no retries and short timeouts, since a
        publish or an upgrade waits for it; when Redis does not answer at once
        the decision is taken locally instead."""
        if self._limits_client is None:
            pool = BlockingConnectionPool.from_url(
                self.url, max_connections=self._max_connections, timeout=self.limit_timeout_s,
                socket_connect_timeout=self.limit_timeout_s, socket_timeout=self.limit_timeout_s,
                retry=Retry(NoBackoff(), 0))
            self._limits_client = Redis.from_pool(pool)
            for name in LIMIT_SCRIPTS:
                self._scripts[name] = self._limits_client.register_script(getattr(redis_scripts, name))
        return self._limits_client

    def subscriber(self) -> Redis:
        """A client for one Pub/Sub connection: no retries, the reader reconnects itself."""
        return Redis.from_url(self.url, socket_connect_timeout=self.connect_timeout_s,
                              socket_timeout=self.command_timeout_s, retry=Retry(NoBackoff(), 0))

    async def log_script(self, name: str, args: Sequence[str | bytes | int | float]) -> Any:
        """Run one of the log's scripts on its keys (the first argument is a fresh
        random epoch, used when the log has none)."""
        self.client()
        return await self._scripts[name](keys=self.log_keys, args=[os.urandom(8).hex(), *args])

    async def limit_script(self, name: str, keys: Sequence[str],
                           args: Sequence[str | bytes | int | float]) -> Any:
        self.limits_client()
        return await asyncio.wait_for(self._scripts[name](keys=keys, args=args), self.limit_timeout_s)

    async def limit_call(self, call: Any) -> Any:
        return await asyncio.wait_for(call, self.limit_timeout_s)

    # --- reachability ----------------------------------------------------------------

    def on_up(self, listener: Callable[[], None]) -> None:
        """Call `listener` each time Redis becomes reachable again."""
        self._up_listeners.append(listener)

    def went_up(self) -> None:
        self.available = True
        for listener in self._up_listeners:
            listener()

    def went_down(self) -> None:
        self.available = False

    async def close(self) -> None:
        for client in (self._client, self._limits_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._limits_client = None
        self.available = False


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait until each has stopped (whatever it raised)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

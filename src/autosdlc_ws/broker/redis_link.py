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

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisClusterException, RedisError

from autosdlc_ws.broker import redis_scripts
from autosdlc_ws.broker.redis_target import CommandClient, RedisTarget, target_for
from autosdlc_ws.broker.urls import redact_url

#: Failures that mean "Redis cannot be reached or used right now" (on a cluster
#: also: no node reachable, a slot not served during a failover).
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError, TimeoutError)

LOG_SCRIPTS = ("PUBLISH", "HEAD", "TRIM", "REMEMBER_IDS", "SNAPSHOT", "NEW_EPOCH")
LIMIT_SCRIPTS = ("ACQUIRE_SLOT", "REFRESH_SLOTS", "TAKE_TOKENS")


class _Clients:
    """The clients and scripts one process opens to one Redis (or cluster),
    shared by a link and its partition views."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.command: CommandClient | None = None
        self.limits: CommandClient | None = None
        self.scripts: dict[str, AsyncScript] = {}


class RedisLink:
    def __init__(self, url: str, *, prefix: str = "{autosdlc}:", connect_timeout_s: float = 1.0,
                 command_timeout_s: float = 5.0, max_connections: int = 64,
                 limit_timeout_s: float = 1.0, target: RedisTarget | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.limit_timeout_s = limit_timeout_s
        self._max_connections = max_connections
        self.log_keys = [f"{prefix}epoch", f"{prefix}seq", f"{prefix}log", f"{prefix}ids",
                         f"{prefix}lv:order", f"{prefix}lv:val", f"{prefix}lv:tags", f"{prefix}lv:idx"]
        self._clients = _Clients(target or target_for(url))
        self._owner = True  # closes the clients (a partition view does not)
        self._views: list[RedisLink] = []
        self._parent: RedisLink | None = None
        self._available = False
        #: A view whose reader runs (a partition a worker does not read says nothing).
        self.watched = False
        self._up_listeners: list[Callable[[], None]] = []

    @property
    def target(self) -> RedisTarget:
        return self._clients.target

    @property
    def sharded(self) -> bool:
        """Shard channels (Redis Cluster): SSUBSCRIBE, and SPUBLISH in the scripts."""
        return self._clients.target.sharded

    @property
    def available(self) -> bool:
        """False while the live reader is cut off from Redis. A link with views
        (a partitioned log's shared link) is reachable while every view whose
        reader runs is."""
        if self._views:
            return all(v._available for v in self._views if v.watched)
        return self._available

    def view(self, prefix: str) -> RedisLink:
        """The same clients under another key prefix, with reachability of its own:
        one partition of a partitioned log (`broker.partitioned_log`)."""
        other = RedisLink(self.url, prefix=prefix, connect_timeout_s=self.connect_timeout_s,
                          command_timeout_s=self.command_timeout_s, max_connections=self._max_connections,
                          limit_timeout_s=self.limit_timeout_s, target=self.target)
        other._clients = self._clients
        other._owner = False
        other._parent = self
        self._views.append(other)
        return other

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)

    def client(self) -> CommandClient:
        """The command client: a blocking pool with retries (publishing is
        idempotent, ids are deduplicated in the script, so a retried call never
        appends an event twice). Blocking: a burst of commands (1,000 clients
        connecting at once, each saving its session) waits for a free
        connection instead of failing."""
        clients = self._clients
        if clients.command is None:
            clients.command = clients.target.command_client(
                max_connections=self._max_connections, timeout_s=self.command_timeout_s,
                connect_timeout_s=self.connect_timeout_s, retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2))
            scripts = redis_scripts.log_scripts(sharded=self.sharded)
            for name in LOG_SCRIPTS:
                clients.scripts[name] = clients.command.register_script(scripts[name])
        return clients.command

    def limits_client(self) -> CommandClient:
        """The client of the limit calls: no retries and short timeouts, since a
        publish or an upgrade waits for it; when Redis does not answer at once
        the decision is taken locally instead."""
        clients = self._clients
        if clients.limits is None:
            clients.limits = clients.target.command_client(
                max_connections=self._max_connections, timeout_s=self.limit_timeout_s,
                connect_timeout_s=self.limit_timeout_s, retry=Retry(NoBackoff(), 0))
            for name in LIMIT_SCRIPTS:
                clients.scripts[name] = clients.limits.register_script(getattr(redis_scripts, name))
        return clients.limits

    async def subscriber(self, channel: str) -> Redis:
        """A client for one Pub/Sub reader attempt on `channel`: no retries, the
        reader reconnects itself."""
        return await self._clients.target.subscriber(channel, connect_timeout_s=self.connect_timeout_s,
                                                     timeout_s=self.command_timeout_s)

    async def log_script(self, name: str, args: Sequence[str | bytes | int | float]) -> Any:
        """Run one of the log's scripts on its keys (the first argument is a fresh
        random epoch, used when the log has none)."""
        self.client()
        return await self._clients.scripts[name](keys=self.log_keys, args=[os.urandom(8).hex(), *args])

    async def limit_script(self, name: str, keys: Sequence[str],
                           args: Sequence[str | bytes | int | float]) -> Any:
        self.limits_client()
        return await asyncio.wait_for(self._clients.scripts[name](keys=keys, args=args), self.limit_timeout_s)

    async def limit_call(self, call: Any) -> Any:
        return await asyncio.wait_for(call, self.limit_timeout_s)

    # --- reachability ----------------------------------------------------------------

    def on_up(self, listener: Callable[[], None]) -> None:
        """Call `listener` each time Redis becomes reachable again."""
        self._up_listeners.append(listener)

    def went_up(self) -> None:
        parent_was = self._parent.available if self._parent is not None else True
        self._available = self.watched = True
        for listener in self._up_listeners:
            listener()
        if self._parent is not None and not parent_was and self._parent.available:
            self._parent.went_up()

    def went_down(self) -> None:
        self._available = False
        self.watched = True

    def unwatched(self) -> None:
        """This view's reader stopped: its reachability no longer counts."""
        parent_was = self._parent.available if self._parent is not None else True
        self._available = self.watched = False
        if self._parent is not None and not parent_was and self._parent.available:
            self._parent.went_up()

    async def close(self) -> None:
        self._available = False
        if not self._owner:
            return
        clients = self._clients
        for client in (clients.command, clients.limits):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        clients.command = clients.limits = None
        await clients.target.close()


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait until each has stopped (whatever it raised)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

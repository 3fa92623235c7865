"""Where the Redis modules connect: one server (`redis://`) or a Redis Cluster
(`redis-cluster://host:port[,host:port...]`).

The log, sessions, limits and control channel ask a target for clients and
never care which kind it is: commands go through a `redis.asyncio.Redis`
(one server) or a `RedisCluster` (which routes each command, script and
pipeline by its keys' slot and follows MOVED/ASK redirects itself), and a
Pub/Sub reader gets a plain connection to whichever node must carry its
channel. On a cluster that is the owner of the channel's slot, looked up
again (slot table refreshed) at every reconnect, with sharded Pub/Sub
(`sharded`: `SSUBSCRIBE`/`SPUBLISH`), so a partition's traffic stays on its
own node instead of crossing the whole cluster bus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import SlotNotCoveredError

from autosdlc_ws.broker.urls import redact_url
from autosdlc_ws.errors import ConfigError

#: `Redis` or `RedisCluster`: the commands the Redis modules use exist on both.
CommandClient = Any


class RedisTarget(Protocol):
    url: str
    #: Channels are shard channels (`SSUBSCRIBE`, `SPUBLISH` in the scripts).
    sharded: bool

    def command_client(self, *, max_connections: int, timeout_s: float, connect_timeout_s: float,
                       retry: Retry, blocking: bool = True) -> CommandClient:
        """A new client for commands and scripts (the caller closes it)."""

    async def subscriber(self, channel: str, *, connect_timeout_s: float, timeout_s: float) -> Redis:
        """A client whose Pub/Sub connection can carry `channel`, for one reader
        attempt (the previous one for `channel`, if any, is closed)."""

    async def close(self) -> None: ...


class ServerTarget:
    """One Redis server: every channel on it, every key on it."""

    sharded = False

    def __init__(self, url: str) -> None:
        self.url = url
        self._subscribers: dict[str, Redis] = {}

    def command_client(self, *, max_connections: int, timeout_s: float, connect_timeout_s: float,
                       retry: Retry, blocking: bool = True) -> CommandClient:
        if not blocking:
            return Redis.from_url(self.url, socket_connect_timeout=connect_timeout_s,
                                  socket_timeout=timeout_s, retry=retry)
        pool = BlockingConnectionPool.from_url(
            self.url, max_connections=max_connections, timeout=timeout_s,
            socket_connect_timeout=connect_timeout_s, socket_timeout=timeout_s, retry=retry)
        return Redis.from_pool(pool)

    async def subscriber(self, channel: str, *, connect_timeout_s: float, timeout_s: float) -> Redis:
        client = self._subscribers.get(channel)
        if client is None:  # one client per reader; its pool re-makes the connection
            client = self._subscribers[channel] = Redis.from_url(
                self.url, socket_connect_timeout=connect_timeout_s, socket_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0))
        return client

    async def close(self) -> None:
        subscribers, self._subscribers = self._subscribers, {}
        await close_quietly(subscribers.values())


async def close_quietly(clients: Iterable[Redis | RedisCluster | None]) -> None:
    """Close every client, whatever fails (shutting down, or the server is gone)."""
    for client in clients:
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """`redis-cluster://[user:pass@]host:port[,host:port...]` -> seeds and client options."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("redis-cluster", "rediss-cluster"):
        raise ConfigError(f"broker {redact_url(url)!r}: expected redis-cluster://host:port[,host:port...]")
    credentials, _, hosts = parts.netloc.rpartition("@")
    options: dict[str, Any] = {}
    if credentials:
        user, _, password = credentials.partition(":")
        options["username"] = unquote(user) or None
        options["password"] = unquote(password) or None
    if parts.scheme.lower() == "rediss-cluster":
        options["ssl"] = True
    seeds = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"broker {redact_url(url)!r}: {item.strip()!r} is not host:port")
        seeds.append((host.strip("[]"), int(port)))
    if not seeds:
        raise ConfigError(f"broker {redact_url(url)!r}: name at least one node (host:port)")
    return seeds, options


class QueueingCluster(RedisCluster):
    """A `RedisCluster` whose commands wait for a connection, as `BlockingConnectionPool` does.

    redis-py's cluster client raises `MaxConnectionsError` as soon as a node
    has `max_connections` commands in flight, which the Redis modules would
    take for an outage: a gateway where tens of connections open at once (each
    reads the head of every partition) closed them with 1013. At most
    `max_connections` commands of this client are in flight (fewer per node),
    the others queue. Pipelines take their connections elsewhere; the limits'
    and control channel's pipelines are few and short."""

    def __init__(self, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._in_flight = asyncio.Semaphore(max_connections)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._in_flight:
            try:
                return await super().execute_command(*args, **kwargs)
            except AttributeError:
                # redis-py 8.1: a command can meet a node connection still being set
                # up (its `_writer` is None) and fail with AttributeError. Transient:
                # try once more, then report it as what it is, a connection failure.
                pass
            try:
                return await super().execute_command(*args, **kwargs)
            except AttributeError as exc:
                raise RedisConnectionError(f"redis cluster: a node connection was not ready ({exc})") from exc


class ClusterTarget:
    """A Redis Cluster 7+: any reachable seed finds the others."""

    sharded = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.seeds, self._options = cluster_seeds(url)
        self._topology: RedisCluster | None = None  # slot table for the readers
        self._topology_lock = asyncio.Lock()  # the readers of all partitions start at once
        self._subscribers: dict[str, Redis] = {}

    def command_client(self, *, max_connections: int, timeout_s: float, connect_timeout_s: float,
                       retry: Retry, blocking: bool = True) -> CommandClient:
        # MOVED/ASK and a dead node are followed by the cluster client itself
        # (slot table refreshed, the command re-sent to the new owner).
        return QueueingCluster(startup_nodes=[ClusterNode(h, p) for h, p in self.seeds],
                               max_connections=max_connections, socket_timeout=timeout_s,
                               socket_connect_timeout=connect_timeout_s, retry=retry, **self._options)

    async def subscriber(self, channel: str, *, connect_timeout_s: float, timeout_s: float) -> Redis:
        old = self._subscribers.pop(channel, None)
        await close_quietly([old])
        async with self._topology_lock:
            if self._topology is None:
                topology = self.command_client(max_connections=4, timeout_s=timeout_s,
                                               connect_timeout_s=connect_timeout_s, retry=Retry(NoBackoff(), 0))
                await topology.initialize()
                self._topology = topology
            elif old is not None:  # a reconnect: the slot may have moved (failover, resharding)
                await self._topology.nodes_manager.initialize()
            node = self._topology.get_node_from_key(channel)
        if node is None:
            raise SlotNotCoveredError(f"no node serves the slot of {channel!r}")
        client = Redis(host=node.host, port=int(node.port), socket_connect_timeout=connect_timeout_s,
                       socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
                       **self._options)
        self._subscribers[channel] = client
        return client

    async def close(self) -> None:
        subscribers, self._subscribers = self._subscribers, {}
        topology, self._topology = self._topology, None
        await close_quietly([*subscribers.values(), topology])


def target_for(url: str) -> ServerTarget | ClusterTarget:
    return ClusterTarget(url) if url.lower().startswith(("redis-cluster://", "rediss-cluster://")) \
        else ServerTarget(url)

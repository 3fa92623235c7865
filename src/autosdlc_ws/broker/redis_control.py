"""The control channel over Redis: a registry of nodes and commands over Pub/Sub.

Layout (under the broker's `prefix`, default `{autosdlc}:`, whose hash tag
keeps every key in one Cluster slot):

    <prefix>nodes                 hash: node id -> NodeInfo JSON
    <prefix>nodes:seen            sorted set: node id -> last heartbeat (Redis ms)
    <prefix>lease:<name>          string: holder node id, with a PX expiry
    <prefix>control:node:<id>     channel: commands for one node
    <prefix>control:all           channel: commands for every node
    <prefix>control:reply:<id>    channel: answers to the requests of node <id>

Why a hash plus a sorted set rather than one key per node with a PX expiry:
listing is one script call (no SCAN over the keyspace, no cross-slot
reads), and liveness is judged on Redis's clock (`TIME` in the script), so a
host whose clock is off can neither make a live node look dead nor keep a
dead one listed. The script prunes entries older than the ttl on every read
(the same rule as `control.is_alive`), so a node killed by SIGKILL, which
never deregisters, still leaves the list within `ENTRY_TTL_S`.

A command is one JSON message `{"rid", "from", "cmd", "args"}` on the
target's channel (or the broadcast channel); each receiver answers with
`{"rid", "node", "reply"}` or `{"rid", "node", "error"}` on the requester's
reply channel, where the pending request with that `rid` collects it. A
node answers its own commands by a direct call, so it keeps answering for
itself while Redis is away.

Outage: a failed registry call or a lost Pub/Sub connection marks the
channel unreachable. Until the reader has resubscribed and re-registered
(Redis may have restarted empty), `nodes()` lists this node alone,
`broadcast()` answers locally and names every node it last knew as missing,
`request()` to another node raises `NodeUnavailable`, and `acquire_lease`
fails open (this node acts on its own, since it cannot tell the others).
Connections are this channel's own, never the event broker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from autosdlc_ws.broker.control import (
    DEFAULT_TIMEOUT_S,
    ENTRY_TTL_S,
    HEARTBEAT_S,
    BroadcastResult,
    CommandFailed,
    CommandHandler,
    ControlChannel,
    NodeInfo,
    NodeUnavailable,
    answer,
    collect_broadcast,
)
from autosdlc_ws.broker.redis_link import REDIS_FAILURES
from autosdlc_ws.broker.redis_pubsub import ReaderTimings, read_forever
from autosdlc_ws.broker.redis_target import CommandClient, RedisTarget, target_for
from autosdlc_ws.broker.urls import redact_url

log = logging.getLogger("autosdlc_ws.broker.control")

#: A served command gets this long at most: the requester stopped waiting long
#: before, so the bound only keeps a stuck handler from piling up tasks.
SERVE_TIMEOUT_S = 10.0

_TIME = r"""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS nodes, seen; ARGV ttl_ms, [node id, entry JSON]. Writes the entry when
#: given, prunes entries at least ttl old, returns {now, id, seen, json, ...}.
REGISTRY = _TIME + r"""
if ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[2], now, ARGV[2])
end
local cutoff = now - tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)) do
  redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
local out = {now}
local live = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #live, 2 do
  local body = redis.call('HGET', KEYS[1], live[i])
  if body then
    table.insert(out, live[i]); table.insert(out, live[i + 1]); table.insert(out, body)
  end
end
return out
"""

#: KEYS lease; ARGV holder, ttl_ms. 1 when held by `holder` afterwards (taken or renewed).
ACQUIRE_LEASE = r"""
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]); return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

#: KEYS lease; ARGV holder. Deletes the lease only if `holder` still has it.
RELEASE_LEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class _Pending:
    """Answers collected for one request id."""

    expected: set[str]
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, node_id: str, message: Mapping[str, Any]) -> None:
        reply = message.get("reply")
        if isinstance(reply, dict):
            self.replies[node_id] = reply
        else:
            self.errors[node_id] = str(message.get("error", "malformed answer"))
        if self.expected <= self.replies.keys() | self.errors.keys():
            self.done.set()


class RedisControlChannel(ControlChannel):
    def __init__(self, url: str, *, prefix: str = "{autosdlc}:", heartbeat_s: float = HEARTBEAT_S,
                 ttl_s: float = ENTRY_TTL_S, connect_timeout_s: float = 1.0, command_timeout_s: float = 1.0,
                 reconnect_min_s: float = 0.05, reconnect_max_s: float = 5.0, idle_ping_s: float = 2.0,
                 target: RedisTarget | None = None) -> None:
        if not 0 < heartbeat_s < ttl_s:
            raise ValueError("heartbeat_s must be positive and shorter than ttl_s")
        super().__init__()
        self.url = url
        self.prefix = prefix
        #: On Redis Cluster every key and channel here shares the prefix's hash tag,
        #: so one node holds the registry and carries the (sharded) commands.
        self._target = target or target_for(url)
        self._heartbeat_s = heartbeat_s
        self._ttl_ms = int(ttl_s * 1000)
        self._connect_timeout_s = connect_timeout_s
        self._command_timeout_s = command_timeout_s
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._idle_ping_s = idle_ping_s
        self._registry_keys = [f"{prefix}nodes", f"{prefix}nodes:seen"]
        self._all_channel = f"{prefix}control:all"
        self._client: CommandClient | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._serving: set[asyncio.Task[None]] = set()
        self._pending: dict[str, _Pending] = {}
        self._leases: set[str] = set()
        self._known_peers: list[str] = []  # other live nodes at the last successful listing
        self._pubsub_up = False
        self._registry_ok = False
        self._ever_up = False
        self._closed = False
        self._subscribed: asyncio.Event | None = None
        #: Times the reader resubscribed after losing Redis (for tests and logs).
        self.reconnects = 0

    # --- identity and state ------------------------------------------------------------------

    @property
    def reachable(self) -> bool:
        return self._pubsub_up and self._registry_ok

    def unreachable_peers(self) -> list[str]:
        return [] if self.reachable else list(self._known_peers)

    def _node_channel(self, node_id: str) -> str:
        return f"{self.prefix}control:node:{node_id}"

    def _reply_channel(self, node_id: str) -> str:
        return f"{self.prefix}control:reply:{node_id}"

    def _local_entry(self) -> NodeInfo:
        return self._entry_at(int(time.time() * 1000))

    def _redis(self) -> CommandClient:
        if self._client is None:
            # No retries: every call is bounded by the caller's timeout, and an
            # unanswered call is an outage, answered locally.
            self._client = self._target.command_client(
                max_connections=8, timeout_s=self._command_timeout_s, connect_timeout_s=self._connect_timeout_s,
                retry=Retry(NoBackoff(), 0), blocking=False)
            for name, source in (("REGISTRY", REGISTRY), ("ACQUIRE_LEASE", ACQUIRE_LEASE),
                                 ("RELEASE_LEASE", RELEASE_LEASE)):
                self._scripts[name] = self._client.register_script(source)
        return self._client

    async def _bounded(self, call: Any, timeout_s: float | None = None) -> Any:
        """`call` within `timeout_s` (the command timeout by default); a deadline
        already past still gets a millisecond rather than none."""
        limit = self._command_timeout_s if timeout_s is None else timeout_s
        return await asyncio.wait_for(call, max(0.001, limit))

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, node: NodeInfo, handler: CommandHandler) -> None:
        """Register and subscribe; waits up to the connect timeout for Redis, then
        carries on unreachable (the reader keeps retrying in the background)."""
        self._adopt(node, handler)
        self._closed = False
        self._subscribed = asyncio.Event()
        self._redis()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_forever(), name="redis-control-reader"),
                       loop.create_task(self._beat_forever(), name="redis-control-heartbeat")]
        try:
            await asyncio.wait_for(self._subscribed.wait(), self._connect_timeout_s * 2)
        except TimeoutError:
            log.warning("control channel: redis %s not reachable at start; answering locally",
                        redact_url(self.url))

    async def close(self) -> None:
        self._closed = True
        tasks, self._tasks = self._tasks + list(self._serving), []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._node is not None and self._client is not None and self._registry_ok:
            with contextlib.suppress(*REDIS_FAILURES):
                pipe = self._client.pipeline(transaction=not self._target.sharded)
                pipe.hdel(self._registry_keys[0], self._node.node_id)
                pipe.zrem(self._registry_keys[1], self._node.node_id)
                await self._bounded(pipe.execute())
                for name in sorted(self._leases):
                    await self._bounded(self._scripts["RELEASE_LEASE"](
                        keys=[self._lease_key(name)], args=[self._node.node_id]))
        self._leases.clear()
        for pending in self._pending.values():
            pending.done.set()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        await self._target.close()
        self._client = None
        self._pubsub_up = self._registry_ok = False

    # --- registry -------------------------------------------------------------------------------

    def _parse_listing(self, raw: list[Any]) -> list[NodeInfo]:
        nodes = []
        for i in range(1, len(raw), 3):
            try:
                entry = NodeInfo.from_json(orjson.loads(raw[i + 2]))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("control channel: unreadable registry entry %r: %s", raw[i], exc)
                continue
            nodes.append(entry.seen(int(float(raw[i + 1])), entry.connections, entry.gauges))
        nodes.sort(key=lambda n: n.node_id)
        self._known_peers = [n.node_id for n in nodes if n.node_id != self.node_id]
        return nodes

    async def _registry(self, *own: str, timeout_s: float | None = None) -> list[NodeInfo]:
        self._redis()
        raw = await self._bounded(self._scripts["REGISTRY"](
            keys=self._registry_keys, args=[self._ttl_ms, *own]), timeout_s)
        self._registry_ok = True
        return self._parse_listing(list(raw))

    async def heartbeat(self) -> None:
        """Write this node's entry (and refresh the known peers); raises on failure."""
        entry = self._local_entry()
        await self._registry(entry.node_id, orjson.dumps(entry.to_json()).decode())

    async def _beat_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._heartbeat_s)
            try:
                await self.heartbeat()
            except REDIS_FAILURES as exc:
                self._unreachable("heartbeat", exc)

    def _unreachable(self, what: str, exc: BaseException) -> None:
        if self._registry_ok and not self._closed:
            log.warning("control channel: redis unreachable (%s: %s: %s); answering locally",
                        what, type(exc).__name__, exc)
        self._registry_ok = False

    async def nodes(self) -> list[NodeInfo]:
        return await self._nodes(self._command_timeout_s)

    async def _nodes(self, timeout_s: float) -> list[NodeInfo]:
        if self.reachable:
            try:
                return await self._registry(timeout_s=timeout_s)
            except REDIS_FAILURES as exc:
                self._unreachable("listing", exc)
        return [self._local_entry()]

    # --- commands ---------------------------------------------------------------------------------

    async def request(self, node_id: str, command: str, args: Mapping[str, Any],
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        assert self._handler is not None
        if node_id == self.node_id:
            return await answer(node_id, self._handler, command, args, timeout_s)
        if not self.reachable:
            raise NodeUnavailable(node_id, "the control channel cannot reach redis")
        deadline = time.monotonic() + timeout_s
        rid, pending = self._expect({node_id})
        try:
            receivers = await self._send(self._node_channel(node_id), rid, command, args,
                                         deadline - time.monotonic())
            # No subscriber on this Redis: unknown or dead, unless the registry still lists
            # it (on Redis Cluster PUBLISH counts only the subscribers of one shard).
            if not receivers and node_id not in {n.node_id for n in await self._nodes(
                    max(0.001, deadline - time.monotonic()))}:
                raise NodeUnavailable(node_id, "no such live node")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.done.wait(), max(0.0, deadline - time.monotonic()))
        except REDIS_FAILURES as exc:
            self._unreachable("request", exc)
            raise NodeUnavailable(node_id, f"redis: {type(exc).__name__}: {exc}") from exc
        finally:
            self._pending.pop(rid, None)
        if node_id in pending.replies:
            return pending.replies[node_id]
        if node_id in pending.errors:
            raise CommandFailed(node_id, pending.errors[node_id])
        raise NodeUnavailable(node_id, f"no answer to {command!r} within {timeout_s:g} s")

    async def broadcast(self, command: str, args: Mapping[str, Any],
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> BroadcastResult:
        assert self._handler is not None
        deadline = time.monotonic() + timeout_s
        me = self.node_id
        local = asyncio.ensure_future(answer(me, self._handler, command, args, timeout_s))
        try:
            asked, replies, reachable = await self._ask_peers(command, args, deadline)
            with contextlib.suppress(Exception):
                replies[me] = await local
        finally:
            local.cancel()
        return collect_broadcast(asked, replies, reachable=reachable)

    async def _ask_peers(self, command: str, args: Mapping[str, Any], deadline: float
                         ) -> tuple[list[str], dict[str, dict[str, Any]], bool]:
        """(nodes asked, their replies, registry reachable) of the remote part of a broadcast."""
        me = self.node_id
        asked = [n.node_id for n in await self._nodes(min(self._command_timeout_s, deadline - time.monotonic()))]
        if not self.reachable:
            return [me, *self.unreachable_peers()], {}, False
        peers = {node_id for node_id in asked if node_id != me}
        if not peers:
            return asked, {}, True
        rid, pending = self._expect(peers)
        try:
            await self._send(self._all_channel, rid, command, args, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.done.wait(), max(0.0, deadline - time.monotonic()))
        except REDIS_FAILURES as exc:
            self._unreachable("broadcast", exc)
        finally:
            self._pending.pop(rid, None)
        return asked, dict(pending.replies), True

    def _expect(self, nodes: set[str]) -> tuple[str, _Pending]:
        rid = uuid.uuid4().hex
        pending = self._pending[rid] = _Pending(nodes)
        return rid, pending

    async def _send(self, channel: str, rid: str, command: str, args: Mapping[str, Any],
                    timeout_s: float) -> int:
        body = orjson.dumps({"rid": rid, "from": self.node_id, "cmd": command, "args": dict(args)})
        return int(await self._bounded(self._publish(channel, body), timeout_s))

    def _publish(self, channel: str, body: bytes) -> Any:
        client = self._redis()
        return client.spublish(channel, body) if self._target.sharded else client.publish(channel, body)

    async def _on_message(self, channel: str, data: bytes) -> None:
        try:
            message = orjson.loads(data)
            if not isinstance(message, dict):
                raise ValueError("not an object")
            if channel == self._reply_channel(self.node_id):
                pending = self._pending.get(str(message.get("rid")))
                if pending is not None:
                    pending.add(str(message["node"]), message)
                return
            if message.get("from") == self.node_id:
                return  # our own broadcast: answered by a direct call
            task = asyncio.get_running_loop().create_task(self._serve(message))
        except (ValueError, KeyError) as exc:
            log.warning("control channel: dropped malformed message on %s: %s", channel, exc)
            return
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, message: dict[str, Any]) -> None:
        assert self._handler is not None
        answer_to: dict[str, Any] = {"rid": message.get("rid"), "node": self.node_id}
        args = message.get("args")
        try:
            answer_to["reply"] = await answer(self.node_id, self._handler, str(message.get("cmd")),
                                              args if isinstance(args, dict) else {}, SERVE_TIMEOUT_S)
        except NodeUnavailable as exc:
            answer_to["error"] = exc.reason
        try:
            await self._bounded(self._publish(self._reply_channel(str(message.get("from"))),
                                              orjson.dumps(answer_to)))
        except REDIS_FAILURES as exc:
            log.debug("control channel: could not answer %s: %s", message.get("cmd"), exc)

    # --- the reader -------------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        channels = [self._node_channel(self.node_id), self._all_channel, self._reply_channel(self.node_id)]
        timings = ReaderTimings(self._reconnect[0], self._reconnect[1], self._idle_ping_s, self._command_timeout_s)

        async def connect() -> Redis:
            return await self._target.subscriber(self._all_channel, connect_timeout_s=self._connect_timeout_s,
                                                 timeout_s=self._command_timeout_s)

        await read_forever(connect, channels, self._on_message, on_up=self._reader_up,
                           on_down=self._reader_down, running=lambda: not self._closed, timings=timings,
                           name="control channel", sharded=self._target.sharded)

    async def _reader_up(self) -> None:
        """Subscribed (again): register before answering for the deployment, since a
        Redis that restarted empty has forgotten this node."""
        await self.heartbeat()
        if self._ever_up:
            self.reconnects += 1
            log.info("control channel: redis reachable again; node %s re-registered", self.node_id)
        self._ever_up = self._pubsub_up = True
        if self._subscribed is not None:
            self._subscribed.set()

    def _reader_down(self, exc: BaseException) -> None:
        self._pubsub_up = False
        self._unreachable("pub/sub", exc)

    # --- leases -----------------------------------------------------------------------------------

    def _lease_key(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    async def acquire_lease(self, name: str, ttl_s: float) -> bool:
        if self.reachable:
            try:
                held = await self._bounded(self._scripts["ACQUIRE_LEASE"](
                    keys=[self._lease_key(name)], args=[self.node_id, max(1, int(ttl_s * 1000))]))
            except REDIS_FAILURES as exc:
                self._unreachable("lease", exc)
            else:
                if int(held):
                    self._leases.add(name)
                    return True
                self._leases.discard(name)
                return False
        return True  # fail open: the other nodes cannot be told, so this one acts alone

    async def release_lease(self, name: str) -> None:
        self._leases.discard(name)
        if not self.reachable:
            return  # it lapses on its own within its ttl
        try:
            await self._bounded(self._scripts["RELEASE_LEASE"](keys=[self._lease_key(name)], args=[self.node_id]))
        except REDIS_FAILURES as exc:
            self._unreachable("lease", exc)

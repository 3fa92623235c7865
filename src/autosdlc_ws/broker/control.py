"""The control channel between gateway processes: a node registry and commands.

Every gateway process of a deployment (workers and hosts sharing one broker)
is a *node*. Through its `ControlChannel` a node

- registers itself and heartbeats, so every node can list the live ones
  (`nodes()`); a node that stops heartbeating, even killed by SIGKILL, drops
  out once its entry is older than `ENTRY_TTL_S`;
- answers commands addressed to it or to every node, through the handler
  given to `start()`, and asks other nodes (`request`, `broadcast`);
- holds named leases (`acquire_lease`), so a deployment-wide duty such as
  "raise one system_alert for this condition" falls to exactly one node.

Answers are dicts (JSON objects). Nothing here waits past the caller's
timeout: a node that does not answer in time is *missing* from a broadcast
(the admin API then says `"partial": true` and names it) and makes `request`
raise `NodeUnavailable`. When the shared registry itself is unreachable the
channel answers for this node alone and lists every other node it last knew
as missing; no exception reaches the caller of `nodes()` or `broadcast()`.

Implementations: `memory_control.MemoryControlChannel` (in-process, one hub
shared by any number of nodes) and `redis_control.RedisControlChannel`. The
liveness rule and the merging of broadcast replies are pure functions below,
tested with plain values.

    GatewayError
    └── NodeUnavailable          a node cannot be asked or did not answer in time
        └── CommandFailed        the node answered, with an error
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from autosdlc_ws.errors import GatewayError

#: How often a node rewrites its registry entry. Three beats fit in one entry
#: lifetime, so a node survives two lost or late heartbeats (a GC pause, a slow
#: Redis) without flapping out of the list.
HEARTBEAT_S = 3.0
#: Age at which an entry counts as dead. A killed node's last heartbeat came
#: before its death, so it leaves the list at most this long after it died:
#: 10 s, inside the contract's 15 s bound with room for a slow reader.
ENTRY_TTL_S = 10.0
#: Default bound on one command round trip; the contract asks admin answers
#: (a DELETE, a logging change) to take effect within 2 s.
DEFAULT_TIMEOUT_S = 1.5

#: `handler(command, args)` answers one command addressed to this node.
CommandHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class NodeUnavailable(GatewayError):
    """A node is unknown, gone, unreachable or did not answer within the timeout."""

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(f"node {node_id}: {reason}")
        self.node_id = node_id
        self.reason = reason


class CommandFailed(NodeUnavailable):
    """The node received the command but its handler raised; `reason` is its message."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One gateway process as the registry knows it (times in epoch milliseconds)."""

    node_id: str
    host: str
    pid: int
    started_at_ms: int
    last_seen_ms: int
    version: str
    connections: int = 0
    gauges: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The contract's camelCase shape (`GET /api/v1/nodes`), plus `gauges`."""
        return {"nodeId": self.node_id, "host": self.host, "pid": self.pid,
                "startedAt": self.started_at_ms, "lastSeen": self.last_seen_ms,
                "connections": self.connections, "version": self.version,
                "gauges": dict(self.gauges)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> NodeInfo:
        return cls(node_id=str(obj["nodeId"]), host=str(obj["host"]), pid=int(obj["pid"]),
                   started_at_ms=int(obj["startedAt"]), last_seen_ms=int(obj["lastSeen"]),
                   version=str(obj["version"]), connections=int(obj.get("connections", 0)),
                   gauges={str(k): float(v) for k, v in (obj.get("gauges") or {}).items()})

    def seen(self, now_ms: int, connections: int, gauges: Mapping[str, float]) -> NodeInfo:
        """This entry as the next heartbeat writes it."""
        return replace(self, last_seen_ms=now_ms, connections=connections, gauges=dict(gauges))


def this_process(version: str, now_ms: int) -> NodeInfo:
    """The entry of the calling process: host and pid say where it runs (for an
    operator); a random suffix keeps ids unique when a pid is reused."""
    host, pid = socket.gethostname(), os.getpid()
    return NodeInfo(node_id=f"{host}:{pid}:{uuid.uuid4().hex[:6]}", host=host, pid=pid,
                    started_at_ms=now_ms, last_seen_ms=now_ms, version=version)


@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """Every node's answer to one broadcast.

    `missing`: nodes that were asked (or known before the registry became
    unreachable) and gave no answer in time. `reachable`: False when the
    registry could not be reached, so only this node was asked."""

    replies: dict[str, dict[str, Any]]
    missing: list[str]
    reachable: bool = True

    @property
    def partial(self) -> bool:
        return bool(self.missing) or not self.reachable


# --- pure rules ---------------------------------------------------------------------------


def is_alive(last_seen_ms: int, now_ms: int, ttl_ms: int) -> bool:
    """An entry is alive while it is younger than the ttl (the Redis script uses the same rule)."""
    return now_ms - last_seen_ms < ttl_ms


def split_live(entries: Iterable[NodeInfo], now_ms: int, ttl_ms: int) -> tuple[list[NodeInfo], list[str]]:
    """(live entries sorted by node id, ids of the dead ones to prune)."""
    live: list[NodeInfo] = []
    dead: list[str] = []
    for entry in entries:
        if is_alive(entry.last_seen_ms, now_ms, ttl_ms):
            live.append(entry)
        else:
            dead.append(entry.node_id)
    live.sort(key=lambda n: n.node_id)
    return live, sorted(dead)


def collect_broadcast(asked: Iterable[str], replies: Mapping[str, dict[str, Any]], *,
                      reachable: bool = True) -> BroadcastResult:
    """The result of a broadcast: who answered, and who was asked but did not.

    A reply from a node that was not asked (one that registered during the
    broadcast) is kept: it is a real answer."""
    missing = sorted(set(asked) - set(replies))
    return BroadcastResult(dict(sorted(replies.items())), missing, reachable)


async def answer(node_id: str, handler: CommandHandler, command: str, args: Mapping[str, Any],
                 timeout_s: float) -> dict[str, Any]:
    """Run `handler` for one command with the caller's bound, mapping failures to this
    module's exceptions (the handler gets its own copy of `args`)."""
    try:
        reply = await asyncio.wait_for(handler(command, dict(args)), timeout_s)
    except TimeoutError:
        raise NodeUnavailable(node_id, f"no answer to {command!r} within {timeout_s:g} s") from None
    except Exception as exc:
        raise CommandFailed(node_id, f"{command!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(reply, dict):
        raise CommandFailed(node_id, f"{command!r} answered {type(reply).__name__}, not an object")
    return reply


# --- the interface ------------------------------------------------------------------------


class ControlChannel(abc.ABC):
    """How this node sees and talks to the other gateway processes of its deployment.

    The base class keeps what every implementation knows about this node
    (its entry, its handler, what the next heartbeat carries)."""

    def __init__(self) -> None:
        self._node: NodeInfo | None = None
        self._handler: CommandHandler | None = None
        self._connections = 0
        self._gauges: dict[str, float] = {}

    @property
    def node_id(self) -> str:
        """This node's id (valid after `start`)."""
        if self._node is None:
            raise RuntimeError("control channel not started")
        return self._node.node_id

    def update(self, connections: int, gauges: Mapping[str, float]) -> None:
        """What the next heartbeat carries. No I/O: cheap enough for any caller."""
        self._connections, self._gauges = connections, dict(gauges)

    def unreachable_peers(self) -> list[str]:
        """Other nodes last known alive that cannot be asked because the registry is
        out of reach (empty while it is reachable)."""
        return []

    def _adopt(self, node: NodeInfo, handler: CommandHandler) -> None:
        """Take on `node` and `handler` at start."""
        self._node, self._handler = node, handler
        self.update(node.connections, node.gauges)

    def _entry_at(self, now_ms: int) -> NodeInfo:
        """This node's entry as a heartbeat at `now_ms` writes it."""
        if self._node is None:
            raise RuntimeError("control channel not started")
        self._node = self._node.seen(now_ms, self._connections, self._gauges)
        return self._node

    @property
    @abc.abstractmethod
    def reachable(self) -> bool:
        """False while the shared registry cannot be reached (answers are local only)."""

    @abc.abstractmethod
    async def start(self, node: NodeInfo, handler: CommandHandler) -> None:
        """Register `node`, start heartbeating, and answer commands with `handler`."""

    @abc.abstractmethod
    async def nodes(self) -> list[NodeInfo]:
        """The live nodes, sorted by id, this one included; dead entries are pruned."""

    @abc.abstractmethod
    async def request(self, node_id: str, command: str, args: Mapping[str, Any],
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """One node's answer. Raises `NodeUnavailable` (unknown, gone, timeout) or
        `CommandFailed` (its handler raised)."""

    @abc.abstractmethod
    async def broadcast(self, command: str, args: Mapping[str, Any],
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> BroadcastResult:
        """Ask every live node, this one included, in parallel; returns within `timeout_s`."""

    @abc.abstractmethod
    async def acquire_lease(self, name: str, ttl_s: float) -> bool:
        """Take or renew the named lease for `ttl_s`; False while another node holds it."""

    @abc.abstractmethod
    async def release_lease(self, name: str) -> None:
        """Give the lease up if this node holds it (another node's lease is left alone)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Remove this node's entry, release its leases and stop answering."""

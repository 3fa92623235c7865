"""The in-process control channel: nodes that share one `MemoryControlHub`.

A gateway on the memory broker makes its own hub and is the one node of its
deployment. Tests share one hub between several channels to get a
multi-node deployment in one process, and inject `now_ms` so that liveness
and lease expiry are tested by moving a clock rather than by sleeping.
Commands are plain coroutine calls on the other channel's handler, under the
same timeout rules as over Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autosdlc_ws.broker.control import (
    DEFAULT_TIMEOUT_S,
    ENTRY_TTL_S,
    HEARTBEAT_S,
    BroadcastResult,
    CommandHandler,
    ControlChannel,
    NodeInfo,
    NodeUnavailable,
    answer,
    collect_broadcast,
    split_live,
)


def _wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class MemoryControlHub:
    """What the nodes of one process share: registry entries, handlers and leases."""

    now_ms: Callable[[], int] = _wall_ms
    entries: dict[str, NodeInfo] = field(default_factory=dict)
    handlers: dict[str, CommandHandler] = field(default_factory=dict)
    #: lease name -> (holder node id, expiry in ms)
    leases: dict[str, tuple[str, int]] = field(default_factory=dict)

    def live(self, ttl_ms: int) -> list[NodeInfo]:
        """Live entries; dead ones are pruned (with their handlers) as they are found."""
        live, dead = split_live(self.entries.values(), self.now_ms(), ttl_ms)
        for node_id in dead:
            self.entries.pop(node_id, None)
            self.handlers.pop(node_id, None)
        return live


class MemoryControlChannel(ControlChannel):
    def __init__(self, hub: MemoryControlHub | None = None, *, heartbeat_s: float = HEARTBEAT_S,
                 ttl_s: float = ENTRY_TTL_S) -> None:
        super().__init__()
        self.hub = hub or MemoryControlHub()
        self._heartbeat_s = heartbeat_s
        self._ttl_ms = int(ttl_s * 1000)
        self._task: asyncio.Task[None] | None = None

    @property
    def reachable(self) -> bool:
        return True  # the hub lives in this process

    async def start(self, node: NodeInfo, handler: CommandHandler) -> None:
        self._adopt(node, handler)
        await self.heartbeat()
        self._task = asyncio.get_running_loop().create_task(self._beat_forever(), name="memory-control")

    async def heartbeat(self) -> None:
        """Write this node's entry now (the loop does it every `heartbeat_s`)."""
        if self._handler is None:
            return
        entry = self._entry_at(self.hub.now_ms())
        self.hub.entries[entry.node_id] = entry
        self.hub.handlers[entry.node_id] = self._handler

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await self.heartbeat()

    async def nodes(self) -> list[NodeInfo]:
        return self.hub.live(self._ttl_ms)

    async def request(self, node_id: str, command: str, args: Mapping[str, Any],
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        self.hub.live(self._ttl_ms)
        handler = self.hub.handlers.get(node_id)
        if handler is None:
            raise NodeUnavailable(node_id, "no such live node")
        return await answer(node_id, handler, command, args, timeout_s)

    async def broadcast(self, command: str, args: Mapping[str, Any],
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> BroadcastResult:
        asked = [n.node_id for n in self.hub.live(self._ttl_ms)]
        handlers = [(node_id, self.hub.handlers[node_id]) for node_id in asked]
        outcomes = await asyncio.gather(
            *(answer(node_id, handler, command, args, timeout_s) for node_id, handler in handlers),
            return_exceptions=True)
        replies = {node_id: outcome for (node_id, _), outcome in zip(handlers, outcomes, strict=True)
                   if isinstance(outcome, dict)}
        return collect_broadcast(asked, replies)

    async def acquire_lease(self, name: str, ttl_s: float) -> bool:
        now = self.hub.now_ms()
        holder = self.hub.leases.get(name)
        if holder is not None and holder[0] != self.node_id and holder[1] > now:
            return False
        self.hub.leases[name] = (self.node_id, now + int(ttl_s * 1000))
        return True

    async def release_lease(self, name: str) -> None:
        holder = self.hub.leases.get(name)
        if holder is not None and holder[0] == self.node_id:
            del self.hub.leases[name]

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._node is None:
            return
        node_id = self._node.node_id
        self.hub.entries.pop(node_id, None)
        self.hub.handlers.pop(node_id, None)
        for name in [n for n, (holder, _) in self.hub.leases.items() if holder == node_id]:
            del self.hub.leases[name]

"""`Backend`: the broker's interfaces bundled for one gateway process.

Built by the factory registered for the broker URL's scheme
(`broker.registry`); the gateway starts it once and closes it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autosdlc_ws.broker.base import EventHandler, EventLog, OutageHandler, SessionStore, SharedLimits


@dataclass(slots=True)
class Backend:
    name: str  # shown by /readyz ("memory", "redis")
    log: EventLog
    sessions: SessionStore
    limits: SharedLimits
    # TODO(control channel): the node registry and commands between gateway
    # processes (cluster-wide admin) are typed here once that interface lands.
    control: Any | None = None

    async def start(self, on_event: EventHandler, on_outage: OutageHandler | None = None) -> None:
        await self.log.start(on_event, on_outage)
        await self.limits.start()

    async def close(self) -> None:
        await self.limits.close()
        await self.log.close()

"""`Backend`: the broker's interfaces bundled for one gateway process.

Built by the factory registered for the broker URL's scheme
(`broker.registry`); the gateway starts it once and closes it once. The
control channel is started and closed by the gateway itself (`Gateway.start`),
since only the gateway knows its node identity and admin commands.
"""

from __future__ import annotations

from dataclasses import dataclass

from autosdlc_ws.broker.base import EventHandler, EventLog, OutageHandler, SessionStore, SharedLimits
from autosdlc_ws.broker.control import ControlChannel


@dataclass(slots=True)
class Backend:
    name: str  # shown by /readyz ("memory", "redis")
    log: EventLog
    sessions: SessionStore
    limits: SharedLimits
    #: The node registry and commands between the gateway processes sharing this
    #: broker (the deployment-wide admin API). The gateway starts it with its node
    #: identity and command handler, which the backend does not know.
    control: ControlChannel

    async def start(self, on_event: EventHandler, on_outage: OutageHandler | None = None) -> None:
        await self.log.start(on_event, on_outage)
        await self.limits.start()

    async def close(self) -> None:
        await self.limits.close()
        await self.log.close()

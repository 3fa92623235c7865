"""What one gateway process answers about itself on the control channel.

`GatewayAdmin` implements `admin_view.LocalAdmin` over a `Gateway`: the
deployment-wide admin API (`server.admin_routes`) asks every node through
the control channel, and each node answers from here. Reads are plain walks
over the gateway's own dictionaries (subscription counts are kept up to date
by the gateway), done only when an admin asks, so the event path never pays
for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autosdlc_ws.errors import CloseCode
from autosdlc_ws.server.logs import MessageLogConfig

if TYPE_CHECKING:
    from autosdlc_ws.server.connection import Connection
    from autosdlc_ws.server.gateway import Gateway

log = logging.getLogger("autosdlc_ws.admin")

#: How long a close command waits for the client to take the close frame before
#: it answers anyway: the command's caller stops waiting at 1.5 s, and the close
#: carries on (bounded by `shutdown_grace_s`) after the answer.
CLOSE_ANSWER_WAIT_S = 1.0


def describe_connection(conn: Connection, node_id: str) -> dict[str, Any]:
    """One connection as `GET /api/v1/connections/{id}` shows it (CONTRACT §10 plus
    the per-connection figures the dashboard's Debug view shows)."""
    core = conn.core
    principal = core.principal
    return {
        "connectionId": core.connection_id,
        "nodeId": node_id,
        "sessionId": core.session_id,
        "state": "closing" if conn.closing else ("open" if principal else "authenticating"),
        "subject": principal.subject if principal else None,
        "authKind": principal.kind if principal else None,
        "remoteAddress": conn.remote,
        "connectedAt": conn.connected_at_ms,
        "compression": "gzip" if core.gzip else "none",
        "subscriptions": [{"subscriptionId": s.id, **s.describe()} for s in core.subscriptions.values()],
        "queueBytes": conn.queue_depth_bytes(),
        "bytesIn": conn.bytes_in,
        "bytesOut": conn.bytes_out,
    }


class GatewayAdmin:
    """`LocalAdmin` over one gateway (its connections, error groups and message log)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @property
    def node_id(self) -> str:
        return self.gateway.node.node_id

    def connections(self) -> list[dict[str, Any]]:
        return [describe_connection(c, self.node_id) for c in list(self.gateway.connections.values())]

    def describe_connection(self, connection_id: str) -> dict[str, Any] | None:
        conn = self.gateway.connections.get(connection_id)
        return None if conn is None else describe_connection(conn, self.node_id)

    async def close_connection(self, connection_id: str, admin_subject: str) -> bool:
        conn = self.gateway.connections.get(connection_id)
        if conn is None:
            return False
        log.info("connection %s closed by admin %s", connection_id, admin_subject)
        closing = asyncio.get_running_loop().create_task(
            conn.close(CloseCode.POLICY, f"closed by admin {admin_subject}"))
        # The close frame is written at once; waiting a little more lets the
        # connection leave the listing before the admin's next request.
        with contextlib.suppress(Exception):  # a slow or failed close still answers: it was held here
            await asyncio.wait_for(asyncio.shield(closing), CLOSE_ANSWER_WAIT_S)
        return True

    def error_groups(self) -> list[dict[str, Any]]:
        return self.gateway.error_groups.snapshot(time.monotonic())

    def logging_config(self) -> dict[str, Any]:
        return self.gateway.message_log.config.to_json()

    def set_logging_config(self, config: MessageLogConfig) -> None:
        self.gateway.message_log.configure(config)
        log.info("message logging changed: %s", config.to_json())

    def subscription_counts(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        return self.gateway.subscriber_counts.counts()

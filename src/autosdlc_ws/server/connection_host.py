"""What a `Connection` needs from the process that hosts it, and nothing more.

`Gateway` implements it; a test or a benchmark can hand a connection any
object with these members. Keeping it narrow is what lets the connection
stay ignorant of the hub's index, the stats object and the message log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from autosdlc_ws.broker.base import PublishReceipt, SnapshotResult
from autosdlc_ws.broker.trail import SendTrail
from autosdlc_ws.config import Settings
from autosdlc_ws.core.subscriptions import Subscription
from autosdlc_ws.core.type_limits import Charge

if TYPE_CHECKING:
    from autosdlc_ws.core.connection_core import AuthAccepted
    from autosdlc_ws.server.connection import Connection


class ConnectionHost(Protocol):
    @property
    def settings(self) -> Settings: ...

    def now_ms(self) -> int: ...

    @property
    def log_partitions(self) -> int:
        """Partitions of the broker's event log (1 unless it is partitioned, `redis-cluster://`)."""

    @property
    def worker_trail(self) -> SendTrail | None:
        """On a partitioned log: the order this process's hub received live events in."""

    # --- counting and logging -------------------------------------------------------

    def frame_received(self, size: int, message_type: str) -> None:
        """Count one client frame of `size` bytes (its type once parsed)."""

    def slow_consumer_closed(self) -> None:
        """Count one connection closed for not reading."""

    def record_error(self, code: str, message_type: str, message: str) -> None:
        """Count an error frame sent to the client."""

    @property
    def logs_messages(self) -> bool:
        """Is message logging on (checked per frame, so it must be cheap)?"""

    def log_message(self, direction: str, message: dict[str, Any], *, subject: str | None,
                    connection_id: str) -> None: ...

    # --- subscriptions, publishing, authentication --------------------------------------

    async def prepare_subscription(self, subscription: Subscription[Any]) -> None:
        """Make sure the events `subscription` can match reach this process (a
        partitioned log reads only the partitions its subscriptions need)."""

    def subscription_added(self, conn: Connection, subscription: Subscription[Any]) -> None:
        """Route matching events to `conn` from now on (and keep the session record current)."""

    def subscription_removed(self, conn: Connection, subscription_id: str) -> None: ...

    async def snapshot(self, subscription: Subscription[Any]) -> SnapshotResult:
        """The last values `subscription` matches (see `EventLog.snapshot`)."""

    async def take_identity_publish(self, identity: str) -> int:
        """Charge one publish to the identity's shared bucket: 0 when allowed, else ms to wait."""

    async def take_type_limit(self, charge: Charge) -> int:
        """Take `charge` from the identity's bucket for that message type (config
        `rate_limits`, shared by every worker): 0 when allowed, else ms to wait."""

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]: ...

    async def accept_in_band_auth(self, conn: Connection, action: AuthAccepted) -> None: ...

"""Brokers: how events travel between publishers and every worker's subscribers.

See `base` for the interfaces, `backend` for the bundle a gateway holds and
`registry` for how a broker URL picks one.
"""

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import (
    BrokerEvent,
    EventLog,
    HistoryResult,
    Outage,
    OutageKind,
    Position,
    PublishReceipt,
    SessionRecord,
    SessionStore,
    SharedLimits,
)

__all__ = ["Backend", "BrokerEvent", "EventLog", "HistoryResult", "Outage", "OutageKind", "Position",
           "PublishReceipt", "SessionRecord", "SessionStore", "SharedLimits"]

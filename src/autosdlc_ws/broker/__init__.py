"""Brokers: how events travel between publishers and every worker's subscribers."""

from autosdlc_ws.broker.base import (
    Broker,
    BrokerEvent,
    HistoryResult,
    Position,
    PublishReceipt,
    SessionRecord,
)

__all__ = ["Broker", "BrokerEvent", "HistoryResult", "Position", "PublishReceipt", "SessionRecord"]

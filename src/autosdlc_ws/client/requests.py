"""Requests waiting for their correlated answer (`metadata.correlationId` = the request id)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import orjson

from autosdlc_ws.client.events import new_id
from autosdlc_ws.client.subscriptions import Subscription


class RequestKind(enum.Enum):
    """Who waits for the answer. The application awaits SUBSCRIBE and UNSUBSCRIBE; the core
    itself handles AUTH (an in-band token refresh), RESUBSCRIBE (restoring a subscription
    after a lost session) and ORPHAN (removing a subscription the server has and the
    client does not want)."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    AUTH = "auth"
    RESUBSCRIBE = "resubscribe"
    ORPHAN = "orphan"

    @property
    def awaited(self) -> bool:
        """Does an application call wait for the answer (and time out without one)?"""
        return self in (RequestKind.SUBSCRIBE, RequestKind.UNSUBSCRIBE)


@dataclass(slots=True)
class PendingRequest:
    """A request frame (`text`) and what it is for; `sent` once written on the current
    connection (it is re-sent after a reconnect if no answer came)."""

    id: str
    kind: RequestKind
    message_type: str
    text: str
    sub: Subscription | None = None
    sent: bool = False


def dumps(obj: Any) -> str:
    """The JSON text of a frame."""
    return orjson.dumps(obj).decode()


def new_request(kind: RequestKind, message_type: str, data: dict[str, Any], now_ms: int, *,
                sub: Subscription | None = None) -> PendingRequest:
    """A request with a fresh id and its frame's text."""
    request_id = new_id("req")
    text = dumps({"id": request_id, "type": message_type, "timestamp": now_ms, "data": data})
    return PendingRequest(request_id, kind, message_type, text, sub)

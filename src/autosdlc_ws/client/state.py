"""Plain state of the WebSocket client: counters, subscriptions, requests in flight,
one connection's facts, and the close-code rule. No I/O here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from autosdlc_ws.client.errors import AutoSDLCError, ConnectionClosed, TokenExpired
from autosdlc_ws.errors import FATAL_CODES, CloseCode

SUBPROTOCOL = "autosdlc.v1"
DEFAULT_HEARTBEAT_S = 25.0
#: After these close codes (1007, 1008, 1009, 4001) the client stops and reports instead of reconnecting.
STOP_CODES = frozenset(int(c) for c in FATAL_CODES)
#: Close 4003: reconnect only with a fresh token from `token_provider`.
TOKEN_EXPIRED_CODE = int(CloseCode.TOKEN_EXPIRED)

TokenProvider = Callable[[], "str | Awaitable[str]"]
WRITE_ERRORS = (ConnectionError, aiohttp.ClientError, RuntimeError)
END = object()  # end-of-stream marker in the delivery and iterator queues


@dataclass(slots=True)
class ClientStats:
    """Counters of one client, over all its connections."""

    connects: int = 0  # successful handshakes
    reconnects: int = 0  # of which after a lost connection
    resumed: int = 0  # reconnects the server answered with resumed: true
    resets: int = 0  # ResetEvents surfaced
    events_received: int = 0  # events handed to the application (duplicates excluded)
    duplicates_dropped: int = 0
    heartbeat_timeouts: int = 0  # connections declared dead by the watchdog
    token_refreshes: int = 0  # successful in-band refreshes
    last_close_code: int | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as the caller knows it; `server_id` changes after a lost session."""

    id: str
    events: tuple[str, ...]
    filters: dict[str, str | list[str]]
    server_id: str | None


@dataclass(slots=True)
class Sub:
    caller_id: str | None
    server_id: str | None
    events: tuple[str, ...]
    filters: dict[str, str | list[str]]

    def request_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"events": list(self.events)}
        if self.filters:
            data["filters"] = self.filters
        return data


@dataclass(slots=True)
class Pending:
    """A request waiting for its correlated answer.

    kind: "subscribe" / "unsubscribe" / "auth" (an application coroutine awaits `future`),
    "resubscribe" (restoring a subscription after a lost session) or "orphan" (removing a
    subscription the server has but the client does not), both internal, without a future.
    """

    id: str
    kind: str
    text: str
    future: asyncio.Future[dict[str, Any]] | None = None
    sub: Sub | None = None
    sent: bool = False


@dataclass(slots=True)
class Delivery:
    type: str
    message: Any
    to_iterator: bool
    reset: bool = False


class ConnectionLost(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Conn:
    """What one socket learned from its opening frames."""

    ws: aiohttp.ClientWebSocketResponse
    expires_at_ms: int | None = None
    resumed: bool = False
    previous_session: str | None = None
    opened_mono: float = field(default_factory=time.monotonic)
    disconnect: dict[str, Any] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # resume check: server ids the session should bring back, those it did, and the ping whose
    # pong marks the end of the restore (the server reads frames only after restoring)
    expected: set[str] = field(default_factory=set)
    confirmed: set[str] = field(default_factory=set)
    resume_check: str | None = None


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def normalise_filters(filters: Mapping[str, str | Sequence[str]] | None) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, value in (filters or {}).items():
        out[key] = value if isinstance(value, str) else list(value)
    return out


def close_outcome(code: int, reason: str, disconnect: Mapping[str, Any] | None,
                  has_token_provider: bool) -> AutoSDLCError | None:
    """The error to stop with after a connection ended with `code`, or None to reconnect.

    Stop on 1007, 1008, 1009, 4001, and when a `disconnect` frame said `reconnect: false`; on 4003
    only when there is no token provider to get a fresh token from; reconnect otherwise
    (1001, 1006, 1011, 1013, 4008, and also 1000 or unknown codes from the server: a proxy
    or a restarting gateway may use them, and a dashboard should not go dark)."""
    if disconnect is not None and disconnect.get("reconnect") is False:
        return ConnectionClosed(code, str(disconnect.get("reason") or reason))
    if code in STOP_CODES:
        return ConnectionClosed(code, reason)
    if code == TOKEN_EXPIRED_CODE and not has_token_provider:
        return TokenExpired(code, reason or "token expired")
    return None

"""What the client core (`client.core.ClientCore`) asks its driver to do: plain values,
carried out in the order given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autosdlc_ws.client.errors import AutoSDLCError
from autosdlc_ws.client.events import ConnectionState, ResetEvent
from autosdlc_ws.client.queue import QueuedFrame

#: Timer names (`StartTimer.name`); request timers are `REQUEST_TIMER + request id`.
PING_TIMER = "ping"
REFRESH_TIMER = "refresh"
REQUEST_TIMER = "request:"
RESEND_TIMER = "resend:"


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Write `text` on the current socket. When the write fails, hand `item` (if any) back
    with `ClientCore.writes_failed`, together with the frames after it."""

    text: str
    item: QueuedFrame | None = None


@dataclass(slots=True)  # not frozen: one per event, and a frozen __init__ costs more
class Deliver:
    """A received frame for the application: handlers of its type, and the iterator when
    `to_iterator` (events). A control frame only matters to handlers naming its type."""

    type: str
    frame: dict[str, Any]
    to_iterator: bool


@dataclass(frozen=True, slots=True)
class DeliverReset:
    """Events may have been missed: to `$reset` handlers, reset listeners and the iterator."""

    event: ResetEvent


@dataclass(frozen=True, slots=True)
class ResolveRequest:
    request_id: str
    answer: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FailRequest:
    request_id: str
    error: AutoSDLCError


@dataclass(frozen=True, slots=True)
class ReportError:
    """An error nothing awaits: to the error listeners (or the log)."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: ConnectionState


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call `ClientCore.timer_fired(name)` after `delay_s` (replacing a timer of that name)."""

    name: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class FetchToken:
    """Call the token provider; hand the result to `ClientCore.token_fetched` (or the
    exception to `token_fetch_failed`)."""


@dataclass(frozen=True, slots=True)
class DropSocket:
    """The handshake failed: close the socket (the actions after this one say what next)."""


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Open a new connection after `delay_s` (then `socket_opened`, or `attempt_failed`)."""

    delay_s: float


@dataclass(frozen=True, slots=True)
class Stopped:
    """The client is done (`error` None: closed by the application): release the socket,
    end the event streams, wake whoever waits for the end."""

    error: AutoSDLCError | None


Action = (SendFrame | Deliver | DeliverReset | ResolveRequest | FailRequest | ReportError
          | StateChanged | StartTimer | CancelTimer | FetchToken | DropSocket | Reconnect | Stopped)

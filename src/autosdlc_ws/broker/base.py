"""The `Broker` interface. The connection code sees only this.

A broker keeps one ordered log of events. Each event gets an offset, growing
by one per event within an *epoch*; the epoch changes when the log is lost
(a restarted memory broker, a Redis that lost its data), so a position from
an earlier epoch is known to be unusable rather than silently wrong.

Live events are pushed to the handler given to `start`, in offset order.
`history_after` returns what followed a position or an event id, so a
resuming client gets what it missed; `complete=False` says part of it is gone
(past retention, or another epoch) and the client must be told so.

Sessions (a client's subscriptions, kept for `session_ttl_s` after it
disconnects) live in the broker too, so a client can resume on any worker.

Shared limits live there as well, so they hold across workers: connection
slots per identity (`acquire_slot`/`release_slot`, held under a lease that
`refresh_slots` renews) and token buckets by key (`take_tokens`). Neither
ever raises: when the shared store is unreachable the broker decides locally
(see each implementation and docs/deployment.md, "Limits across workers").
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, order=True)
class Position:
    epoch: str
    offset: int


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    event: dict[str, Any]
    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class PublishReceipt:
    id: str
    offset: int
    duplicate: bool  # an event with this id was already in the log; not published again


@dataclass(frozen=True, slots=True)
class HistoryResult:
    events: list[BrokerEvent]
    complete: bool
    reason: str | None = None
    head: Position | None = None


@dataclass(slots=True)
class SessionRecord:
    session_id: str
    identity: str
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    position: Position | None = None  # log head when the session started; resume base without lastEventId

    def to_json(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "identity": self.identity,
            "subscriptions": self.subscriptions,
            "position": [self.position.epoch, self.position.offset] if self.position else None,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SessionRecord:
        pos = obj.get("position")
        return cls(
            str(obj["sessionId"]), str(obj["identity"]), list(obj.get("subscriptions") or []),
            Position(str(pos[0]), int(pos[1])) if pos else None,
        )


EventHandler = Callable[[BrokerEvent], None]


class Broker(abc.ABC):
    """Publish, deliver live, replay history, keep sessions."""

    name: str = "broker"
    #: True when the broker itself delivers local `system_alert`s about its own
    #: outages (the system monitor then leaves that alert to it).
    reports_outages: bool = False

    @abc.abstractmethod
    async def start(self, on_event: EventHandler) -> None:
        """Connect and begin delivering live events to `on_event`."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        """Append to the log and deliver to every worker, atomically per event.

        Raises `BrokerUnavailable` when the events could not be accepted."""

    @abc.abstractmethod
    async def head(self) -> Position:
        """The position of the newest event (offset 0 when the log is empty)."""

    @abc.abstractmethod
    async def history_after(
        self, *, position: Position | None = None, event_id: str | None = None, limit: int = 100_000
    ) -> HistoryResult:
        """Events after `position` (or after the event with `event_id`), oldest first."""

    @abc.abstractmethod
    async def ready(self) -> bool:
        """Can events be published and delivered right now?"""

    @abc.abstractmethod
    async def save_session(self, record: SessionRecord, ttl_s: float) -> None: ...

    @abc.abstractmethod
    async def load_session(self, session_id: str) -> SessionRecord | None: ...

    @abc.abstractmethod
    async def delete_session(self, session_id: str) -> None: ...

    # --- shared limits ------------------------------------------------------------

    @abc.abstractmethod
    async def acquire_slot(self, identity: str, holder_id: str, limit: int) -> bool:
        """Take one of `identity`'s `limit` connection slots for `holder_id`.

        True when taken (or already held by `holder_id`), False when the
        identity already holds `limit` slots. Each True is paired with one
        `release_slot`; until then the broker keeps the slot's lease alive."""

    @abc.abstractmethod
    async def release_slot(self, identity: str, holder_id: str) -> None:
        """Give the slot back. Never raises: a slot that cannot be released now
        (shared store down) lapses when its lease runs out."""

    @abc.abstractmethod
    async def refresh_slots(self) -> None:
        """Renew the lease of every slot this worker holds (the broker also does
        this by itself, periodically, once started)."""

    @abc.abstractmethod
    async def take_tokens(self, key: str, rate_per_s: float, burst: float, cost: float = 1) -> int:
        """Charge `cost` tokens to the bucket `key` (refilled at `rate_per_s`, holding
        at most `burst`): 0 when allowed and charged, else milliseconds until it
        would be. Never raises."""

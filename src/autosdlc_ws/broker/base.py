"""The broker's contract: three small interfaces and the values they exchange.

A broker is not one object but a bundle (`broker.backend.Backend`) of:

- `EventLog`: one ordered log of events with live delivery. Each event gets an
  offset, growing by one per event within an *epoch*; the epoch changes when
  the log is lost (a restarted memory broker, a Redis that lost its data), so a
  position from an earlier epoch is known to be unusable rather than silently
  wrong. Live events are pushed to the handler given to `start`, in offset
  order. `history_after` returns what followed a position or an event id, so a
  resuming client gets what it missed; `complete=False` says part of it is gone
  (past retention, or another epoch) and the client must be told so.
  `snapshot` returns the newest retained event of each (type, resource) a
  subscription matches (`core.last_values`), with the log position it reflects. Outages
  are *reported* (`on_outage`), never turned into events here: the gateway
  builds every alert.
- `SessionStore`: a client's subscriptions, kept for `session_ttl_s` after it
  disconnects, so a client can resume on any worker.
- `SharedLimits`: connection slots per identity (held under a lease that
  `refresh_slots` renews) and token buckets by key, shared by every worker.
  Neither ever raises: when the shared store is unreachable the implementation
  decides locally (see docs/deployment.md, "Limits across workers").

Each interface has a memory and a Redis implementation; the contract tests in
tests/redis/test_broker_contract.py run unchanged against both.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Epoch and offset of events that exist only on this worker (local alerts):
#: never in the log, never replayed by offset.
LOCAL_EPOCH = "local"
LOCAL_OFFSET = 0


@dataclass(frozen=True, slots=True)
class BrokerEvent:
    event: dict[str, Any]
    offset: int
    epoch: str
    #: Which partition of a partitioned log (`redis-cluster://`) the offset counts in; 0 elsewhere.
    partition: int = 0


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A position in a log of one partition: every event up to `offset` of `epoch`."""

    epoch: str
    offset: int

    def covers(self, record: BrokerEvent) -> bool:
        """Is `record` at or before this position (local events never are)?"""
        return record.epoch != LOCAL_EPOCH and record.offset <= self.offset

    def to_json(self) -> list[Any]:
        return [self.epoch, self.offset]


@dataclass(frozen=True, slots=True)
class VectorPosition:
    """A position in a partitioned log: one `Position` per partition (CONTRACT §12).
    A partition never read (epoch "") covers nothing."""

    parts: tuple[Position, ...]

    def covers(self, record: BrokerEvent) -> bool:
        if record.epoch == LOCAL_EPOCH or record.partition >= len(self.parts):
            return False
        part = self.parts[record.partition]
        return part.epoch == record.epoch and record.offset <= part.offset

    def to_json(self) -> dict[str, Any]:
        return {"parts": [p.to_json() for p in self.parts]}


LogPosition = Position | VectorPosition


def position_from_json(obj: Any) -> LogPosition | None:
    """Read what `to_json` wrote (sessions saved by 0.2 hold the plain pair)."""
    if isinstance(obj, dict) and isinstance(obj.get("parts"), list):
        return VectorPosition(tuple(Position(str(e), int(o)) for e, o in obj["parts"]))
    if isinstance(obj, list | tuple) and len(obj) == 2:
        return Position(str(obj[0]), int(obj[1]))
    return None


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
    head: LogPosition | None = None
    #: When not complete: the partitions whose history is missing (None: all of them).
    lost: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    """The last values a subscription matches, oldest first, as of `position`:
    every event at or below it is in `events` or superseded there, and every
    later one is still to come live."""

    events: list[BrokerEvent]
    position: LogPosition


@dataclass(slots=True)
class SessionRecord:
    session_id: str
    identity: str
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    position: LogPosition | None = None  # log head when the session started; resume base without lastEventId
    #: Partitioned logs only: the order the last events were sent in (`broker.trail`),
    #: which turns a `lastEventId` into an exact vector position.
    trail: dict[str, Any] | None = None
    #: The connection that wrote the record (see `SessionStore.save`); None in
    #: records written before 0.3, which any connection may overwrite.
    owner: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sessionId": self.session_id,
            "identity": self.identity,
            "subscriptions": self.subscriptions,
            "position": self.position.to_json() if self.position else None,
        }
        if self.trail is not None:
            out["trail"] = self.trail
        if self.owner is not None:
            out["owner"] = self.owner
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SessionRecord:
        trail = obj.get("trail")
        owner = obj.get("owner")
        return cls(
            str(obj["sessionId"]), str(obj["identity"]), list(obj.get("subscriptions") or []),
            position_from_json(obj.get("position")), trail if isinstance(trail, dict) else None,
            owner if isinstance(owner, str) else None,
        )


class OutageKind(enum.Enum):
    #: The shared store cannot be reached: live events from other workers pause
    #: and publishes are refused (`started` says whether it began or ended).
    UNAVAILABLE = "unavailable"
    #: The log was lost and restarted in a new epoch (one-shot, `started` is True).
    HISTORY_RESET = "history_reset"


@dataclass(frozen=True, slots=True)
class Outage:
    """What an `EventLog` reports about its own health; the gateway words the alert."""

    kind: OutageKind
    started: bool
    detail: str
    #: The partitions concerned, for a partitioned log (None: the whole log).
    partitions: frozenset[int] | None = None


EventHandler = Callable[[BrokerEvent], None]
OutageHandler = Callable[[Outage], None]


class EventLog(abc.ABC):
    """Publish, deliver live, replay history."""

    #: How many independently ordered partitions the log has (`redis-cluster://`: many).
    partitions: int = 1

    @abc.abstractmethod
    async def start(self, on_event: EventHandler, on_outage: OutageHandler | None = None) -> None:
        """Connect and begin delivering live events to `on_event`; report outages to `on_outage`."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        """Append to the log and deliver to every worker, atomically per event.

        Raises `BrokerUnavailable` when the events could not be accepted."""

    @abc.abstractmethod
    async def head(self) -> LogPosition:
        """The position of the newest event (offset 0 when the log is empty)."""

    @abc.abstractmethod
    async def history_after(
        self, *, position: LogPosition | None = None, event_id: str | None = None,
        trail: Mapping[str, Any] | None = None, limit: int = 100_000
    ) -> HistoryResult:
        """Events after `position` (or after the event with `event_id`), oldest first.

        `trail` is the session's record of what it was sent (`SessionRecord.trail`):
        a partitioned log needs it to know, from one event id, where the client
        was in every other partition; a single log ignores it."""

    @abc.abstractmethod
    async def snapshot(self, types: frozenset[str], filters: Mapping[str, frozenset[str]]) -> SnapshotResult:
        """The newest retained event per (type, resource) matching `types` and
        `filters`, oldest first, found by index lookups (never a scan).

        Returns only once this worker's live handler has been given every event
        up to the answer's position, so a caller whose subscription is already
        indexed sees each later event live and each earlier one here (or
        superseded here). Raises `BrokerUnavailable` when it cannot be read."""

    @abc.abstractmethod
    async def ready(self) -> bool:
        """Can events be published and delivered right now?"""

    async def read_partitions(self, partitions: frozenset[int] | None) -> None:
        """Make sure live events of these partitions (None: all) reach this worker
        from now on: awaited before a subscription that needs them is indexed.
        A log read whole (every unpartitioned one) has nothing to do."""
        return None

    def unread_partitions(self, partitions: frozenset[int]) -> None:
        """No subscription on this worker needs these partitions any more."""
        return None

    @abc.abstractmethod
    def deliver_local(self, event: dict[str, Any]) -> None:
        """Hand `event` to this worker's live handler only (epoch `LOCAL_EPOCH`):
        for alerts that cannot, or need not, go through the log. A client whose
        last event was such an alert can still resume by its id."""


class SessionStore(abc.ABC):
    """Sessions by id, each with its own time to live.

    A session is written by the connection that holds it (`record.owner`). A
    client that reconnects to another worker before the old one noticed it was
    gone has two connections on one session for a moment; the old one's last
    write must not land over the new one's (it would restore subscriptions the
    client has since changed). So the connection that resumes a session
    *claims* it with its first write, and every other write lands only while
    its writer still holds the record."""

    @abc.abstractmethod
    async def save(self, record: SessionRecord, ttl_s: float, *, claim: bool = True) -> bool:
        """Write `record` for `ttl_s` seconds. With `claim` False (and an owner on
        `record`) the write lands only if the stored record is missing, has no
        owner or is `record.owner`'s. Returns whether it landed."""

    @abc.abstractmethod
    async def load(self, session_id: str) -> SessionRecord | None: ...

    @abc.abstractmethod
    async def delete(self, session_id: str) -> None: ...


class SharedLimits(abc.ABC):
    """Connection slots per identity and token buckets by key, across workers."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin renewing slot leases (a no-op where there are none)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop renewing leases."""

    @abc.abstractmethod
    async def acquire_slot(self, identity: str, holder_id: str, limit: int) -> bool:
        """Take one of `identity`'s `limit` connection slots for `holder_id`.

        True when taken (or already held by `holder_id`), False when the
        identity already holds `limit` slots. Each True is paired with one
        `release_slot`; until then the implementation keeps the slot's lease alive."""

    @abc.abstractmethod
    async def release_slot(self, identity: str, holder_id: str) -> None:
        """Give the slot back. Never raises: a slot that cannot be released now
        (shared store down) lapses when its lease runs out."""

    @abc.abstractmethod
    async def refresh_slots(self) -> None:
        """Renew the lease of every slot this worker holds (also done
        periodically, once started)."""

    @abc.abstractmethod
    async def take_tokens(self, key: str, rate_per_s: float, burst: float, cost: float = 1) -> int:
        """Charge `cost` tokens to the bucket `key` (refilled at `rate_per_s`, holding
        at most `burst`): 0 when allowed and charged, else milliseconds until it
        would be. Never raises."""

"""Exact resume on a partitioned log: the order a connection was sent events in.

With one log, the offset of the client's `lastEventId` says everything: the
client has every event up to it. With K partitions an event id names a
position in ONE partition; where the client was in the others depends on how
this connection's events from different partitions interleaved on the wire.
TCP delivers a prefix of what was written, so the client holds exactly what
was sent up to its last event. `SendTrail` remembers that order for the last
`window` events (older ones are folded into `base`), the session record keeps
it when the connection ends, and `resume_position` turns (trail, last event)
back into a vector: every partition at the last offset sent before or with
that event. Pure: plain values in and out, no I/O.

Nothing of this is paid per delivery. Every connection of a worker is sent
its live events in the order the worker's hub receives them, so ONE trail per
worker (`record`, once per event) says where each partition stood when any
live event went out; the position it gives counts events a connection did not
match, which is the same thing for its subscriptions. A connection keeps a
trail of its own only for what it sends outside that order (a resume's
replay, the live events held back meanwhile, which go out after it) and, at
each such window and when its session is saved, takes over the worker's
entries since it last did (`absorb_since`).

When the trail cannot place the event (the worker died before saving it, or
the event is older than the window) the answer is the session's start vector
with the event's own partition moved up to it: nothing is skipped, some
events of other partitions may come again, and the SDKs drop those by id
(their duplicate filter). `resume_position` says which case it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autosdlc_ws.broker.base import LOCAL_EPOCH, BrokerEvent, Position, VectorPosition

#: Events remembered per connection (at most 1.25 times as many references are
#: held, ~10 KB for a busy connection): more than a socket's buffers usually
#: hold, so a client's last event is almost always among them.
TRAIL_WINDOW = 1024


class SendTrail:
    """The events sent to one connection, in order (the last `window`), for a
    log of `partitions` partitions. A worker's trail records once per event (one
    append); a connection's, only what it sends outside the worker's order."""

    __slots__ = ("_base", "count", "limit", "partitions", "sent", "window")

    def __init__(self, partitions: int, window: int = TRAIL_WINDOW) -> None:
        self.partitions = partitions
        self.window = window
        #: `sent` may grow to `limit` before the oldest quarter folds into the base.
        self.limit = window + (window >> 2)
        self._base: list[Position | None] = [None] * partitions
        #: The events sent, oldest first (read by `absorb_since` of another trail).
        self.sent: list[BrokerEvent] = []
        #: Events recorded so far: `sent` holds numbers `count - len(sent)` to `count - 1`.
        self.count = 0

    def record(self, record: BrokerEvent) -> None:
        self.sent.append(record)
        self.count += 1
        if len(self.sent) > self.limit:
            self.fold_excess()

    def absorb_since(self, other: SendTrail, start: int) -> None:
        """Append what `other` recorded from its number `start` on (a worker's
        trail, read by one of its connections). Entries `other` already folded
        away are taken from its base: a position at least as far, never less."""
        first = other.count - len(other.sent)
        if start < first:
            self._fold(len(self.sent))
            for partition, position in enumerate(other._base):
                if position is not None and partition < self.partitions:
                    self._base[partition] = position
            start = first
        for record in other.sent[start - first:]:
            self.record(record)

    def fold_excess(self) -> None:
        self._fold(len(self.sent) - self.window)

    def _fold(self, count: int) -> None:
        # Newest first: only the last event of each partition moves its base (one
        # Position per partition, not per event: this runs once per `window` deliveries).
        base, partitions = self._base, self.partitions
        found: set[int] = set()
        for i in range(count - 1, -1, -1):
            record = self.sent[i]
            partition = record.partition
            if partition in found or record.epoch == LOCAL_EPOCH or partition >= partitions:
                continue
            found.add(partition)
            base[partition] = Position(record.epoch, record.offset)
            if len(found) == partitions:
                break
        del self.sent[:count]

    def to_json(self) -> dict[str, Any]:
        """`base`: [epoch, offset] or null per partition, as of the first entry of
        `sent`; `sent`: [partition, offset, ...] flat (partition -1: a local
        event, its id in `local`); `epochs`: each partition's epoch in `sent`."""
        self._fold(max(0, len(self.sent) - self.window))
        sent: list[int] = []
        local: list[str] = []
        epochs: list[str | None] = [None] * self.partitions
        for record in self.sent:
            if record.epoch == LOCAL_EPOCH:
                sent += [-1, len(local)]
                local.append(str(record.event.get("id")))
            elif record.partition < self.partitions:
                sent += [record.partition, record.offset]
                epochs[record.partition] = record.epoch
        return {"base": [p.to_json() if p else None for p in self._base], "sent": sent,
                "local": local, "epochs": epochs}


@dataclass(frozen=True, slots=True)
class Resume:
    position: VectorPosition
    exact: bool  # False: some events of other partitions may be sent again


def resume_position(start: VectorPosition | None, trail: Mapping[str, Any] | None, event_id: str,
                    located: tuple[int, Position] | None) -> Resume | None:
    """Where to resume a client whose last event is `event_id`.

    `located` is (partition, position) of that event in the log, or None when
    the log does not know it (a local event, or past retention). None when
    neither the trail nor the log can place it."""
    parts = _parts(start, trail)
    if trail is not None:
        found = _index_in_trail(trail, event_id, located)
        if found is not None and parts is not None:
            return Resume(VectorPosition(tuple(_fold_trail(parts, trail, found))), True)
    if located is None or start is None or located[0] >= len(start.parts):
        return None
    partition, position = located
    moved = list(start.parts)
    moved[partition] = position
    return Resume(VectorPosition(tuple(moved)), False)


def _parts(start: VectorPosition | None, trail: Mapping[str, Any] | None) -> list[Position] | None:
    if trail is None:
        return list(start.parts) if start else None
    base = trail.get("base") or []
    fallback = list(start.parts) if start else []
    parts = []
    for i, entry in enumerate(base):
        if entry:
            parts.append(Position(str(entry[0]), int(entry[1])))
        elif i < len(fallback):
            parts.append(fallback[i])
        else:
            return None
    return parts


def _index_in_trail(trail: Mapping[str, Any], event_id: str,
                    located: tuple[int, Position] | None) -> int | None:
    """The index in `sent` (a multiple of 2) of the client's last event, or None."""
    sent: list[int] = trail.get("sent") or []
    local: list[str] = trail.get("local") or []
    for i in range(len(sent) - 2, -1, -2):
        partition, value = sent[i], sent[i + 1]
        if partition == -1:
            if 0 <= value < len(local) and local[value] == event_id:
                return i
        elif located is not None and partition == located[0] and value == located[1].offset:
            return i
    return None


def _fold_trail(parts: list[Position], trail: Mapping[str, Any], last: int) -> list[Position]:
    sent: list[int] = trail.get("sent") or []
    epochs: list[str | None] = trail.get("epochs") or []
    for i in range(0, last + 2, 2):
        partition, offset = sent[i], sent[i + 1]
        if 0 <= partition < len(parts):
            epoch = epochs[partition] if partition < len(epochs) else None
            parts[partition] = Position(epoch or parts[partition].epoch, offset)
    return parts

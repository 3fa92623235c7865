"""Which partition of a partitioned event log an event belongs to: pure, no I/O.

A partitioned log (`redis-cluster://`, CONTRACT §12) keeps order per
partition only, so every event of one resource must land in one partition.
The resource is the one the event's type requires (`REQUIRED_RESOURCE_KEY`:
`agentId` for agent and TDD events, `workflowId` for workflow events,
`repository` for GitHub events); system events have none and go by type.
An event that lacks its required key (or of a type without one) falls back
to the first resource key it carries, as the snapshot store does, else its
type. Choosing by the type's own key rather than by whichever key comes first
keeps a `workflow_step_complete` that names an agent in its workflow's
partition, behind the `workflow_started` it follows.

`partition_scope` is the inverse: the partitions a subscription can receive
events from, so a partition that lost its history resets only the
subscriptions it can affect. It is exact when the subscription filters on
the required key of every type it wants (or the types are system events),
and "all partitions" (None) otherwise.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

from autosdlc_ws.core.last_values import RESOURCE_ORDER, tag
from autosdlc_ws.core.messages import REQUIRED_RESOURCE_KEY

Filters = Mapping[str, Iterable[str]]


def resource_key(event_type: str, data: Mapping[str, object]) -> str:
    """The string an event is partitioned by: `agentId="a1"`, or `type=<type>`."""
    key = REQUIRED_RESOURCE_KEY.get(event_type)
    if key is not None:
        value = data.get(key)
        if value.__class__ is str:
            return tag(key, value)
    for key in RESOURCE_ORDER:
        value = data.get(key)
        if value.__class__ is str:
            return tag(key, value)
    return "type=" + event_type


def partition_of_key(key: str, partitions: int) -> int:
    """Stable across processes and hosts (CRC-32, not Python's salted `hash`)."""
    if partitions <= 1:
        return 0
    return zlib.crc32(key.encode()) % partitions


def partition_of(event_type: str, data: Mapping[str, object], partitions: int) -> int:
    return partition_of_key(resource_key(event_type, data), partitions)


def partition_scope(types: Iterable[str], filters: Filters, partitions: int) -> frozenset[int] | None:
    """The partitions events matching (`types`, `filters`) can come from; None for all."""
    if partitions <= 1:
        return frozenset({0})
    scope: set[int] = set()
    for event_type in types:
        key = REQUIRED_RESOURCE_KEY.get(event_type, "?")
        if key is None:  # a system event: partitioned by its type
            scope.add(partition_of_key("type=" + event_type, partitions))
        elif key in filters:
            scope.update(partition_of_key(tag(key, value), partitions) for value in filters[key])
        else:
            return None
    return frozenset(scope)


def affected(scope: frozenset[int] | None, lost: frozenset[int] | None) -> bool:
    """Does a subscription whose events come from `scope` (None: all) miss
    something when the partitions `lost` (None: all) lost history?"""
    if scope is None or lost is None:
        return True
    return not scope.isdisjoint(lost)


class PartitionDemand:
    """How many subscriptions of this worker need each partition, so a worker
    reads only the partitions its clients can receive events from."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.counts = [0] * partitions
        self._scopes: dict[tuple[object, str], tuple[int, ...]] = {}
        self._by_owner: dict[object, set[str]] = {}

    def add(self, owner: object, subscription_id: str, scope: frozenset[int] | None) -> None:
        self.remove(owner, subscription_id)
        parts = tuple(range(self.partitions)) if scope is None else tuple(sorted(scope))
        self._scopes[(owner, subscription_id)] = parts
        self._by_owner.setdefault(owner, set()).add(subscription_id)
        for p in parts:
            self.counts[p] += 1

    def remove(self, owner: object, subscription_id: str) -> frozenset[int]:
        """Forget one subscription; the partitions no subscription needs any more."""
        parts = self._scopes.pop((owner, subscription_id), ())
        ids = self._by_owner.get(owner)
        if ids is not None:
            ids.discard(subscription_id)
            if not ids:
                del self._by_owner[owner]
        freed = []
        for p in parts:
            self.counts[p] -= 1
            if self.counts[p] == 0:
                freed.append(p)
        return frozenset(freed)

    def drop_owner(self, owner: object) -> frozenset[int]:
        freed: set[int] = set()
        for subscription_id in list(self._by_owner.get(owner, ())):
            freed |= self.remove(owner, subscription_id)
        return frozenset(freed)

"""Subscription counts of one node, by resource and by event type (`GET /api/v1/subscriptions`).

`subscribers` counts connections, not subscriptions: a connection with three
subscriptions to `agent:a1` is one subscriber of it. A subscription without a
filter on some resource kind wants every resource of that kind, counted as
`<kind>:*`; one without any filter wants everything, counted as `*`. Types
are the concrete types its patterns expanded to.

For the Prometheus metric the resource label must stay bounded whatever the
clients subscribe to: `top_counts` keeps the largest and folds the rest into
one `other` row.

`count_subscribers` counts from scratch (the reference); a gateway keeps a
`SubscriberCounts` up to date as subscriptions come and go instead, so that
reading the counts (every scrape, every admin request) never walks every
connection: a walk costs ~10 ms per 1,000 connections, a stall of the event
loop at scale.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from autosdlc_ws.core.resources import KIND_OF_KEY

#: Resource label of the rows folded together by `top_counts`.
OTHER = "other"


@dataclass(frozen=True, slots=True)
class SubscriptionShape:
    """What a count needs from one subscription: its concrete types and its filters."""

    types: frozenset[str]
    filters: Mapping[str, frozenset[str]]


def resources_of(shape: SubscriptionShape) -> set[str]:
    """The resources one subscription can match, as `agent:<id>`, `agent:*` or `*`."""
    if not shape.filters:
        return {"*"}
    named: set[str] = set()
    for key, values in shape.filters.items():
        kind = KIND_OF_KEY.get(key)
        if kind is not None:
            named.update(f"{kind}:{value}" for value in values)
    return named or {"*"}


def count_subscribers(connections: Iterable[Iterable[SubscriptionShape]]) -> tuple[dict[str, int], dict[str, int]]:
    """(connections per resource, connections per event type) over the given connections,
    each given as the shapes of its subscriptions."""
    resources: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for subscriptions in connections:
        shapes = list(subscriptions)
        resources.update(set().union(*(resources_of(s) for s in shapes)) if shapes else ())
        types.update(set().union(*(s.types for s in shapes)) if shapes else ())
    return dict(resources), dict(types)


def top_counts(counts: Mapping[str, int], limit: int) -> dict[str, int]:
    """The `limit` largest rows (ties by name), the rest summed under `other`.
    O(rows x log limit): no full sort of what may be one row per resource."""
    kept = dict(heapq.nsmallest(limit, counts.items(), key=lambda kv: (-kv[1], kv[0])))
    rest = sum(counts.values()) - sum(kept.values())
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept


class SubscriberCounts:
    """`count_subscribers` kept up to date as subscriptions come and go.

    Each change costs the resources and types of one subscription; reading is
    a copy of two counters. Owners are the connections (any hashable); a
    connection holding several subscriptions to one resource counts once."""

    def __init__(self) -> None:
        self._shapes: dict[Hashable, dict[str, SubscriptionShape]] = {}
        self._owner_resources: dict[Hashable, Counter[str]] = {}
        self._owner_types: dict[Hashable, Counter[str]] = {}
        self._resources: Counter[str] = Counter()
        self._types: Counter[str] = Counter()

    def add(self, owner: Hashable, subscription_id: str, shape: SubscriptionShape) -> None:
        """Count one subscription of `owner` (replacing one with the same id)."""
        self.remove(owner, subscription_id)
        self._shapes.setdefault(owner, {})[subscription_id] = shape
        _bump(self._owner_resources.setdefault(owner, Counter()), self._resources, resources_of(shape), 1)
        _bump(self._owner_types.setdefault(owner, Counter()), self._types, shape.types, 1)

    def remove(self, owner: Hashable, subscription_id: str) -> None:
        """Stop counting one subscription (unknown ids are ignored)."""
        shapes = self._shapes.get(owner)
        shape = shapes.pop(subscription_id, None) if shapes is not None else None
        if shape is None:
            return
        _bump(self._owner_resources[owner], self._resources, resources_of(shape), -1)
        _bump(self._owner_types[owner], self._types, shape.types, -1)
        if not shapes:
            del self._shapes[owner], self._owner_resources[owner], self._owner_types[owner]

    def drop_owner(self, owner: Hashable) -> None:
        """Stop counting every subscription of `owner` (its connection closed)."""
        for subscription_id in list(self._shapes.get(owner, ())):
            self.remove(owner, subscription_id)

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(connections per resource, connections per event type), as `count_subscribers`."""
        return dict(self._resources), dict(self._types)


def _bump(own: Counter[str], total: Counter[str], names: Iterable[str], step: int) -> None:
    """Move one owner's per-name subscription counts by `step`; the total counts owners,
    so it changes only when an owner's count leaves or reaches zero."""
    for name in names:
        before = own[name]
        own[name] = before + step
        if step > 0 and before == 0:
            total[name] += 1
        elif step < 0 and before == 1:
            del own[name]
            total[name] -= 1
            if total[name] <= 0:
                del total[name]

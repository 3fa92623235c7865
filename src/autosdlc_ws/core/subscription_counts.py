"""Subscription counts of one node, by resource and by event type (`GET /api/v1/subscriptions`).

`subscribers` counts connections, not subscriptions: a connection with three
subscriptions to `agent:a1` is one subscriber of it. A subscription without a
filter on some resource kind wants every resource of that kind, counted as
`<kind>:*`; one without any filter wants everything, counted as `*`. Types
are the concrete types its patterns expanded to.

For the Prometheus metric the resource label must stay bounded whatever the
clients subscribe to: `top_counts` keeps the largest and folds the rest into
one `other` row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
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
    """The `limit` largest rows (ties by name), the rest summed under `other`."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[:limit])
    rest = sum(n for _, n in ranked[limit:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0) + rest
    return kept

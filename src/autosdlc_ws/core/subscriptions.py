"""The subscription index: which connections want an event, at the cost of the matches.

Event types are a closed set, so patterns (`agent_*`, `*`) are expanded to
concrete types when a subscription is made; matching never evaluates a glob.

A subscription without filters is indexed by type; one with filters by
(type, key, value) of its most selective filter key, and its other filters are
checked only for those candidates. A publish therefore touches the
subscriptions registered under its type and under each of its own resource
values, never the whole table: 10,000 subscriptions of which 10 match cost
about what 10 in all cost (benchmarks/bench_index.py measures it).

"Most selective" is decided when the subscription is added: the key with the
fewest values, and among those the one whose buckets hold the fewest
subscriptions at that moment. A fixed preference alone (tasks first) piles
every subscription of the form {taskId: T, agentId: A_i} into the one bucket
of T, and each event of T then tests all of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Owner = TypeVar("Owner", bound=Hashable)

#: When several filter keys are given, the index uses the one with the fewest
#: values; ties go to the key whose buckets are emptier, then to the key listed
#: first (tasks are the narrowest resource).
KEY_PRIORITY = ("taskId", "agentId", "workflowId", "repository")


class PatternError(ValueError):
    """An event pattern that names no event type."""


def expand_patterns(patterns: Iterable[str], event_types: Sequence[str]) -> frozenset[str]:
    """Concrete event types matched by exact names or prefix globs (`agent_*`, `*`)."""
    known = set(event_types)
    types: set[str] = set()
    for pattern in patterns:
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            matched = [t for t in event_types if t.startswith(prefix)]
            if not matched:
                raise PatternError(f"pattern {pattern[:64]!r} matches no event type")
            types.update(matched)
        elif pattern in known:
            types.add(pattern)
        else:
            raise PatternError(f"{pattern[:64]!r} is not an event type one can subscribe to")
    result = frozenset(types)
    if len(_interned_types) < _INTERN_MAX:  # the same few type sets, shared by thousands of subscriptions
        return _interned_types.setdefault(result, result)
    return _interned_types.get(result, result)


#: Equal type sets share one frozenset (a few hundred bytes per subscription otherwise).
#: Bounded: past `_INTERN_MAX` distinct sets, new ones are simply not shared.
_interned_types: dict[frozenset[str], frozenset[str]] = {}
_INTERN_MAX = 4096


def normalise_filters(filters: Mapping[str, object] | None) -> dict[str, frozenset[str]]:
    """`{"agentId": "a"}` and `{"agentId": ["a"]}` both become `{"agentId": frozenset({"a"})}`."""
    result: dict[str, frozenset[str]] = {}
    for key, value in (filters or {}).items():
        values = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        result[key] = frozenset(str(v) for v in values)
    return result


@dataclass(slots=True, eq=False)
class Subscription(Generic[Owner]):
    id: str
    owner: Owner
    patterns: tuple[str, ...]
    types: frozenset[str]
    filters: dict[str, frozenset[str]]

    def matches(self, event_type: str, data: Mapping[str, object]) -> bool:
        if event_type not in self.types:
            return False
        for key, values in self.filters.items():
            # Values are only ever strings; a list or dict in `data` (extra fields
            # are allowed) is unhashable and must not reach the set lookup.
            value = data.get(key)
            if not isinstance(value, str) or value not in values:
                return False
        return True

    def describe(self) -> dict[str, object]:
        """The normalised form sent back in `subscription_update`."""
        return {
            "events": list(self.patterns),
            "filters": {k: sorted(v) for k, v in sorted(self.filters.items())},
        }

    def index_key(self) -> str | None:
        """The key this subscription is most selective on by itself: fewest values,
        then `KEY_PRIORITY`. The index may use another key with as few values
        whose buckets are emptier (`SubscriptionIndex._choose_key`)."""
        if not self.filters:
            return None
        return min(
            self.filters,
            key=lambda k: (len(self.filters[k]), KEY_PRIORITY.index(k) if k in KEY_PRIORITY else 99),
        )


class SubscriptionIndex(Generic[Owner]):
    def __init__(self) -> None:
        self._subs: dict[str, Subscription[Owner]] = {}
        self._by_owner: dict[Owner, dict[str, Subscription[Owner]]] = {}
        # Unfiltered: type -> owner -> number of that owner's unfiltered subs for the type.
        self._unfiltered: dict[str, dict[Owner, int]] = {}
        self._unfiltered_snapshot: dict[str, tuple[Owner, ...]] = {}
        # Filtered: (type, key, value) -> subscriptions.
        self._filtered: dict[tuple[str, str, str], dict[str, Subscription[Owner]]] = {}
        self._filtered_keys_by_type: dict[str, dict[str, int]] = {}
        # Filtered subscription id -> the key it is indexed under (chosen at add).
        self._index_keys: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, sub_id: str) -> Subscription[Owner] | None:
        return self._subs.get(sub_id)

    def of_owner(self, owner: Owner) -> list[Subscription[Owner]]:
        return list(self._by_owner.get(owner, {}).values())

    def count_of(self, owner: Owner) -> int:
        return len(self._by_owner.get(owner, ()))

    def add(self, sub: Subscription[Owner]) -> None:
        if sub.id in self._subs:
            raise ValueError(f"duplicate subscription id {sub.id}")
        self._subs[sub.id] = sub
        self._by_owner.setdefault(sub.owner, {})[sub.id] = sub
        key = self._choose_key(sub)
        if key is not None:
            self._index_keys[sub.id] = key
        for event_type in sub.types:
            if key is None:
                owners = self._unfiltered.setdefault(event_type, {})
                owners[sub.owner] = owners.get(sub.owner, 0) + 1
                self._unfiltered_snapshot.pop(event_type, None)
            else:
                keys = self._filtered_keys_by_type.setdefault(event_type, {})
                keys[key] = keys.get(key, 0) + 1
                for value in sub.filters[key]:
                    self._filtered.setdefault((event_type, key, value), {})[sub.id] = sub

    def remove(self, sub_id: str) -> Subscription[Owner] | None:
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return None
        owned = self._by_owner.get(sub.owner)
        if owned is not None:
            owned.pop(sub_id, None)
            if not owned:
                del self._by_owner[sub.owner]
        key = self._index_keys.pop(sub_id, None)
        for event_type in sub.types:
            if key is None:
                owners = self._unfiltered[event_type]
                left = owners[sub.owner] - 1
                if left:
                    owners[sub.owner] = left
                else:
                    del owners[sub.owner]
                    if not owners:
                        del self._unfiltered[event_type]
                self._unfiltered_snapshot.pop(event_type, None)
            else:
                keys = self._filtered_keys_by_type[event_type]
                keys[key] -= 1
                if not keys[key]:
                    del keys[key]
                    if not keys:
                        del self._filtered_keys_by_type[event_type]
                for value in sub.filters[key]:
                    bucket = self._filtered[(event_type, key, value)]
                    bucket.pop(sub.id, None)
                    if not bucket:
                        del self._filtered[(event_type, key, value)]
        return sub

    def _choose_key(self, sub: Subscription[Owner]) -> str | None:
        if not sub.filters:
            return None

        def cost(key: str) -> tuple[int, int, int]:
            values = sub.filters[key]
            crowd = sum(len(self._filtered.get((t, key, v), ())) for t in sub.types for v in values)
            return (len(values), crowd, KEY_PRIORITY.index(key) if key in KEY_PRIORITY else 99)

        return min(sub.filters, key=cost)

    def remove_owner(self, owner: Owner) -> list[Subscription[Owner]]:
        return [s for s in (self.remove(i) for i in list(self._by_owner.get(owner, {}))) if s]

    def match(self, event_type: str, data: Mapping[str, object]) -> Sequence[Owner]:
        """Owners with at least one matching subscription, each once."""
        unfiltered = self._unfiltered_snapshot.get(event_type)
        if unfiltered is None:
            owners = self._unfiltered.get(event_type)
            unfiltered = tuple(owners) if owners else ()
            if owners:  # only cache live entries: the cache must not outlive the subscriptions
                self._unfiltered_snapshot[event_type] = unfiltered
        keys = self._filtered_keys_by_type.get(event_type)
        if not keys:
            return unfiltered
        extra: dict[Owner, None] = {}
        unfiltered_owners = self._unfiltered.get(event_type, {})
        for key in keys:
            value = data.get(key)
            if not isinstance(value, str):
                continue
            bucket = self._filtered.get((event_type, key, value))
            if not bucket:
                continue
            for sub in bucket.values():
                if sub.owner in unfiltered_owners or sub.owner in extra:
                    continue
                if sub.matches(event_type, data):
                    extra[sub.owner] = None
        if not extra:
            return unfiltered
        return unfiltered + tuple(extra)

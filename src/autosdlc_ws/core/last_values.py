"""The last-value store behind "snapshot on subscribe": pure, no I/O, injected clock.

For every (event type, resource) the store keeps the newest event and its log
offset. The *resource* of an event is the first of `agentId`, `workflowId`,
`taskId`, `repository` present in its data, else the type alone (CONTRACT
§11), so `agent_status` of agent a1 replaces the previous `agent_status` of
a1, and a `system_notification` replaces the previous one.

A snapshot request never scans the store: entries are indexed by type and by
every resource value their event carries (an `agent_tdd_*` event of agent a1
on task t7 is found under `agentId=a1` and under `taskId=t7`). A request with
filters looks up the values of ONE filter key (the one with the fewest
values), one without filters looks up its types; the candidates are then
checked against the whole subscription. The work is the number of lookups
plus the entries found, whatever the store holds.

Retention: at most `max_keys` entries (the oldest, by offset, go first) and
none older than `ttl_s`. The Redis broker keeps the same entries, with the
same keys and index tags (`store_key`, `index_tags`), inside its PUBLISH
script; this module is the memory broker's store and the shared vocabulary.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

#: The keys that name an event's resource, in the order the contract picks them.
RESOURCE_ORDER: tuple[str, ...] = ("agentId", "workflowId", "taskId", "repository")

Filters = Mapping[str, frozenset[str]]


def index_tags(data: Mapping[str, object]) -> tuple[str, ...]:
    """One tag per resource value in `data`, in `RESOURCE_ORDER`: `agentId="a1"`.

    The value is JSON-encoded so a tag is unambiguous whatever the id holds
    (quotes and control characters are escaped): the Redis index finds a tag by
    prefix, and `agentId="a1"` must never be a prefix of another value's tag.
    Runs on every publish, hence the plain loop."""
    tags: list[str] = []
    for key in RESOURCE_ORDER:
        value = data.get(key)
        if value.__class__ is str:
            tags.append(tag(key, value))
    return tuple(tags)


def tag(key: str, value: str) -> str:
    # The JSON string of `value`, as orjson writes it, without the call for the
    # usual id (no quote, backslash or control character: nothing to escape).
    if value.isprintable() and '"' not in value and "\\" not in value:
        return key + '="' + value + '"'
    return key + "=" + orjson.dumps(value).decode()


def store_key(event_type: str, data: Mapping[str, object]) -> str:
    """`<type>|<first resource tag>`, or `<type>|` for an event without a resource."""
    tags = index_tags(data)
    return event_type + "|" + (tags[0] if tags else "")


def type_of_key(key: str) -> str:
    return key.partition("|")[0]


def lookup_plan(types: Iterable[str], filters: Filters) -> tuple[str, list[str]]:
    """What to look up for a subscription: ("tag", tags of one filter key) or ("type", types).

    With filters every match carries each filtered key, so the values of any
    one key find all matches; the key with the fewest values does the least work."""
    if filters:
        key = min(filters, key=lambda k: (len(filters[k]), RESOURCE_ORDER.index(k)
                                          if k in RESOURCE_ORDER else len(RESOURCE_ORDER)))
        return "tag", [tag(key, value) for value in sorted(filters[key])]
    return "type", sorted(types)


def matches(types: frozenset[str], filters: Filters, event: Mapping[str, Any]) -> bool:
    """Does a subscription of `types` and `filters` match `event` (same rule as live delivery)?"""
    if event.get("type") not in types:
        return False
    data = event.get("data")
    if not isinstance(data, dict):
        return False
    for key, values in filters.items():
        value = data.get(key)
        if not isinstance(value, str) or value not in values:
            return False
    return True


def still_live(event: Mapping[str, Any], covered: bool, types: frozenset[str], filters: Filters) -> bool:
    """Is a live event held back while a snapshot was read still to be sent after it?

    Not when the snapshot covers it: a log event at or below the snapshot's
    position (`covered`; local alerts never are) that the subscription matches
    is in the snapshot, or superseded there by a newer one that the client
    must not see overtaken by an older one."""
    return not covered or not matches(types, filters, event)


def as_snapshot(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `event` marked `metadata.snapshot: true` (the stored event is not touched)."""
    return {**event, "metadata": {**(event.get("metadata") or {}), "snapshot": True}}


@dataclass(slots=True)
class LastValue:
    key: str
    tags: tuple[str, ...]
    offset: int
    stored_at: float
    event: dict[str, Any]


class LastValues:
    """Newest event per (type, resource), bounded by `max_keys` and `ttl_s`.

    `max_keys == 0` turns the store off: nothing is kept, every snapshot is empty."""

    def __init__(self, *, max_keys: int = 100_000, ttl_s: float = 86_400.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.ttl_s = ttl_s
        self._clock = clock
        #: key -> entry, oldest offset first (a replaced key moves to the end)
        self._entries: OrderedDict[str, LastValue] = OrderedDict()
        self._by_type: dict[str, set[str]] = {}
        self._by_tag: dict[str, set[str]] = {}
        self._next_ttl_check = 0.0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, offset: int, event: dict[str, Any]) -> None:
        """Record `event` (at log `offset`) as the newest of its (type, resource).

        On every publish: an agent reporting again (same key, same tags) costs a
        move to the end of the order and three assignments."""
        if self.max_keys <= 0:
            return
        data = event.get("data")
        if not isinstance(data, dict):
            return
        event_type = str(event.get("type"))
        tags = index_tags(data)
        key = event_type + "|" + (tags[0] if tags else "")
        now = self._clock()
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            entries[key] = LastValue(key, tags, offset, now, event)
            self._by_type.setdefault(event_type, set()).add(key)
            self._index_tags(key, tags)
            if len(entries) > self.max_keys or now >= self._next_ttl_check:
                self._evict(now)
            return
        entries.move_to_end(key)
        entry.offset, entry.stored_at, entry.event = offset, now, event
        if entry.tags != tags:
            self._unindex_tags(entry)
            entry.tags = tags
            self._index_tags(key, tags)
        if now >= self._next_ttl_check:
            self._evict(now)

    def lookup(self, types: frozenset[str], filters: Filters) -> list[LastValue]:
        """The entries a subscription matches, oldest offset first."""
        self._evict(self._clock())
        kind, names = lookup_plan(types, filters)
        index = self._by_tag if kind == "tag" else self._by_type
        found: list[LastValue] = []
        seen: set[str] = set()
        for name in names:
            for key in index.get(name, ()):
                if key in seen:
                    continue
                seen.add(key)
                entry = self._entries[key]
                if matches(types, filters, entry.event):
                    found.append(entry)
        found.sort(key=lambda e: e.offset)
        return found

    def _index_tags(self, key: str, tags: tuple[str, ...]) -> None:
        for t in tags:
            self._by_tag.setdefault(t, set()).add(key)

    def _evict(self, now: float) -> None:
        """Drop past `max_keys` and past the TTL (the oldest first). Between
        lookups, expiry is checked at most once a second of the clock."""
        self._next_ttl_check = now + 1.0
        entries = self._entries
        oldest_allowed = now - self.ttl_s
        while entries:
            entry = next(iter(entries.values()))
            if len(entries) <= self.max_keys and entry.stored_at >= oldest_allowed:
                return
            self._remove(entry)

    def _remove(self, entry: LastValue) -> None:
        del self._entries[entry.key]
        self._unindex_tags(entry)
        event_type = type_of_key(entry.key)
        keys = self._by_type.get(event_type)
        if keys is not None:
            keys.discard(entry.key)
            if not keys:
                del self._by_type[event_type]

    def _unindex_tags(self, entry: LastValue) -> None:
        for t in entry.tags:
            keys = self._by_tag.get(t)
            if keys is not None:
                keys.discard(entry.key)
                if not keys:
                    del self._by_tag[t]

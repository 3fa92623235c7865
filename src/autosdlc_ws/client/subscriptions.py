"""The client's subscription registry: what the caller subscribed to, under the id
`subscribe()` returned, and the id the server knows it by (which changes when a lost
session forces a re-subscribe)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Filters = dict[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """A subscription as the caller knows it; `server_id` changes after a lost session."""

    id: str
    events: tuple[str, ...]
    filters: Filters
    server_id: str | None


@dataclass(slots=True)
class Subscription:
    """One subscription: `caller_id` is set once the server first confirmed it (its id then),
    `server_id` is None while a re-subscribe is in flight."""

    caller_id: str | None
    server_id: str | None
    events: tuple[str, ...]
    filters: Filters
    # Ask for the current state on (re-)subscribe (protocol 1.1). A resumed session gets
    # history instead; a lost session's re-subscribe asks again, so nothing is stale.
    snapshot: bool = False

    def request_data(self) -> dict[str, Any]:
        """The `data` of the `subscribe` request that creates it on the server."""
        data: dict[str, Any] = {"events": list(self.events)}
        if self.filters:
            data["filters"] = self.filters
        if self.snapshot:
            data["snapshot"] = True
        return data

    def info(self) -> SubscriptionInfo:
        assert self.caller_id is not None
        return SubscriptionInfo(self.caller_id, self.events, dict(self.filters), self.server_id)


def normalise_filters(filters: Mapping[str, str | Sequence[str]] | None) -> Filters:
    """Filter values as the wire has them: a string or a list of strings."""
    out: Filters = {}
    for key, value in (filters or {}).items():
        out[key] = value if isinstance(value, str) else list(value)
    return out


class SubscriptionRegistry:
    """Confirmed subscriptions by caller id, found also by their server id."""

    def __init__(self) -> None:
        self._by_caller_id: dict[str, Subscription] = {}

    def __len__(self) -> int:
        return len(self._by_caller_id)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(list(self._by_caller_id.values()))

    def __contains__(self, caller_id: object) -> bool:
        return caller_id in self._by_caller_id

    def caller_ids(self) -> tuple[str, ...]:
        return tuple(self._by_caller_id)

    def add(self, sub: Subscription) -> None:
        assert sub.caller_id is not None
        self._by_caller_id[sub.caller_id] = sub

    def pop(self, caller_id: str | None) -> Subscription | None:
        return self._by_caller_id.pop(caller_id, None) if caller_id is not None else None

    def by_server_id(self, server_id: str) -> Subscription | None:
        for sub in self._by_caller_id.values():
            if sub.server_id == server_id:
                return sub
        return None

    def server_ids(self) -> set[str]:
        return {s.server_id for s in self._by_caller_id.values() if s.server_id is not None}

    def infos(self) -> dict[str, SubscriptionInfo]:
        return {cid: sub.info() for cid, sub in self._by_caller_id.items()}


#: The design document's short names for an agent's events (`subscribe_to_agent`).
AGENT_EVENT_NAMES: dict[str, str] = {
    "status": "agent_status", "task_update": "agent_task_update", "logs": "agent_log",
    "log": "agent_log", "metrics": "agent_metric", "metric": "agent_metric",
    "errors": "agent_error", "error": "agent_error",
}


def agent_event_type(name: str) -> str:
    """A full event type (or glob) for a short name; full types and globs pass unchanged."""
    return AGENT_EVENT_NAMES.get(name, name)

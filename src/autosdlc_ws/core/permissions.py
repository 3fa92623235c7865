"""Permissions: the `<action>:<resource>` grammar and the read/publish checks.

A permission is `<action>:<resource>`; action is `read`, `publish` or `admin`
(admin implies read and publish on the same resource); resource is `*`,
`agent:<id>`, `task:<id>`, `workflow:<id>`, `repo:<owner/name>` or `system`,
where `<id>` may be `*`.

An event's resources are one per resource key present in its `data`
(`agentId` -> `agent:<id>`, ...), plus `system` for the system category or
when it carries no resource key. A connection may read an event when it may
read *any* of the event's resources: an agent's watcher sees that agent's TDD
events even though they also name a task. Publishing is stricter: it needs
`publish` on *every* resource the event names (see `may_publish_event`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from autosdlc_ws.core.resources import KIND_OF_KEY, RESOURCE_KINDS

ACTIONS = ("read", "publish", "admin")
SYSTEM_TYPES = frozenset({"system_notification", "system_alert", "deployment_status"})
_REPO_RE = re.compile(r"[^/\s]+/[^/\s]+")


class PermissionSyntaxError(ValueError):
    """A permission string that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class Permission:
    action: str
    kind: str  # "*", "system", or one of RESOURCE_KINDS
    ident: str  # "*" or the id; "" for "*" and "system"

    @classmethod
    def parse(cls, text: str) -> Permission:
        action, sep, resource = text.partition(":")
        if not sep or action not in ACTIONS:
            raise PermissionSyntaxError(
                f"permission {text!r} must be <action>:<resource> with action one of {ACTIONS}"
            )
        if resource in ("*", "system"):
            return cls(action, resource, "")
        kind, sep, ident = resource.partition(":")
        if not sep or kind not in RESOURCE_KINDS or not ident:
            raise PermissionSyntaxError(
                f"permission {text!r}: resource must be *, system, agent:<id>, task:<id>, "
                "workflow:<id> or repo:<owner/name>"
            )
        # Same shape as the `repository` key of events (messages.Repository):
        # "octo/" or "/repo" could never match an event, so they are typos.
        if kind == "repo" and ident != "*" and not _REPO_RE.fullmatch(ident):
            raise PermissionSyntaxError(f"permission {text!r}: repo must be owner/name or *")
        return cls(action, kind, ident)

    def __str__(self) -> str:
        if self.kind in ("*", "system"):
            return f"{self.action}:{self.kind}"
        return f"{self.action}:{self.kind}:{self.ident}"


def parse_permissions(items: Iterable[str]) -> tuple[Permission, ...]:
    return tuple(Permission.parse(item) for item in items)


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str  # "system" or one of RESOURCE_KINDS
    ident: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "system" else f"{self.kind}:{self.ident}"


SYSTEM = Resource("system")


_GRANTS_CACHE_SIZE = 4096
_GRANTS_CACHE: dict[tuple[str, ...], Grants] = {}


@dataclass(slots=True)
class Grants:
    """The permissions of one principal, indexed for O(1) checks per resource."""

    permissions: tuple[Permission, ...]
    # action -> set of (kind, ident) pairs granted; ("*", "") means everything.
    _by_action: dict[str, set[tuple[str, str]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for perm in self.permissions:
            actions = ("read", "publish", "admin") if perm.action == "admin" else (perm.action,)
            for action in actions:
                self._by_action.setdefault(action, set()).add((perm.kind, perm.ident))

    @classmethod
    def from_strings(cls, items: Iterable[str]) -> Grants:
        """Grants for a permission list; equal lists share one (read-only) object,
        so 10,000 connections holding the same token's permissions cost one."""
        key = tuple(items)
        grants = _GRANTS_CACHE.get(key)
        if grants is None:
            grants = cls(parse_permissions(key))
            if len(_GRANTS_CACHE) >= _GRANTS_CACHE_SIZE:
                _GRANTS_CACHE.pop(next(iter(_GRANTS_CACHE)))
            _GRANTS_CACHE[key] = grants
        return grants

    def allows(self, action: str, resource: Resource) -> bool:
        granted = self._by_action.get(action)
        if not granted:
            return False
        if ("*", "") in granted:
            return True
        if resource.kind == "system":
            return ("system", "") in granted
        return (resource.kind, "*") in granted or (resource.kind, resource.ident) in granted

    def allows_kind(self, action: str, kind: str) -> bool:
        """May `action` be done on every resource of this kind?"""
        granted = self._by_action.get(action)
        if not granted:
            return False
        if ("*", "") in granted:
            return True
        if kind == "system":
            return ("system", "") in granted
        return (kind, "*") in granted

    def has_any(self, action: str) -> bool:
        return bool(self._by_action.get(action))

    def strings(self) -> list[str]:
        return [str(p) for p in self.permissions]


def event_resources(event_type: str, data: Mapping[str, object]) -> list[Resource]:
    """The resources an event is about, as the permission check sees them."""
    resources: list[Resource] = []
    for key, kind in KIND_OF_KEY.items():
        value = data.get(key)
        if isinstance(value, str):
            resources.append(Resource(kind, value))
    if not resources or event_type in SYSTEM_TYPES:
        resources.append(SYSTEM)
    return resources


def may_read_event(grants: Grants, event_type: str, data: Mapping[str, object]) -> bool:
    """Readable when any of the event's resources is readable."""
    return any(grants.allows("read", r) for r in event_resources(event_type, data))


def may_publish_event(grants: Grants, event_type: str, data: Mapping[str, object]) -> bool:
    """Publishing needs `publish` on every resource the event names.

    Stricter than reading on purpose: with an any-of rule a publisher allowed
    on one agent could add that agent's id to a `system_alert` and reach every
    `read:system` subscriber, or add a `workflowId` to reach a workflow's
    watchers."""
    return all(grants.allows("publish", r) for r in event_resources(event_type, data))


def may_access_event(grants: Grants, action: str, event_type: str, data: Mapping[str, object]) -> bool:
    if action == "publish":
        return may_publish_event(grants, event_type, data)
    return any(grants.allows(action, r) for r in event_resources(event_type, data))


def may_subscribe(
    grants: Grants,
    types: Iterable[str],
    filters: Mapping[str, frozenset[str]],
    required_key: Mapping[str, str | None],
) -> str | None:
    """None when every event the subscription can match is readable, else the reason.

    With filters, every matching event carries each filtered key with one of the
    listed values, so the subscription is safe when some filtered key has all its
    values readable. Without a usable filter, each type needs read on the whole
    kind of its required resource key (or on `system` for system types).
    """
    for key, values in filters.items():
        kind = KIND_OF_KEY[key]
        if all(grants.allows("read", Resource(kind, v)) for v in values):
            return None
    for event_type in types:
        required = required_key.get(event_type)
        if required is not None and grants.allows_kind("read", KIND_OF_KEY[required]):
            continue
        if event_type in SYSTEM_TYPES and grants.allows("read", SYSTEM):
            continue
        if grants.allows_kind("read", "*"):
            continue
        if filters:
            return f"no read permission on every resource the filters {dict(_sorted(filters))} allow"
        needed = f"{KIND_OF_KEY[required]}:*" if required is not None else "system"
        return f"subscribing to {event_type} without a filter needs read:{needed}"
    return None


def _sorted(filters: Mapping[str, frozenset[str]]) -> list[tuple[str, list[str]]]:
    return [(k, sorted(v)) for k, v in sorted(filters.items())]

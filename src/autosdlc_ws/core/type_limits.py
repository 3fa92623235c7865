"""Rate limits per message type (config `rate_limits`), as plain decisions.

The operator names message types (a client request such as `subscribe`, or an
event type) with a token bucket each: `{per_s, burst}`. Every identity has its
own bucket per named type, kept by the shared limits (`SharedLimits.take_tokens`)
so all its connections on every worker, and its HTTP publishes, draw from it.
This module holds what needs no I/O: reading the config value, the bucket key
of a (type, identity), what an HTTP batch costs per type, and the bounded
metric label. The buckets themselves are `core.ratelimit` (memory) or the
broker's script (Redis).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from autosdlc_ws.core.messages import CLIENT_CONTROL_TYPES, EVENT_TYPES

#: Types `rate_limits` may name: what a client sends (requests and events).
LIMITABLE_TYPES: frozenset[str] = frozenset(CLIENT_CONTROL_TYPES) | frozenset(EVENT_TYPES)
#: Metric label of every type without a configured limit (keeps label values bounded).
OTHER_LABEL = "other"
#: Key prefix of the per-type buckets in the shared limits.
KEY_PREFIX = "type:"


class RateLimitsError(ValueError):
    """A `rate_limits` entry that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class TypeLimit:
    """One message type's bucket: `burst` messages at once, refilled at `per_s`."""

    per_s: float
    burst: float


@dataclass(frozen=True, slots=True)
class Charge:
    """Take `cost` tokens from bucket `key` (rate `per_s`, size `burst`)."""

    type: str
    key: str
    per_s: float
    burst: float
    cost: int = 1


def _number(type_: str, name: str, value: object) -> float:
    # bool is an int in Python, but `per_s = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RateLimitsError(f"rate_limits.{type_}.{name}: {value!r} is not a number")
    return float(value)


def parse_rate_limits(raw: object) -> dict[str, TypeLimit]:
    """The `rate_limits` config value (a mapping, or its JSON text from the
    environment; parsed `TypeLimit` values pass through) as type -> limit.

    `RateLimitsError` names the bad entry: a typo in a type name would
    otherwise leave that type unlimited without a word."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise RateLimitsError(f"rate_limits: not valid JSON ({exc})") from None
    if not isinstance(raw, Mapping):
        raise RateLimitsError("rate_limits: expected a table of message type -> {per_s, burst}")
    limits: dict[str, TypeLimit] = {}
    for type_, entry in raw.items():
        if isinstance(entry, TypeLimit):  # already parsed (Settings built in code)
            entry = {"per_s": entry.per_s, "burst": entry.burst}
        if type_ not in LIMITABLE_TYPES:
            raise RateLimitsError(
                f"rate_limits: {type_!r} is not a message type a client sends "
                "(a client request: auth_request, ping, subscribe, unsubscribe; or an event type)")
        if not isinstance(entry, Mapping):
            raise RateLimitsError(f"rate_limits.{type_}: expected {{per_s, burst}}, got {entry!r}")
        extra = sorted(set(entry) - {"per_s", "burst"})
        missing = sorted({"per_s", "burst"} - set(entry))
        if extra or missing:
            problems = [f"unknown keys {', '.join(extra)}"] if extra else []
            problems += [f"missing {', '.join(missing)}"] if missing else []
            what = "; ".join(problems)
            raise RateLimitsError(f"rate_limits.{type_}: {what}")
        per_s = _number(type_, "per_s", entry["per_s"])
        burst = _number(type_, "burst", entry["burst"])
        if per_s <= 0:
            raise RateLimitsError(f"rate_limits.{type_}.per_s must be positive, got {per_s:g}")
        if burst < 1:
            raise RateLimitsError(f"rate_limits.{type_}.burst must be at least 1, got {burst:g}")
        limits[type_] = TypeLimit(per_s, burst)
    return limits


class TypeLimits:
    """The configured per-type limits: which bucket a message is charged to."""

    __slots__ = ("_limits",)

    def __init__(self, limits: Mapping[str, TypeLimit]) -> None:
        self._limits = dict(limits)

    def __bool__(self) -> bool:
        return bool(self._limits)

    def __contains__(self, type_: object) -> bool:
        return type_ in self._limits

    def charge(self, type_: str, identity: str, cost: int = 1) -> Charge | None:
        """The bucket `type_` messages from `identity` draw from; None when unlimited."""
        limit = self._limits.get(type_)
        if limit is None:
            return None
        return Charge(type_, f"{KEY_PREFIX}{type_}:{identity}", limit.per_s, limit.burst, cost)

    def batch_charges(self, types: Iterable[str], identity: str) -> list[Charge]:
        """One charge per limited type of a batch, costing its number of events
        (in first-seen order, so the answer does not depend on set ordering)."""
        counts = Counter(types)
        return [c for t, n in counts.items() if (c := self.charge(t, identity, n)) is not None]

    def label(self, type_: str) -> str:
        """Metric label: the type when it has a limit, else `other` (bounded)."""
        return type_ if type_ in self._limits else OTHER_LABEL

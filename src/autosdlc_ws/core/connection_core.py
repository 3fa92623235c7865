"""One connection's protocol state machine, without I/O.

The I/O layer feeds it frames, the current time and deadline ticks; it answers
with a list of actions (frames to send, subscriptions to add or drop, events
to publish, a close code). Everything the contract says about a session that
is not moving bytes lives here, so it is tested with plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autosdlc_ws import PROTOCOL_VERSION
from autosdlc_ws.config import Settings
from autosdlc_ws.core import messages
from autosdlc_ws.core.auth import Authenticator, Credentials, Principal
from autosdlc_ws.core.envelope import make_message, new_id, parse_frame
from autosdlc_ws.core.permissions import may_access_event, may_read_event, may_subscribe
from autosdlc_ws.core.ratelimit import TokenBucket
from autosdlc_ws.core.subscriptions import (
    PatternError,
    Subscription,
    expand_patterns,
    normalise_filters,
)
from autosdlc_ws.core.type_limits import Charge, TypeLimits
from autosdlc_ws.errors import (
    AuthenticationError,
    CloseCode,
    Forbidden,
    InvalidMessage,
    NotFound,
    ProtocolError,
    RateLimited,
    Unauthorized,
)

# --- actions: what the I/O layer must do ----------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class AddSubscription:
    subscription: Subscription[Any]


@dataclass(frozen=True, slots=True)
class RemoveSubscription:
    subscription_id: str


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    """Send `subscription`'s snapshot (`subscribe.data.snapshot: true`): always
    right after the subscription was added and its `subscription_update` sent,
    so the I/O layer can hold back its live events until the snapshot is out."""

    subscription: Subscription[Any]


@dataclass(frozen=True, slots=True)
class Publish:
    event: dict[str, Any]
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class AuthAccepted:
    """Credentials verified in-band; the I/O layer checks caps, may resume, then
    calls `finish_auth` (first authentication) or nothing more (refresh)."""

    principal: Principal
    resume_session_id: str | None
    last_event_id: str | None
    first: bool
    correlation_id: str | None = None  # the auth_request's id, for the replies


@dataclass(frozen=True, slots=True)
class CheckTypeLimit:
    """The message's type has a limit per identity (config `rate_limits`), kept by
    the shared limits: the I/O layer takes `charge` and hands the answer to
    `type_limit_answer`, which handles the message or refuses it."""

    charge: Charge
    message: dict[str, Any]
    correlation_id: str | None


Action = (Send | Close | AddSubscription | RemoveSubscription | SendSnapshot | Publish | AuthAccepted
          | CheckTypeLimit)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """What survives a disconnect: enough to restore a subscription on resume."""

    id: str
    events: tuple[str, ...]
    filters: dict[str, tuple[str, ...]]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "events": list(self.events), "filters": {k: list(v) for k, v in self.filters.items()}}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SubscriptionRecord:
        return cls(str(obj["id"]), tuple(obj["events"]), {k: tuple(v) for k, v in obj["filters"].items()})


@dataclass(slots=True)
class _Limits:
    publish: TokenBucket
    control: TokenBucket
    violations: int = 0


@dataclass(slots=True)
class ConnectionCore:
    settings: Settings
    authenticator: Authenticator
    connection_id: str
    session_id: str
    opened_at_ms: int
    principal: Principal | None = None
    gzip: bool = False
    batch: bool = False  # batched frames (protocol 1.1 opt-in): events may share a JSON-array frame
    owner: Any = None  # the I/O object subscriptions point at (hub delivers to it)
    subscriptions: dict[str, Subscription[Any]] = field(default_factory=dict)
    closed: bool = False
    last_type: str = "invalid"  # type of the last frame received (for per-type counters)
    _auth_failures: int = 0
    _limits: _Limits | None = None
    #: The I/O layer charges each publish to the identity's bucket in the broker
    #: (shared by every worker) and reports the answer to `identity_rate_limit`.
    identity_limit_external: bool = False
    type_limits: TypeLimits = field(default_factory=lambda: TypeLimits({}))

    def __post_init__(self) -> None:
        s = self.settings
        if not self.type_limits and s.rate_limits:
            self.type_limits = TypeLimits(s.rate_limits)
        self._limits = _Limits(
            TokenBucket(s.rate_publish_per_s, s.rate_publish_burst),
            TokenBucket(s.rate_control_per_s, s.rate_control_burst),
        )

    # --- opening -----------------------------------------------------------

    def connect_frame(self, now_ms: int, *, resumed: bool) -> dict[str, Any]:
        s = self.settings
        return make_message(
            "connect",
            {
                "connectionId": self.connection_id,
                "sessionId": self.session_id,
                "heartbeatInterval": int(s.heartbeat_interval_s * 1000),
                "protocolVersion": PROTOCOL_VERSION,
                "resumed": resumed,
                "limits": {
                    "maxFrameBytes": s.max_frame_bytes,
                    "maxDecompressedBytes": s.max_decompressed_bytes,
                    "maxSubscriptions": s.max_subscriptions_per_connection,
                    "gzipThresholdBytes": s.gzip_threshold_bytes,
                    "maxBatchBytes": s.max_batch_bytes,
                },
            },
            now_ms=now_ms,
        )

    def auth_success_frame(self, now_ms: int, correlation_id: str | None = None) -> dict[str, Any]:
        assert self.principal is not None
        return make_message(
            "auth_success",
            {
                "subject": self.principal.subject,
                "permissions": self.principal.grants.strings(),
                "expiresAt": self.principal.expires_at_ms,
            },
            now_ms=now_ms,
            correlation_id=correlation_id,
        )

    def restore(self, records: Iterable[SubscriptionRecord], now_ms: int) -> list[Action]:
        """Re-create a resumed session's subscriptions (same ids), one update each.

        A subscription the current credentials may no longer read is dropped
        with `status: "removed"` instead of being restored.
        """
        actions: list[Action] = []
        for record in records:
            try:
                sub = self._build_subscription(record.id, record.events, record.filters)
            except ProtocolError as exc:
                actions.append(Send(make_message(
                    "subscription_update",
                    {"subscriptionId": record.id, "status": "removed", "reason": exc.message},
                    now_ms=now_ms)))
                continue
            self.subscriptions[sub.id] = sub
            actions.append(AddSubscription(sub))
            actions.append(Send(make_message(
                "subscription_update",
                {"subscriptionId": sub.id, "status": "resumed", **sub.describe()},
                now_ms=now_ms)))
        return actions

    def records(self) -> list[SubscriptionRecord]:
        return [
            SubscriptionRecord(s.id, s.patterns, {k: tuple(sorted(v)) for k, v in s.filters.items()})
            for s in self.subscriptions.values()
        ]

    # --- deadlines ----------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        if self.closed:
            return None
        if self.principal is None:
            return self.opened_at_ms + int(self.settings.auth_timeout_s * 1000)
        return self.authenticator.expiry_deadline_ms(self.principal)

    def tick(self, now_ms: int) -> list[Action]:
        deadline = self.next_deadline_ms()
        if deadline is None or now_ms < deadline:
            return []
        if self.principal is None:
            return self._close(CloseCode.UNAUTHORIZED, "authentication timeout")
        return [
            Send(make_message("auth_failure", {"code": "token_expired",
                                               "message": "token expired; reconnect with a fresh token"},
                              now_ms=now_ms)),
            *self._close(CloseCode.TOKEN_EXPIRED, "token expired"),
        ]

    # --- incoming frames ----------------------------------------------------

    def receive(self, payload: str | bytes, *, binary: bool, now_ms: int, mono_s: float) -> list[Action]:
        if self.closed:
            return []
        correlation: str | None = None
        charged = False
        self.last_type = "invalid"
        try:
            msg = parse_frame(payload, binary=binary, max_decompressed=self.settings.max_decompressed_bytes,
                              max_depth=self.settings.max_json_depth)
            raw_id = msg.get("id")
            correlation = raw_id if isinstance(raw_id, str) and len(raw_id) <= 128 else None
            type_ = msg.get("type")
            if not isinstance(type_, str):
                self.last_type = "invalid"
                raise InvalidMessage("type must be a string", path="type")
            self.last_type = type_ if type_ in messages.MESSAGE_TYPES else "unknown"
            charged = True
            limited = self._rate_limit(type_, mono_s)
            if limited:
                return limited
            if self.principal is None and type_ != "auth_request":
                raise Unauthorized("authenticate first: send auth_request with a token or apiKey")
            if type_ in self.type_limits:
                return [self._type_limit_check(type_, msg, correlation)]
            return self._dispatch(type_, msg, correlation, now_ms)
        except ProtocolError as exc:
            error: ProtocolError = exc
            if not charged:  # frames that never parsed still cost a control token
                try:
                    limited = self._rate_limit("ping", mono_s)
                except RateLimited as limit:
                    error = limit  # answer the limit rather than the parse error
                else:
                    if limited:
                        return limited
            return [Send(make_message("error", error.to_data(), now_ms=now_ms, correlation_id=correlation))]

    def _identity_checks_follow(self, type_: str, *, after_type_limit: bool) -> bool:
        """Whether a bucket in the shared limits still has to admit this message
        (then that answer, not this one, ends a run of violations)."""
        if not after_type_limit and type_ in self.type_limits:
            return True
        return self.identity_limit_external and type_ in messages.EVENT_TYPES

    def _rate_limit(self, type_: str, mono_s: float) -> list[Action]:
        assert self._limits is not None
        bucket = self._limits.control if type_ in messages.CLIENT_CONTROL_TYPES else self._limits.publish
        wait_ms = bucket.take(mono_s)
        if not wait_ms:
            if not self._identity_checks_follow(type_, after_type_limit=False):
                self._limits.violations = 0
            return []
        self._limits.violations += 1
        if self._limits.violations >= self.settings.rate_violations_before_close:
            return self._close(CloseCode.POLICY, "rate limit exceeded repeatedly")
        raise RateLimited(f"too many {type_} messages; retry in {wait_ms} ms", retry_after_ms=wait_ms)

    def _type_limit_check(self, type_: str, msg: dict[str, Any], correlation: str | None) -> CheckTypeLimit:
        # Before authentication (auth_request) there is no identity yet: the
        # connection stands in for it, so a failed login is still counted.
        identity = self.principal.identity if self.principal else f"conn:{self.connection_id}"
        charge = self.type_limits.charge(type_, identity)
        assert charge is not None
        return CheckTypeLimit(charge, msg, correlation)

    def type_limit_answer(self, check: CheckTypeLimit, wait_ms: int, now_ms: int) -> list[Action]:
        """The per-type bucket's answer: the message is handled as usual when it was
        admitted (wait_ms 0), else refused like any other rate limit."""
        if self.closed:
            return []
        type_ = check.charge.type
        refused = self._shared_limit_answer(
            type_, wait_ms, check.correlation_id, now_ms,
            settles=not self._identity_checks_follow(type_, after_type_limit=True))
        if refused or wait_ms:
            return refused
        try:
            return self._dispatch(type_, check.message, check.correlation_id, now_ms)
        except ProtocolError as exc:
            return [Send(make_message("error", exc.to_data(), now_ms=now_ms, correlation_id=check.correlation_id))]

    def identity_rate_limit(self, type_: str, wait_ms: int, correlation: str | None,
                            now_ms: int) -> list[Action]:
        """The identity-wide bucket's answer for a publish (`identity_limit_external`):
        nothing when it was admitted (wait_ms 0), else `rate_limited`, or the close
        after `rate_violations_before_close` in a row."""
        return self._shared_limit_answer(type_, wait_ms, correlation, now_ms, settles=True)

    def _shared_limit_answer(self, type_: str, wait_ms: int, correlation: str | None, now_ms: int,
                             *, settles: bool) -> list[Action]:
        """Nothing when admitted (ending a run of violations if no check follows),
        else `rate_limited`, or the close after `rate_violations_before_close` in a row."""
        assert self._limits is not None
        if not wait_ms:
            if settles:
                self._limits.violations = 0
            return []
        self._limits.violations += 1
        if self._limits.violations >= self.settings.rate_violations_before_close:
            return self._close(CloseCode.POLICY, "rate limit exceeded repeatedly")
        exc = RateLimited(f"too many {type_} messages; retry in {wait_ms} ms", retry_after_ms=wait_ms)
        return [Send(make_message("error", exc.to_data(), now_ms=now_ms, correlation_id=correlation))]

    def _dispatch(self, type_: str, msg: dict[str, Any], correlation: str | None, now_ms: int) -> list[Action]:
        if type_ in messages.EVENT_TYPES:
            return self._publish(type_, msg, correlation, now_ms)
        if type_ not in messages.CLIENT_CONTROL_TYPES and type_ in messages.MESSAGE_TYPES:
            raise InvalidMessage(f"{type_} is sent by the server only", path="type")
        msg = prepare_event(msg, now_ms)  # requests may leave out id and timestamp
        messages.validate_message(msg)  # raises UnknownType for unknown types
        data: dict[str, Any] = msg["data"]
        if type_ == "ping":
            return [Send(make_message("pong", {}, now_ms=now_ms, correlation_id=correlation))]
        if type_ == "auth_request":
            return self._auth_request(data, correlation, now_ms)
        if type_ == "subscribe":
            return self._subscribe(data, correlation, now_ms)
        if type_ == "unsubscribe":
            return self._unsubscribe(data, correlation, now_ms)
        raise InvalidMessage(f"unhandled type {type_}", path="type")  # pragma: no cover

    # --- auth ---------------------------------------------------------------

    def _auth_request(self, data: dict[str, Any], correlation: str | None, now_ms: int) -> list[Action]:
        credentials = Credentials(token=data.get("token"), api_key=data.get("apiKey"))
        try:
            principal = self.authenticator.authenticate(credentials, now_ms)
            if not principal.grants.has_any("read"):
                raise AuthenticationError("credentials carry no read permission", code="forbidden")
            if self.principal is not None and principal.identity != self.principal.identity:
                raise AuthenticationError(
                    "a refreshed credential must be for the same subject", code="subject_mismatch")
        except AuthenticationError as exc:
            self._auth_failures += 1
            actions: list[Action] = [Send(make_message(
                "auth_failure", {"code": exc.code, "message": exc.message},
                now_ms=now_ms, correlation_id=correlation))]
            if self._auth_failures >= self.settings.max_auth_failures:
                actions += self._close(CloseCode.UNAUTHORIZED, "too many failed authentication attempts")
            return actions
        self._auth_failures = 0
        first = self.principal is None
        if data.get("compression") == "gzip" and first:
            self.gzip = True
        if data.get("compression") == "none" and first:
            self.gzip = False
        if data.get("batch") is True and first:
            self.batch = True
        self.principal = principal
        actions = [AuthAccepted(principal, data.get("sessionId") if first else None,
                                data.get("lastEventId") if first else None, first, correlation)]
        if not first:
            actions.append(Send(self.auth_success_frame(now_ms, correlation)))
            actions += self._drop_unreadable(now_ms)
        return actions

    def finish_auth(self, now_ms: int, *, resumed: bool, new_session_id: str | None = None,
                    correlation_id: str | None = None) -> list[Action]:
        """After in-band authentication: a fresh `connect` (it says whether the
        session resumed) then `auth_success`."""
        if new_session_id:
            self.session_id = new_session_id
        return [Send(self.connect_frame(now_ms, resumed=resumed)),
                Send(self.auth_success_frame(now_ms, correlation_id))]

    def reject_auth(self, code: str, message: str, close_code: int, now_ms: int,
                    correlation_id: str | None = None) -> list[Action]:
        """The I/O layer refused an authenticated connection (e.g. connection cap)."""
        self.principal = None
        return [Send(make_message("auth_failure", {"code": code, "message": message}, now_ms=now_ms,
                                  correlation_id=correlation_id)),
                *self._close(close_code, message)]

    def _drop_unreadable(self, now_ms: int) -> list[Action]:
        """After a refresh, keep only subscriptions the new grants still allow."""
        actions: list[Action] = []
        for sub in list(self.subscriptions.values()):
            if self._forbidden_reason(sub.types, sub.filters) is None:
                continue
            del self.subscriptions[sub.id]
            actions.append(RemoveSubscription(sub.id))
            actions.append(Send(make_message(
                "subscription_update",
                {"subscriptionId": sub.id, "status": "removed", "reason": "permission no longer granted"},
                now_ms=now_ms)))
        return actions

    # --- subscriptions ------------------------------------------------------

    def _forbidden_reason(self, types: frozenset[str], filters: dict[str, frozenset[str]]) -> str | None:
        assert self.principal is not None
        return may_subscribe(self.principal.grants, sorted(types), filters, messages.REQUIRED_RESOURCE_KEY)

    def _build_subscription(self, sub_id: str, events: Iterable[str],
                            raw_filters: Mapping[str, object] | None) -> Subscription[Any]:
        patterns = tuple(sorted(set(events)))
        try:
            types = expand_patterns(patterns, messages.EVENT_TYPES)
        except PatternError as exc:
            raise InvalidMessage(str(exc), path="data.events") from None
        filters = normalise_filters(raw_filters)
        reason = self._forbidden_reason(types, filters)
        if reason is not None:
            raise Forbidden(reason)
        return Subscription(sub_id, self.owner, patterns, types, filters)

    def _subscribe(self, data: dict[str, Any], correlation: str | None, now_ms: int) -> list[Action]:
        if len(self.subscriptions) >= self.settings.max_subscriptions_per_connection:
            raise Forbidden(
                f"subscription limit reached ({self.settings.max_subscriptions_per_connection} "
                "per connection); unsubscribe first")
        sub = self._build_subscription(new_id("sub"), data["events"], data.get("filters"))
        self.subscriptions[sub.id] = sub
        actions: list[Action] = [
            AddSubscription(sub),
            Send(make_message("subscription_update",
                              {"subscriptionId": sub.id, "status": "active", **sub.describe()},
                              now_ms=now_ms, correlation_id=correlation)),
        ]
        if data.get("snapshot") is True:
            actions.append(SendSnapshot(sub))
        return actions

    def may_read(self, event: Mapping[str, Any]) -> bool:
        """May this connection read `event` now (the per-event check of a snapshot)?"""
        data = event.get("data")
        return (self.principal is not None and isinstance(data, dict)
                and may_read_event(self.principal.grants, str(event.get("type")), data))

    def _unsubscribe(self, data: dict[str, Any], correlation: str | None, now_ms: int) -> list[Action]:
        sub_id = data["subscriptionId"]
        if self.subscriptions.pop(sub_id, None) is None:
            raise NotFound(f"no subscription {sub_id[:128]!r} on this connection")  # never echo 64 KiB
        return [
            RemoveSubscription(sub_id),
            Send(make_message("subscription_update", {"subscriptionId": sub_id, "status": "removed"},
                              now_ms=now_ms, correlation_id=correlation)),
        ]

    # --- publish --------------------------------------------------------------

    def _publish(self, type_: str, msg: dict[str, Any], correlation: str | None, now_ms: int) -> list[Action]:
        assert self.principal is not None
        event = prepare_event(msg, now_ms)
        messages.validate_message(event)
        if not may_access_event(self.principal.grants, "publish", type_, event["data"]):
            raise Forbidden(f"no publish permission for this {type_} event's resources")
        return [Publish(event, correlation)]

    def _close(self, code: int, reason: str) -> list[Action]:
        self.closed = True
        return [Close(code, reason)]


def prepare_event(msg: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """Fill in what a publisher may leave out (id, timestamp); keep everything else."""
    event = dict(msg)
    if "id" not in event:
        event["id"] = new_id("evt")
    if "timestamp" not in event:
        event["timestamp"] = now_ms
    return event

"""What the server's control frames mean to the client core: answers to requests,
subscriptions restored, lost or removed, and the resets that tell the application
events may be missing. No I/O: frames in, actions out, like `client.core`."""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

from autosdlc_ws.client.actions import (
    RESEND_TIMER,
    Action,
    Deliver,
    DeliverReset,
    ReportError,
    SendFrame,
    StartTimer,
)
from autosdlc_ws.client.errors import AutoSDLCError, RequestError
from autosdlc_ws.client.events import ResetData, ResetEvent, new_id
from autosdlc_ws.client.link import Link
from autosdlc_ws.client.outgoing import OutgoingFrames
from autosdlc_ws.client.requests import PendingRequest, RequestKind, dumps, new_request
from autosdlc_ws.client.stats import ClientStats
from autosdlc_ws.client.subscriptions import Subscription, SubscriptionRegistry, normalise_filters

log = logging.getLogger("autosdlc_ws.client")

ResetReason = Literal["session_not_resumed", "history_lost", "subscription_lost"]


class ReplyHost(Protocol):
    """What `Replies` needs from the core that owns it."""

    stats: ClientStats
    session_id: str | None
    last_event_id: str | None
    subs: SubscriptionRegistry
    outgoing: OutgoingFrames

    @property
    def adopting_resumed(self) -> bool: ...

    def answered(self, pending: PendingRequest, answer: dict[str, Any], now_ms: int) -> list[Action]: ...

    def rejected(self, pending: PendingRequest, error: AutoSDLCError, now_ms: int) -> list[Action]: ...

    def submit_internal(self, pending: PendingRequest) -> list[Action]: ...


class Replies:
    """Handles every control frame of an authenticated connection for its host core."""

    def __init__(self, host: ReplyHost) -> None:
        self._host = host

    def on_control(self, type_: str, frame: dict[str, Any], link: Link, now_ms: int) -> list[Action]:
        host = self._host
        data = frame.get("data")
        data = data if isinstance(data, dict) else {}
        metadata = frame.get("metadata")
        correlation = metadata.get("correlationId") if isinstance(metadata, dict) else None
        pending = host.outgoing.get(correlation) if isinstance(correlation, str) else None
        actions: list[Action] = []
        if type_ == "subscription_update":
            if data.get("status") == "resumed" and isinstance(data.get("subscriptionId"), str):
                link.confirmed.add(data["subscriptionId"])
            actions = self._on_subscription_update(data, pending, now_ms)
        elif type_ == "error":
            actions = self._on_error(data, pending, now_ms)
        elif type_ == "auth_success":
            if pending is not None:
                actions = host.answered(pending, frame, now_ms)
        elif type_ == "auth_failure":
            if pending is not None:
                actions = host.rejected(pending, RequestError(
                    str(data.get("code", "unauthorized")), str(data.get("message", "")), data=data), now_ms)
            else:
                log.warning("auth_failure from the gateway: %s", data.get("message"))
        elif type_ == "disconnect":
            link.disconnect = data
        elif type_ == "pong" and link.resume_check is not None and correlation == link.resume_check:
            actions = self._finish_resume_check(link, now_ms)
        actions.append(Deliver(type_, frame, False))
        return actions

    def _on_subscription_update(self, data: dict[str, Any], pending: PendingRequest | None,
                                now_ms: int) -> list[Action]:
        host = self._host
        server_id = data.get("subscriptionId")
        status = data.get("status")
        if not isinstance(server_id, str):
            return []
        if pending is not None and pending.kind in (RequestKind.SUBSCRIBE, RequestKind.RESUBSCRIBE) \
                and status == "active":
            sub = pending.sub
            assert sub is not None
            if pending.kind is RequestKind.RESUBSCRIBE and sub.caller_id not in host.subs:
                host.outgoing.forget(pending.id)
                return self._orphan(server_id, now_ms)  # unsubscribed while the re-subscribe was in flight
            sub.server_id = server_id
            if sub.caller_id is None:
                sub.caller_id = server_id
                host.subs.add(sub)
            return host.answered(pending, data, now_ms)
        if pending is not None:
            return host.answered(pending, data, now_ms)
        known = host.subs.by_server_id(server_id)
        if status in ("resumed", "active"):
            if known is None:
                if host.adopting_resumed and status == "resumed":  # resuming a session given to __init__
                    events = data.get("events") if isinstance(data.get("events"), list) else []
                    filters = data.get("filters") if isinstance(data.get("filters"), dict) else {}
                    host.subs.add(Subscription(server_id, server_id, tuple(events or ()),
                                               normalise_filters(filters)))
                else:
                    return self._orphan(server_id, now_ms)
        elif status == "removed":
            if known is not None and known.caller_id is not None:
                host.subs.pop(known.caller_id)
                return [ReportError(RequestError(
                    "removed", f"the server removed subscription {known.caller_id}: {data.get('reason', '')}",
                    data=data))]
        elif status == "reset":
            ids = (known.caller_id,) if known is not None and known.caller_id is not None else ()
            return self._reset("history_lost", host.session_id, ids,
                               str(data.get("reason") or "history unavailable"), now_ms)
        return []

    def _on_error(self, data: dict[str, Any], pending: PendingRequest | None, now_ms: int) -> list[Action]:
        host = self._host
        error = RequestError.from_data(data)
        if pending is None:
            return [ReportError(error)]
        if pending.kind is RequestKind.UNSUBSCRIBE and error.code == "not_found":
            return host.answered(pending, data, now_ms)  # already gone (e.g. the session was lost): done
        if pending.kind is RequestKind.ORPHAN:
            host.outgoing.forget(pending.id)
            return []
        if pending.kind is RequestKind.RESUBSCRIBE:
            if error.code == "rate_limited":
                pending.sent = False
                return [StartTimer(RESEND_TIMER + pending.id, (error.retry_after_ms or 1000) / 1000)]
            host.outgoing.forget(pending.id)
            host.subs.pop(pending.sub.caller_id if pending.sub is not None else None)
            return [ReportError(error)]
        return host.rejected(pending, error, now_ms)

    def _orphan(self, server_id: str, now_ms: int) -> list[Action]:
        """Remove a subscription the server has and the client does not want."""
        return self._host.submit_internal(new_request(
            RequestKind.ORPHAN, "unsubscribe", {"subscriptionId": server_id}, now_ms))

    def session_lost(self, previous_session: str, now_ms: int) -> list[Action]:
        """`resumed: false`: the server forgot the session. Re-send every subscription (the
        caller's ids stay, mapped to the new server ids) and surface a reset."""
        host = self._host
        host.last_event_id = None  # an id of the lost history means nothing to the new session
        resubscribes: list[PendingRequest] = []
        for sub in host.subs:
            sub.server_id = None
            resubscribes.append(new_request(RequestKind.RESUBSCRIBE, "subscribe", sub.request_data(),
                                            now_ms, sub=sub))
        host.outgoing.restart_restores(resubscribes)
        return self._reset("session_not_resumed", previous_session, host.subs.caller_ids(),
                           "the server no longer knew the session; subscriptions were re-sent, events "
                           "in between may be missing", now_ms)

    def start_resume_check(self, link: Link, now_ms: int) -> list[Action]:
        """After `resumed: true`, verify the server restored every subscription: it answers
        our frames only once the restore is sent, so when this ping's pong arrives every
        `status: "resumed"` update has too."""
        link.expected = self._host.subs.server_ids()
        if not link.expected:
            return []
        link.resume_check = new_id("ping")
        ping = {"id": link.resume_check, "type": "ping", "timestamp": now_ms, "data": {}}
        return [SendFrame(dumps(ping))]

    def _finish_resume_check(self, link: Link, now_ms: int) -> list[Action]:
        """Re-subscribe what a resumed session failed to restore, and surface the gap."""
        host = self._host
        link.resume_check = None
        missing = [s for s in host.subs if s.server_id in link.expected and s.server_id not in link.confirmed]
        if not missing:
            return []
        actions: list[Action] = []
        for sub in missing:
            log.warning("the resumed session lacks subscription %s; re-subscribing", sub.caller_id)
            sub.server_id = None
            actions += host.submit_internal(new_request(
                RequestKind.RESUBSCRIBE, "subscribe", sub.request_data(), now_ms, sub=sub))
        return actions + self._reset(
            "subscription_lost", host.session_id,
            tuple(s.caller_id for s in missing if s.caller_id is not None),
            "the server resumed the session without these subscriptions; they were re-sent, "
            "events in between may be missing", now_ms)

    def _reset(self, reason: ResetReason, previous_session: str | None, subscription_ids: tuple[str, ...],
               detail: str, now_ms: int) -> list[Action]:
        host = self._host
        host.stats.resets += 1
        log.warning("reset (%s): %s", reason, detail)
        data = ResetData(reason, host.session_id, previous_session, subscription_ids, detail)
        return [DeliverReset(ResetEvent(data, timestamp=now_ms))]

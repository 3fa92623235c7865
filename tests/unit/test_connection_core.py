"""ConnectionCore driven with plain values: frames in, actions out, time as numbers."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from autosdlc_ws.config import ApiKeyEntry, Settings
from autosdlc_ws.core import messages
from autosdlc_ws.core.auth import Authenticator, hash_api_key, mint_token
from autosdlc_ws.core.connection_core import (
    Action,
    AddSubscription,
    AuthAccepted,
    Close,
    ConnectionCore,
    Publish,
    RemoveSubscription,
    Send,
    SubscriptionRecord,
    prepare_event,
)

SECRET = "session-test-secret-0123456789abcdef0123"
NOW_S = 1_700_000_000
T0 = NOW_S * 1000
API_KEY = "ask_session_reader"


def make_settings(**changes: Any) -> Settings:
    return Settings(
        jwt_secret=SECRET,
        api_keys=(ApiKeyEntry("reader-key", hash_api_key(API_KEY), ("read:agent:*",)),),
    ).replace(**changes)


def token(sub: str = "alice", perms: tuple[str, ...] = ("read:*", "publish:*"), ttl_s: int | None = 600,
          now_s: int = NOW_S) -> str:
    return mint_token(SECRET, sub, perms, ttl_s=ttl_s, now_s=now_s)


def new_core(settings: Settings | None = None) -> ConnectionCore:
    s = settings or make_settings()
    return ConnectionCore(s, Authenticator.from_settings(s), "conn-1", "sess-1", T0, owner="owner-1")


class Clock:
    """Wall clock (ms) and monotonic clock (s) moving together."""

    def __init__(self) -> None:
        self.ms = T0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)
        self.mono += seconds


def send(core: ConnectionCore, msg: dict[str, Any] | str, clock: Clock | None = None) -> list[Action]:
    clock = clock or Clock()
    payload = msg if isinstance(msg, str) else orjson.dumps(msg).decode()
    return core.receive(payload, binary=False, now_ms=clock.ms, mono_s=clock.mono)


def frames(actions: list[Action]) -> list[dict[str, Any]]:
    return [a.message for a in actions if isinstance(a, Send)]


def only_frame(actions: list[Action]) -> dict[str, Any]:
    assert len(actions) == 1, actions
    (action,) = actions
    assert isinstance(action, Send)
    return action.message


def error_of(actions: list[Action]) -> dict[str, Any]:
    msg = only_frame(actions)
    assert msg["type"] == "error", msg
    data: dict[str, Any] = msg["data"]
    return data


def auth_req(tok: str | None = None, msg_id: str = "a1", **data: Any) -> dict[str, Any]:
    body = {"token": tok} if tok is not None else {}
    body.update(data)
    return {"id": msg_id, "type": "auth_request", "timestamp": T0, "data": body}


def authed(perms: tuple[str, ...] = ("read:*", "publish:*"), settings: Settings | None = None,
           ttl_s: int | None = 600) -> ConnectionCore:
    core = new_core(settings)
    early = Clock()
    early.mono = 0.0  # long before the tests' clock: the buckets are full again by then
    actions = send(core, auth_req(token(perms=perms, ttl_s=ttl_s)), early)
    assert isinstance(actions[0], AuthAccepted) and actions[0].first
    core.finish_auth(T0, resumed=False)
    return core


def subscribe(events: list[str], filters: dict[str, Any] | None = None, msg_id: str = "s1") -> dict[str, Any]:
    data: dict[str, Any] = {"events": events}
    if filters is not None:
        data["filters"] = filters
    return {"id": msg_id, "type": "subscribe", "timestamp": T0, "data": data}


def subscribed_id(actions: list[Action]) -> str:
    adds = [a for a in actions if isinstance(a, AddSubscription)]
    assert len(adds) == 1, actions
    return adds[0].subscription.id


def agent_status(agent: str = "a1", **extra: Any) -> dict[str, Any]:
    return {"type": "agent_status", "data": {"agentId": agent, "status": "busy", **extra}}


# ------------------------------------------------------------------ before authentication


@pytest.mark.parametrize(
    "msg",
    [
        {"id": "p1", "type": "ping", "timestamp": T0, "data": {}},
        subscribe(["agent_*"], msg_id="p1"),
        {"id": "p1", **agent_status()},
        {"id": "p1", "type": "no_such_type", "data": {}},
    ],
)
def test_unauthenticated_messages_get_unauthorized(msg: dict[str, Any]) -> None:
    core = new_core()
    actions = send(core, msg)
    reply = only_frame(actions)
    assert reply["type"] == "error"
    assert reply["data"]["code"] == "unauthorized"
    assert reply["metadata"]["correlationId"] == "p1"
    assert not core.closed and core.principal is None


def test_auth_request_accepted() -> None:
    core = new_core()
    tok = token()
    actions = send(core, auth_req(tok, sessionId="old-session", lastEventId="evt-9"))
    assert len(actions) == 1
    accepted = actions[0]
    assert isinstance(accepted, AuthAccepted)
    assert accepted.first
    assert accepted.principal.subject == "alice"
    assert accepted.resume_session_id == "old-session"
    assert accepted.last_event_id == "evt-9"
    assert core.principal is accepted.principal
    assert core.next_deadline_ms() == (NOW_S + 600) * 1000 + 5000  # token expiry, not auth timeout


@pytest.mark.parametrize("resumed", [True, False])
def test_finish_auth_sends_connect_then_auth_success(resumed: bool) -> None:
    core = new_core()
    send(core, auth_req(token()))
    actions = core.finish_auth(T0 + 5, resumed=resumed, new_session_id="sess-2", correlation_id="a1")
    connect, success = frames(actions)
    assert len(actions) == 2
    assert connect["type"] == "connect"
    assert connect["data"]["resumed"] is resumed
    assert connect["data"]["sessionId"] == "sess-2" and core.session_id == "sess-2"
    assert connect["data"]["connectionId"] == "conn-1"
    assert connect["data"]["heartbeatInterval"] == 25000
    assert connect["data"]["protocolVersion"] == "1.1"
    assert connect["data"]["limits"]["maxFrameBytes"] == 65536
    assert success["type"] == "auth_success"
    assert success["data"] == {"subject": "alice", "permissions": ["read:*", "publish:*"],
                               "expiresAt": (NOW_S + 600) * 1000}
    assert success["metadata"]["correlationId"] == "a1"
    for frame in (connect, success):
        messages.validate_message(frame)


def test_finish_auth_keeps_the_session_id_without_a_new_one() -> None:
    core = new_core()
    send(core, auth_req(token()))
    connect, _ = frames(core.finish_auth(T0, resumed=False))
    assert connect["data"]["sessionId"] == "sess-1"


def test_api_key_in_band_never_expires() -> None:
    core = new_core()
    actions = send(core, auth_req(apiKey=API_KEY))
    assert isinstance(actions[0], AuthAccepted) and actions[0].principal.identity == "api_key:reader-key"
    _, success = frames(core.finish_auth(T0, resumed=False))
    assert success["data"]["expiresAt"] is None
    assert core.next_deadline_ms() is None
    assert core.tick(T0 + 10**9) == []


def test_bad_credential_gets_auth_failure() -> None:
    core = new_core()
    reply = only_frame(send(core, auth_req("not-a-jwt")))
    assert reply["type"] == "auth_failure"
    assert reply["data"]["code"] == "invalid_token" and reply["data"]["message"]
    assert reply["metadata"]["correlationId"] == "a1"
    assert core.principal is None and not core.closed
    unknown_key = only_frame(send(core, auth_req(apiKey="ask_nope")))
    assert unknown_key["data"]["code"] == "invalid_api_key"


def test_expired_credential_gets_token_expired() -> None:
    core = new_core()
    reply = only_frame(send(core, auth_req(token(now_s=NOW_S - 3600, ttl_s=60))))
    assert reply["type"] == "auth_failure" and reply["data"]["code"] == "token_expired"


def test_credential_without_read_permission_is_refused() -> None:
    core = new_core()
    reply = only_frame(send(core, auth_req(token(perms=("publish:*",)))))
    assert reply["type"] == "auth_failure" and reply["data"]["code"] == "forbidden"
    assert core.principal is None


def test_three_failures_in_a_row_close_4001() -> None:
    core = new_core()
    assert len(send(core, auth_req("bad"))) == 1
    assert len(send(core, auth_req("bad"))) == 1
    actions = send(core, auth_req("bad"))
    assert [type(a) for a in actions] == [Send, Close]
    assert frames(actions)[0]["type"] == "auth_failure"
    close = actions[1]
    assert isinstance(close, Close) and close.code == 4001
    assert core.closed
    assert send(core, auth_req(token())) == []  # nothing more once closed


def test_a_success_resets_the_failure_count() -> None:
    core = new_core()
    send(core, auth_req("bad"))
    send(core, auth_req("bad"))
    assert isinstance(send(core, auth_req(token()))[0], AuthAccepted)
    send(core, auth_req("bad"))
    actions = send(core, auth_req("bad"))
    assert not any(isinstance(a, Close) for a in actions)
    assert not core.closed


def test_malformed_auth_request_is_invalid_message() -> None:
    core = new_core()
    err = error_of(send(core, auth_req()))  # neither token nor apiKey
    assert err["code"] == "invalid_message" and err["path"] == "data"
    err = error_of(send(core, auth_req(token=5)))
    assert err["code"] == "invalid_message" and err["path"] == "data.token"


# ------------------------------------------------------------------------------ deadlines


def test_auth_timeout_closes_4001() -> None:
    core = new_core(make_settings(auth_timeout_s=5))
    assert core.next_deadline_ms() == T0 + 5000
    assert core.tick(T0 + 4999) == []
    actions = core.tick(T0 + 5000)
    assert len(actions) == 1 and isinstance(actions[0], Close) and actions[0].code == 4001
    assert core.closed
    assert core.next_deadline_ms() is None
    assert core.tick(T0 + 9999) == []


def test_token_expiry_via_tick() -> None:
    core = authed(ttl_s=60)
    deadline = (NOW_S + 60) * 1000 + 5000
    assert core.next_deadline_ms() == deadline
    assert core.tick(deadline - 1) == []
    actions = core.tick(deadline)
    assert [type(a) for a in actions] == [Send, Close]
    failure = frames(actions)[0]
    assert failure["type"] == "auth_failure" and failure["data"]["code"] == "token_expired"
    messages.validate_message(failure)
    close = actions[1]
    assert isinstance(close, Close) and close.code == 4003
    assert core.closed


# -------------------------------------------------------------------------------- refresh


def test_refresh_with_a_new_token() -> None:
    core = authed(ttl_s=60)
    clock = Clock()
    clock.advance(30)
    fresh = token(ttl_s=600, now_s=NOW_S + 30)
    actions = send(core, auth_req(fresh, msg_id="r1"), clock)
    assert not any(isinstance(a, AuthAccepted) and a.first for a in actions)
    success = [f for f in frames(actions) if f["type"] == "auth_success"]
    assert len(success) == 1
    assert success[0]["data"]["expiresAt"] == (NOW_S + 630) * 1000
    assert success[0]["metadata"]["correlationId"] == "r1"
    assert not any(f["type"] == "connect" for f in frames(actions))
    assert core.next_deadline_ms() == (NOW_S + 630) * 1000 + 5000
    assert core.tick((NOW_S + 65) * 1000) == []  # the old deadline no longer applies


def test_refresh_with_a_different_subject_is_refused() -> None:
    core = authed()
    before = core.principal
    reply = only_frame(send(core, auth_req(token(sub="mallory", perms=("admin:*",)))))
    assert reply["type"] == "auth_failure" and reply["data"]["code"] == "subject_mismatch"
    assert core.principal is before
    assert not core.closed


def test_refresh_with_an_api_key_of_the_same_name_is_another_identity() -> None:
    core = authed()
    reply = only_frame(send(core, auth_req(apiKey=API_KEY)))
    assert reply["data"]["code"] == "subject_mismatch"


def test_refresh_with_narrower_permissions_drops_what_is_no_longer_allowed() -> None:
    core = authed(perms=("read:agent:*",))
    wide = subscribed_id(send(core, subscribe(["agent_*"], msg_id="s1")))
    narrow = subscribed_id(send(core, subscribe(["agent_status"], {"agentId": "a1"}, msg_id="s2")))
    other = subscribed_id(send(core, subscribe(["agent_log"], {"agentId": "a2"}, msg_id="s3")))
    actions = send(core, auth_req(token(perms=("read:agent:a1",)), msg_id="r1"))
    removed = {a.subscription_id for a in actions if isinstance(a, RemoveSubscription)}
    assert removed == {wide, other}
    updates = [f for f in frames(actions) if f["type"] == "subscription_update"]
    assert {u["data"]["subscriptionId"] for u in updates} == {wide, other}
    assert all(u["data"]["status"] == "removed" for u in updates)
    for frame in frames(actions):
        messages.validate_message(frame)
    assert set(core.subscriptions) == {narrow}


# -------------------------------------------------------------------------- subscriptions


def test_subscribe_answers_active_with_normalised_events_and_filters() -> None:
    core = authed()
    actions = send(core, subscribe(["agent_status", "agent_*", "agent_status"],
                                   {"taskId": ["t2", "t1"], "agentId": "a1"}, msg_id="req-7"))
    assert [type(a) for a in actions] == [AddSubscription, Send]
    add = actions[0]
    assert isinstance(add, AddSubscription)
    s = add.subscription
    assert s.owner == "owner-1"
    assert s.types == frozenset(t for t in messages.EVENT_TYPES if t.startswith("agent_"))
    assert s.filters == {"agentId": frozenset({"a1"}), "taskId": frozenset({"t1", "t2"})}
    update = frames(actions)[0]
    messages.validate_message(update)
    assert update["type"] == "subscription_update"
    assert update["metadata"]["correlationId"] == "req-7"
    assert update["data"] == {
        "subscriptionId": s.id, "status": "active",
        "events": ["agent_*", "agent_status"],
        "filters": {"agentId": ["a1"], "taskId": ["t1", "t2"]},
    }
    assert core.subscriptions == {s.id: s}


def test_each_subscription_gets_its_own_id() -> None:
    core = authed()
    ids = {subscribed_id(send(core, subscribe(["agent_status"], msg_id=f"s{i}"))) for i in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("perms", "events", "filters"),
    [
        (("read:agent:a1",), ["agent_status"], None),
        (("read:agent:a1",), ["agent_status"], {"agentId": ["a1", "a2"]}),
        (("read:agent:*",), ["*"], None),
        (("read:agent:*",), ["system_alert"], None),
        (("read:system",), ["workflow_*"], {"agentId": "a1"}),
    ],
)
def test_forbidden_subscribe(
    perms: tuple[str, ...], events: list[str], filters: dict[str, Any] | None
) -> None:
    core = authed(perms=perms)
    actions = send(core, subscribe(events, filters, msg_id="s9"))
    reply = only_frame(actions)
    assert reply["data"]["code"] == "forbidden"
    assert reply["metadata"]["correlationId"] == "s9"
    assert core.subscriptions == {}


def test_bad_pattern_is_invalid_message_on_events() -> None:
    core = authed()
    err = error_of(send(core, subscribe(["connect"])))
    assert err["code"] == "invalid_message" and err["path"] == "data.events"
    err = error_of(send(core, subscribe(["nothing_*"])))
    assert err["code"] == "invalid_message" and err["path"] == "data.events"


def test_subscription_limit() -> None:
    core = authed(settings=make_settings(max_subscriptions_per_connection=2))
    subscribed_id(send(core, subscribe(["agent_status"], msg_id="s1")))
    subscribed_id(send(core, subscribe(["agent_log"], msg_id="s2")))
    err = error_of(send(core, subscribe(["agent_error"], msg_id="s3")))
    assert err["code"] == "forbidden" and "limit" in err["message"]
    assert len(core.subscriptions) == 2


def test_unsubscribe() -> None:
    core = authed()
    sub_id = subscribed_id(send(core, subscribe(["agent_status"])))
    actions = send(core, {"id": "u1", "type": "unsubscribe", "timestamp": T0,
                          "data": {"subscriptionId": sub_id}})
    assert [type(a) for a in actions] == [RemoveSubscription, Send]
    remove = actions[0]
    assert isinstance(remove, RemoveSubscription) and remove.subscription_id == sub_id
    update = frames(actions)[0]
    assert update["data"] == {"subscriptionId": sub_id, "status": "removed"}
    assert update["metadata"]["correlationId"] == "u1"
    assert core.subscriptions == {}


def test_unsubscribe_unknown_is_not_found() -> None:
    core = authed()
    reply = only_frame(send(core, {"id": "u1", "type": "unsubscribe", "timestamp": T0,
                                   "data": {"subscriptionId": "sub-nope"}}))
    assert reply["data"]["code"] == "not_found"
    assert reply["metadata"]["correlationId"] == "u1"


# ------------------------------------------------------------------- ping and bad frames


def test_ping_gets_correlated_pong() -> None:
    core = authed()
    reply = only_frame(send(core, {"id": "ping-42", "type": "ping", "timestamp": T0, "data": {}}))
    assert reply["type"] == "pong"
    assert reply["metadata"]["correlationId"] == "ping-42"
    messages.validate_message(reply)


@pytest.mark.parametrize(
    "type_",
    ["connect", "pong", "auth_success", "auth_failure", "error", "disconnect", "subscription_update"],
)
def test_server_only_types_are_invalid_messages(type_: str) -> None:
    core = authed()
    err = error_of(send(core, {"id": "x1", "type": type_, "timestamp": T0, "data": {}}))
    assert err["code"] == "invalid_message"
    assert err["path"] == "type"


def test_unknown_type() -> None:
    core = authed()
    reply = only_frame(send(core, {"id": "x1", "type": "agent_dance", "timestamp": T0, "data": {}}))
    assert reply["data"]["code"] == "unknown_type"
    assert reply["metadata"]["correlationId"] == "x1"
    assert core.last_type == "unknown"


@pytest.mark.parametrize("msg", [{"id": "x", "data": {}}, {"id": "x", "type": 5, "data": {}}])
def test_missing_or_non_string_type(msg: dict[str, Any]) -> None:
    core = authed()
    err = error_of(send(core, msg))
    assert err["code"] == "invalid_message" and err["path"] == "type"
    assert core.last_type == "invalid"


def test_invalid_json_and_non_object() -> None:
    core = authed()
    reply = only_frame(send(core, "{not json"))
    assert reply["data"]["code"] == "invalid_json"
    assert "correlationId" not in reply["metadata"]
    assert error_of(send(core, "[1, 2]"))["code"] == "invalid_message"
    assert not core.closed


def test_gzip_bomb_frame_is_too_large() -> None:
    core = authed(settings=make_settings(max_decompressed_bytes=1024))
    bomb = gzip.compress(b" " * 100_000)
    actions = core.receive(bomb, binary=True, now_ms=T0, mono_s=1.0)
    assert error_of(actions)["code"] == "too_large"


def test_gzip_binary_frame_is_accepted() -> None:
    core = authed()
    payload = gzip.compress(orjson.dumps({"id": "g1", "type": "ping", "timestamp": T0, "data": {}}))
    reply = only_frame(core.receive(payload, binary=True, now_ms=T0, mono_s=1.0))
    assert reply["type"] == "pong" and reply["metadata"]["correlationId"] == "g1"


def test_overlong_id_is_not_echoed_as_correlation() -> None:
    core = authed()
    reply = only_frame(send(core, {"id": "x" * 500, "type": "ping", "timestamp": T0, "data": {}}))
    assert "correlationId" not in reply["metadata"]


@pytest.mark.parametrize(
    ("msg", "path"),
    [
        ({"id": "e1", "type": "agent_status", "timestamp": T0,
          "data": {"agentId": "a1", "status": "busy", "currentTask": {"id": "t", "progress": 150}}},
         "data.currentTask.progress"),
        ({"id": "e1", "type": "agent_status", "timestamp": T0,
          "data": {"agentId": "a1", "status": "d" * 65}}, "data.status"),  # open value, but too long
        ({"id": "e1", "type": "agent_status", "timestamp": T0, "data": {"status": "busy"}}, "data.agentId"),
        (subscribe([]), "data.events"),
        (subscribe(["agent_status"], {"agentID": "a1"}), "data.filters.agentID"),
        (subscribe(["agent_status"], {"repository": "not-a-repo"}), "data.filters.repository"),
        ({"id": "u", "type": "unsubscribe", "timestamp": T0, "data": {}}, "data.subscriptionId"),
    ],
)
def test_schema_errors_name_the_failing_path(msg: dict[str, Any], path: str) -> None:
    core = authed()
    err = error_of(send(core, msg))
    assert err["code"] == "invalid_message"
    assert err["path"] == path


# -------------------------------------------------------------------------------- publish


def test_publish_without_publish_permission_is_forbidden() -> None:
    core = authed(perms=("read:*",))
    reply = only_frame(send(core, {"id": "e1", "timestamp": T0, **agent_status()}))
    assert reply["data"]["code"] == "forbidden"
    assert reply["metadata"]["correlationId"] == "e1"


def test_publish_for_another_resource_is_forbidden() -> None:
    core = authed(perms=("read:*", "publish:agent:a1"))
    assert error_of(send(core, agent_status("a2")))["code"] == "forbidden"
    assert isinstance(send(core, agent_status("a1"))[0], Publish)


def test_publish_fills_id_and_timestamp_and_keeps_unknown_fields() -> None:
    core = authed()
    clock = Clock()
    clock.advance(2)
    msg = {**agent_status(customField={"nested": [1, 2]}), "x-trace": "abc",
           "metadata": {"source": "agent-runner", "futureFlag": True}}
    actions = send(core, msg, clock)
    assert len(actions) == 1
    publish = actions[0]
    assert isinstance(publish, Publish)
    event = publish.event
    assert isinstance(event["id"], str) and event["id"].startswith("evt-")
    assert event["timestamp"] == clock.ms
    assert event["data"]["customField"] == {"nested": [1, 2]}
    assert event["x-trace"] == "abc"
    assert event["metadata"] == {"source": "agent-runner", "futureFlag": True}
    assert publish.correlation_id is None
    messages.validate_message(event)


def test_publish_keeps_the_publishers_id_and_timestamp() -> None:
    core = authed()
    actions = send(core, {"id": "evt-mine", "timestamp": 123, **agent_status()})
    publish = actions[0]
    assert isinstance(publish, Publish)
    assert publish.event["id"] == "evt-mine" and publish.event["timestamp"] == 123
    assert publish.correlation_id == "evt-mine"


def test_prepare_event_does_not_modify_the_input() -> None:
    msg = agent_status()
    event = prepare_event(msg, 99)
    assert "id" not in msg and event["timestamp"] == 99


# ----------------------------------------------------------------------------- rate limits


def test_rate_limit_burst_then_rate_limited_then_close() -> None:
    core = authed(settings=make_settings(rate_control_per_s=2, rate_control_burst=3,
                                         rate_violations_before_close=4))
    clock = Clock()
    ping = {"id": "p", "type": "ping", "timestamp": T0, "data": {}}
    for _ in range(3):
        assert only_frame(send(core, ping, clock))["type"] == "pong"
    for _ in range(3):
        err = error_of(send(core, ping, clock))
        assert err["code"] == "rate_limited"
        assert err["retryAfterMs"] == 500
    actions = send(core, ping, clock)
    assert len(actions) == 1 and isinstance(actions[0], Close) and actions[0].code == 1008
    assert core.closed


def test_rate_limit_retry_after_and_recovery() -> None:
    core = authed(settings=make_settings(rate_control_per_s=1, rate_control_burst=1))
    clock = Clock()
    ping = {"id": "p", "type": "ping", "timestamp": T0, "data": {}}
    assert only_frame(send(core, ping, clock))["type"] == "pong"
    clock.advance(0.25)
    assert error_of(send(core, ping, clock))["retryAfterMs"] == 750
    clock.advance(0.75)
    assert only_frame(send(core, ping, clock))["type"] == "pong"


def test_an_allowed_message_resets_the_violation_count() -> None:
    core = authed(settings=make_settings(rate_control_per_s=1, rate_control_burst=1,
                                         rate_violations_before_close=3))
    clock = Clock()
    ping = {"id": "p", "type": "ping", "timestamp": T0, "data": {}}
    for _ in range(10):
        send(core, ping, clock)  # allowed
        assert error_of(send(core, ping, clock))["code"] == "rate_limited"
        assert error_of(send(core, ping, clock))["code"] == "rate_limited"
        clock.advance(1.0)
    assert not core.closed


def test_publish_and_control_have_separate_buckets() -> None:
    core = authed(settings=make_settings(rate_control_per_s=1, rate_control_burst=1,
                                         rate_publish_per_s=1, rate_publish_burst=2))
    clock = Clock()
    ping = {"id": "p", "type": "ping", "timestamp": T0, "data": {}}
    send(core, ping, clock)
    assert error_of(send(core, ping, clock))["code"] == "rate_limited"
    assert isinstance(send(core, agent_status(), clock)[0], Publish)
    assert isinstance(send(core, agent_status(), clock)[0], Publish)
    assert error_of(send(core, agent_status(), clock))["code"] == "rate_limited"


# ------------------------------------------------------------------------ restore, gzip


def test_restore_recreates_subscriptions_with_their_ids() -> None:
    core = authed(perms=("read:agent:*",))
    records = [
        SubscriptionRecord("sub-1", ("agent_*",), {}),
        SubscriptionRecord("sub-2", ("agent_status",), {"agentId": ("a1", "a2")}),
        SubscriptionRecord("sub-3", ("workflow_*",), {}),  # no longer readable
        SubscriptionRecord("sub-4", ("gone_type",), {}),  # type no longer exists
    ]
    actions = core.restore(records, T0)
    added = [a.subscription for a in actions if isinstance(a, AddSubscription)]
    assert [s.id for s in added] == ["sub-1", "sub-2"]
    assert added[1].filters == {"agentId": frozenset({"a1", "a2"})}
    assert all(s.owner == "owner-1" for s in added)
    updates = {f["data"]["subscriptionId"]: f["data"] for f in frames(actions)}
    assert updates["sub-1"]["status"] == "resumed" and updates["sub-1"]["events"] == ["agent_*"]
    assert updates["sub-2"]["filters"] == {"agentId": ["a1", "a2"]}
    assert updates["sub-3"]["status"] == "removed" and updates["sub-3"]["reason"]
    assert updates["sub-4"]["status"] == "removed"
    for frame in frames(actions):
        messages.validate_message(frame)
    assert set(core.subscriptions) == {"sub-1", "sub-2"}


def test_records_round_trip_through_json() -> None:
    core = authed()
    send(core, subscribe(["agent_*", "tdd_phase_change"], {"agentId": ["b", "a"]}))
    records = core.records()
    assert records == [SubscriptionRecord(records[0].id, ("agent_*", "tdd_phase_change"),
                                          {"agentId": ("a", "b")})]
    again = [SubscriptionRecord.from_json(orjson.loads(orjson.dumps(r.to_json()))) for r in records]
    assert again == records
    other = authed()
    restored = [a for a in other.restore(again, T0) if isinstance(a, AddSubscription)]
    assert restored[0].subscription.types == next(iter(core.subscriptions.values())).types


@pytest.mark.parametrize(("compression", "expected"), [("gzip", True), ("none", False), (None, False)])
def test_gzip_flag_from_auth_request(compression: str | None, expected: bool) -> None:
    core = new_core()
    extra = {"compression": compression} if compression else {}
    send(core, auth_req(token(), **extra))
    assert core.gzip is expected


def test_refresh_does_not_change_the_compression() -> None:
    core = new_core()
    send(core, auth_req(token(), compression="gzip"))
    send(core, auth_req(token(), compression="none"))
    assert core.gzip is True


def test_reject_auth_closes_with_the_given_code() -> None:
    core = new_core()
    send(core, auth_req(token()))
    actions = core.reject_auth("too_many_connections", "alice has too many", 1008, T0)
    assert frames(actions)[0]["data"]["code"] == "too_many_connections"
    assert isinstance(actions[-1], Close) and actions[-1].code == 1008
    assert core.principal is None and core.closed


@pytest.mark.parametrize(("batch", "expected"), [(True, True), ("yes", False), (None, False)])
def test_batch_flag_from_auth_request(batch: object, expected: bool) -> None:
    core = new_core()
    extra = {"batch": batch} if batch is not None else {}
    send(core, auth_req(token(), **extra))
    assert core.batch is expected


def test_refresh_does_not_turn_batching_on() -> None:
    core = new_core()
    send(core, auth_req(token()))
    send(core, auth_req(token(), batch=True))
    assert core.batch is False


def test_connect_announces_max_batch_bytes() -> None:
    core = new_core()
    limits = core.connect_frame(T0, resumed=False)["data"]["limits"]
    assert limits["maxBatchBytes"] == core.settings.max_batch_bytes == 65536

"""The client core with plain values: the handshake, requests and their timeouts, the
bounded offline queue, close codes and backoff. No sockets, no event loop."""

from __future__ import annotations

import gzip

import orjson
import pytest

from autosdlc_ws.client import (
    AuthenticationFailed,
    ClientClosed,
    ConnectError,
    ConnectionClosed,
    ConnectionState,
    ForbiddenError,
    QueueFull,
    ReconnectFailed,
    ReconnectPolicy,
    RequestTimeout,
    TokenExpired,
)
from autosdlc_ws.client.actions import (
    PING_TIMER,
    REQUEST_TIMER,
    Deliver,
    DropSocket,
    FailRequest,
    Reconnect,
    ReportError,
    ResolveRequest,
    SendFrame,
    StartTimer,
    StateChanged,
    Stopped,
)
from tests.sdk.core_helpers import T0, confirm, event, frame, make_core, of, open_link, sent, started


def test_the_handshake_opens_and_flushes_what_was_queued_in_order() -> None:
    core = make_core()
    assert of(core.start(), StateChanged) == [StateChanged(ConnectionState.CONNECTING)]
    request_id, actions = core.subscribe("agent_*", {"agentId": ["a", "b"]}, T0)
    assert not of(actions, SendFrame)  # not open yet: queued
    assert StartTimer(REQUEST_TIMER + request_id, 10.0) in actions
    core.send({"type": "agent_log", "data": {"message": "one"}}, T0)
    core.send({"type": "agent_log", "data": {"message": "two"}}, T0)
    assert core.outgoing.outbox and core.handshaking is False

    actions = open_link(core)
    frames = sent(actions)
    assert [f["type"] for f in frames] == ["subscribe", "agent_log", "agent_log"]
    assert frames[0]["id"] == request_id
    assert frames[0]["data"] == {"events": ["agent_*"], "filters": {"agentId": ["a", "b"]}}
    assert [f["data"]["message"] for f in frames[1:]] == ["one", "two"]
    assert StateChanged(ConnectionState.OPEN) in actions and StartTimer(PING_TIMER, 25.0) in actions
    assert (core.session_id, core.connection_id, core.max_frame_bytes) == ("s-1", "c-s-1", 65_536)

    actions = confirm(core, frames[0], "sub-1")
    resolved = of(actions, ResolveRequest)
    assert [r.request_id for r in resolved] == [request_id] and resolved[0].answer["subscriptionId"] == "sub-1"
    assert core.subscriptions()["sub-1"].filters == {"agentId": ["a", "b"]}


def test_events_are_delivered_and_control_frames_offered_to_handlers() -> None:
    core = started()
    assert core.receive(event("evt-1"), T0) == [Deliver("agent_log", orjson.loads(event("evt-1")), True)]
    pong = core.receive(frame("pong"), T0)
    assert [(d.type, d.to_iterator) for d in of(pong, Deliver)] == [("pong", False)]
    assert core.stats.events_received == 1 and core.last_event_id == "evt-1"


def test_bad_and_truncated_gzip_frames_are_ignored() -> None:
    core = started()
    whole = gzip.compress(event("evt-1").encode())
    assert core.receive(whole[:-6], T0) == []  # truncated stream: gunzip_capped refuses it
    assert core.receive(b"not gzip", T0) == [] and core.receive("[1]", T0) == []
    assert of(core.receive(whole, T0), Deliver)[0].frame["id"] == "evt-1"


def test_a_request_times_out_and_its_late_answer_is_undone() -> None:
    core = started()
    request_id, actions = core.subscribe("agent_*", None, T0)
    request = sent(actions)[0]
    failed = of(core.timer_fired(REQUEST_TIMER + request_id, T0 + 10_000), FailRequest)
    assert failed[0].request_id == request_id and isinstance(failed[0].error, RequestTimeout)
    late = confirm(core, request, "sub-1")
    assert not of(late, ResolveRequest)
    assert [(f["type"], f["data"]) for f in sent(late)] == [("unsubscribe", {"subscriptionId": "sub-1"})]
    assert core.subscriptions() == {}


def test_a_refused_request_fails_with_the_error_of_its_code() -> None:
    core = started()
    request_id, actions = core.subscribe("agent_*", None, T0)
    answer = core.receive(frame("error", {"code": "forbidden", "message": "no"},
                                correlation=sent(actions)[0]["id"]), T0)
    failed = of(answer, FailRequest)
    assert failed[0].request_id == request_id and isinstance(failed[0].error, ForbiddenError)


def test_the_offline_queue_is_bounded_and_in_flight_requests_do_not_count() -> None:
    core = started(outbox_size=2)
    _, actions = core.subscribe("agent_*", None, T0)
    assert sent(actions)
    core.connection_lost(1006, "cut", T0 + 1000)
    assert core.state is ConnectionState.RECONNECTING
    core.send({"type": "agent_log", "data": {"n": 1}}, T0)
    core.send({"type": "agent_log", "data": {"n": 2}}, T0)
    with pytest.raises(QueueFull):
        core.send({"type": "agent_log", "data": {"n": 3}}, T0)
    frames = sent(open_link(core, resumed=True))
    assert [f["type"] for f in frames[:3]] == ["subscribe", "agent_log", "agent_log"]  # the request first


def test_frames_the_driver_could_not_write_are_kept_in_order() -> None:
    core = started()
    _, first = core.send({"type": "agent_log", "data": {"n": 1}}, T0)
    _, second = core.send({"type": "agent_log", "data": {"n": 2}}, T0)
    core.writes_failed([a.item for a in of(first + second, SendFrame) if a.item is not None])
    core.connection_lost(1006, "cut", T0)
    assert [f["data"]["n"] for f in sent(open_link(core, resumed=True))[:2]] == [1, 2]


@pytest.mark.parametrize("code", [1007, 1008, 1009, 4001])
def test_fatal_close_codes_stop_instead_of_reconnecting(code: int) -> None:
    core = started()
    request_id, _ = core.subscribe("agent_*", None, T0)
    actions = core.connection_lost(code, "policy", T0)
    assert not of(actions, Reconnect)
    stopped = of(actions, Stopped)[0]
    assert isinstance(stopped.error, ConnectionClosed) and stopped.error.code == code
    assert of(actions, FailRequest)[0].request_id == request_id
    assert core.state is ConnectionState.CLOSED and core.error is stopped.error
    assert core.stats.last_close_code == code
    with pytest.raises(ConnectionClosed):
        core.send({"type": "agent_log"}, T0)


def test_token_expired_reconnects_only_with_a_token_provider() -> None:
    without = started()
    assert isinstance(of(without.connection_lost(4003, "", T0), Stopped)[0].error, TokenExpired)
    with_provider = started(has_token_provider=True)
    assert of(with_provider.connection_lost(4003, "", T0), Reconnect) == [Reconnect(1.0)]


def test_a_disconnect_frame_saying_no_reconnect_stops() -> None:
    core = started()
    core.receive(frame("disconnect", {"reason": "retired", "reconnect": False}), T0)
    error = of(core.connection_lost(1001, "going away", T0), Stopped)[0].error
    assert isinstance(error, ConnectionClosed) and error.reason == "retired"


@pytest.mark.parametrize("code", [1000, 1001, 1006, 1011, 1012, 1013, 4008, 4999])
def test_other_close_codes_reconnect(code: int) -> None:
    core = started()
    actions = core.connection_lost(code, "", T0)
    assert of(actions, Reconnect) == [Reconnect(1.0)] and not of(actions, Stopped)


def test_backoff_grows_honours_retry_after_and_gives_up() -> None:
    core = started(reconnect=ReconnectPolicy(base=1.0, cap=8.0, max_attempts=3))
    assert of(core.connection_lost(1006, "cut", T0), Reconnect) == [Reconnect(1.0)]
    assert core.attempt_failed(ConnectError("refused"), T0) == [Reconnect(2.0)]
    assert core.attempt_failed(ConnectError("busy", status=503, retry_after=30.0), T0) == [Reconnect(30.0)]
    actions = core.attempt_failed(ConnectError("refused"), T0)
    error = of(actions, Stopped)[0].error
    assert isinstance(error, ReconnectFailed) and error.attempts == 3
    assert of(actions, ReportError) == [ReportError(error)]


def test_a_stable_connection_resets_the_backoff() -> None:
    core = started()
    core.connection_lost(1006, "cut", T0)
    assert core.attempt_failed(ConnectError("refused"), T0) == [Reconnect(2.0)]
    open_link(core, resumed=True, now=T0)
    assert of(core.connection_lost(1006, "cut", T0 + 3_000), Reconnect) == [Reconnect(4.0)]
    open_link(core, resumed=True, now=T0 + 5_000)
    assert of(core.connection_lost(1006, "cut", T0 + 16_000), Reconnect) == [Reconnect(1.0)]  # up 11 s


def test_refused_credentials_stop_reconnecting() -> None:
    core = started()
    core.connection_lost(1006, "cut", T0)
    refused = AuthenticationFailed(403, "forbidden", "no")
    assert of(core.attempt_failed(refused, T0), Stopped) == [Stopped(refused)]


def test_auth_failure_in_the_handshake_drops_the_socket_and_stops() -> None:
    core = started()
    core.connection_lost(1006, "cut", T0)
    core.socket_opened()
    core.receive(frame("connect", {"sessionId": "s-1", "connectionId": "c-2", "resumed": True}), T0)
    actions = core.receive(frame("auth_failure", {"code": "token_revoked", "message": "revoked"}), T0)
    assert isinstance(actions[0], DropSocket)
    error = of(actions, Stopped)[0].error
    assert isinstance(error, AuthenticationFailed) and error.code == "token_revoked"


def test_a_failed_first_connection_stops_and_a_closed_handshake_reconnects_later() -> None:
    first = make_core()
    first.start()
    first.socket_opened()
    actions = first.receive(frame("pong"), T0)  # not a connect frame
    assert isinstance(actions[0], DropSocket) and isinstance(of(actions, Stopped)[0].error, ConnectError)

    later = started()
    later.connection_lost(1006, "cut", T0)
    later.socket_opened()
    assert later.connection_lost(1011, "restarting", T0) == [Reconnect(2.0)]
    later.socket_opened()
    assert isinstance(of(later.connection_lost(4001, "bad token", T0), Stopped)[0].error, ConnectionClosed)


def test_close_fails_pending_requests_and_stops_without_error() -> None:
    core = started()
    request_id, _ = core.subscribe("agent_*", None, T0)
    actions = core.close()
    failed = of(actions, FailRequest)
    assert failed[0].request_id == request_id and isinstance(failed[0].error, ClientClosed)
    assert actions[-2:] == [StateChanged(ConnectionState.CLOSED), Stopped(None)]
    assert core.connection_lost(1000, "", T0) == [] and core.close() == []
    with pytest.raises(ClientClosed):
        core.subscribe("agent_*", None, T0)

"""The client core across reconnects, with plain values: the resume position, duplicate
suppression, re-subscribing after a lost session or an incomplete restore, resets, and
the in-band token refresh."""

from __future__ import annotations

from autosdlc_ws.client import AutoSDLCError, RequestError
from autosdlc_ws.client.actions import (
    REFRESH_TIMER,
    RESEND_TIMER,
    CancelTimer,
    Deliver,
    DeliverReset,
    FetchToken,
    ReportError,
    StartTimer,
)
from autosdlc_ws.client.core import ClientCore
from tests.sdk.core_helpers import T0, confirm, event, frame, make_core, of, open_link, sent, started


def subscribed(core: ClientCore, server_id: str) -> str:
    _, actions = core.subscribe("agent_*", None, T0)
    confirm(core, sent(actions)[0], server_id)
    return server_id


def test_a_resumed_connection_continues_from_the_last_event_and_drops_duplicates() -> None:
    core = started()
    for event_id in ("evt-1", "evt-2"):
        core.receive(event(event_id), T0)
    core.connection_lost(1006, "cut", T0)
    assert core.upgrade_params() == {"session_id": "s-1", "last_event_id": "evt-2"}
    open_link(core, session="s-1", resumed=True)
    assert core.receive(event("evt-2"), T0) == []  # replayed by the server: already delivered
    assert [d.frame["id"] for d in of(core.receive(event("evt-3"), T0), Deliver)] == ["evt-3"]
    stats = core.stats
    assert (stats.connects, stats.reconnects, stats.resumed, stats.duplicates_dropped,
            stats.events_received) == (2, 1, 1, 1, 3)
    assert core.last_event_id == "evt-3"


def test_compression_and_a_given_session_go_into_the_upgrade() -> None:
    core = make_core(compression="gzip", session_id="s-old")
    assert core.upgrade_params() == {"compression": "gzip", "session_id": "s-old"}


def test_a_lost_session_resubscribes_under_the_same_ids_and_resets() -> None:
    core = started()
    subscribed(core, "sub-1")
    core.receive(event("evt-1"), T0)
    core.connection_lost(1006, "cut", T0)
    actions = open_link(core, session="s-2", resumed=False)
    reset = of(actions, DeliverReset)[0].event.data
    assert (reset.reason, reset.session_id, reset.previous_session_id, reset.subscription_ids) == \
        ("session_not_resumed", "s-2", "s-1", ("sub-1",))
    assert core.last_event_id is None and core.stats.resets == 1
    resubscribe = sent(actions)[0]
    assert resubscribe["type"] == "subscribe" and resubscribe["data"] == {"events": ["agent_*"]}
    assert core.subscriptions()["sub-1"].server_id is None
    confirm(core, resubscribe, "sub-9")
    assert core.subscriptions()["sub-1"].server_id == "sub-9"


def test_an_incomplete_restore_is_detected_at_the_resume_check_pong() -> None:
    core = started()
    subscribed(core, "sub-1")
    subscribed(core, "sub-2")
    core.connection_lost(1006, "cut", T0)
    actions = open_link(core, resumed=True)
    check = next(f for f in sent(actions) if f["type"] == "ping")
    core.receive(frame("subscription_update", {"subscriptionId": "sub-1", "status": "resumed"}), T0)
    actions = core.receive(frame("pong", correlation=check["id"]), T0)
    assert [(f["type"], f["data"]) for f in sent(actions)] == [("subscribe", {"events": ["agent_*"]})]
    reset = of(actions, DeliverReset)[0].event.data
    assert reset.reason == "subscription_lost" and reset.subscription_ids == ("sub-2",)
    assert [d.type for d in of(actions, Deliver)] == ["pong"]


def test_a_complete_restore_needs_nothing() -> None:
    core = started()
    subscribed(core, "sub-1")
    core.connection_lost(1006, "cut", T0)
    check = next(f for f in sent(open_link(core, resumed=True)) if f["type"] == "ping")
    core.receive(frame("subscription_update", {"subscriptionId": "sub-1", "status": "resumed"}), T0)
    actions = core.receive(frame("pong", correlation=check["id"]), T0)
    assert not sent(actions) and not of(actions, DeliverReset)


def test_server_reset_and_removal_of_a_subscription() -> None:
    core = started()
    subscribed(core, "sub-1")
    subscribed(core, "sub-2")
    actions = core.receive(frame("subscription_update", {"subscriptionId": "sub-1", "status": "reset",
                                                         "reason": "history trimmed"}), T0)
    reset = of(actions, DeliverReset)[0].event.data
    assert (reset.reason, reset.subscription_ids, reset.detail) == ("history_lost", ("sub-1",), "history trimmed")
    actions = core.receive(frame("subscription_update", {"subscriptionId": "sub-2", "status": "removed"}), T0)
    error = of(actions, ReportError)[0].error
    assert isinstance(error, RequestError) and error.code == "removed"
    assert list(core.subscriptions()) == ["sub-1"]


def test_a_subscription_the_client_does_not_know_is_removed_unless_adopted() -> None:
    core = started()
    actions = core.receive(frame("subscription_update", {"subscriptionId": "sub-x", "status": "active"}), T0)
    assert [(f["type"], f["data"]) for f in sent(actions)] == [("unsubscribe", {"subscriptionId": "sub-x"})]

    adopting = make_core(session_id="s-other")
    adopting.start()
    open_link(adopting, session="s-other", resumed=True)
    actions = adopting.receive(frame("subscription_update", {
        "subscriptionId": "sub-y", "status": "resumed", "events": ["tdd_*"], "filters": {"taskId": "t"}}), T0)
    assert not sent(actions)
    assert adopting.subscriptions()["sub-y"].events == ("tdd_*",)


def test_a_rate_limited_resubscribe_is_sent_again_later() -> None:
    core = started()
    subscribed(core, "sub-1")
    core.connection_lost(1006, "cut", T0)
    resubscribe = sent(open_link(core, session="s-2", resumed=False))[0]
    actions = core.receive(frame("error", {"code": "rate_limited", "message": "slow", "retryAfterMs": 1500},
                                 correlation=resubscribe["id"]), T0)
    assert StartTimer(RESEND_TIMER + resubscribe["id"], 1.5) in actions
    assert not of(actions, ReportError)  # not the application's problem yet
    assert [f["id"] for f in sent(core.timer_fired(RESEND_TIMER + resubscribe["id"], T0))] == [resubscribe["id"]]
    core.receive(frame("error", {"code": "forbidden", "message": "no"}, correlation=resubscribe["id"]), T0)
    assert core.subscriptions() == {}  # refused for good: dropped and reported


def test_unsubscribing_during_a_resubscribe_removes_what_the_server_then_confirms() -> None:
    core = started()
    subscribed(core, "sub-1")
    core.connection_lost(1006, "cut", T0)
    resubscribe = sent(open_link(core, session="s-2", resumed=False))[0]
    request_id, actions = core.unsubscribe("sub-1", T0)
    assert request_id is None and actions == []  # the server has no id for it yet
    late = confirm(core, resubscribe, "sub-9")
    assert [(f["type"], f["data"]) for f in sent(late)] == [("unsubscribe", {"subscriptionId": "sub-9"})]


def test_the_token_is_refreshed_in_band_before_it_expires() -> None:
    core = make_core(has_token_provider=True, refresh_before_s=60.0)
    core.start()
    actions = open_link(core, expires_at=T0 + 100_000)
    assert StartTimer(REFRESH_TIMER, 50.0) in actions  # half of the 100 s left (later than 60 s before)
    assert core.timer_fired(REFRESH_TIMER, T0 + 50_000) == [FetchToken()]
    request = sent(core.token_fetched("jwt-2", T0 + 50_000))[0]
    assert (request["type"], request["data"]) == ("auth_request", {"token": "jwt-2"})
    answer = core.receive(frame("auth_success", {"expiresAt": T0 + 250_000}, correlation=request["id"]),
                          T0 + 50_000)
    assert StartTimer(REFRESH_TIMER, 140.0) in answer and core.stats.token_refreshes == 1
    assert [d.type for d in of(answer, Deliver)] == ["auth_success"]


def test_a_failed_refresh_is_reported_and_retried_sooner() -> None:
    core = make_core(has_token_provider=True, refresh_before_s=60.0)
    core.start()
    open_link(core, expires_at=T0 + 100_000)
    core.timer_fired(REFRESH_TIMER, T0 + 80_000)
    actions = core.token_fetch_failed(OSError("vault down"), T0 + 80_000)
    assert isinstance(of(actions, ReportError)[0].error, AutoSDLCError)
    assert StartTimer(REFRESH_TIMER, 5.0) in actions  # a quarter of the 20 s left, at most 5 s
    core.timer_fired(REFRESH_TIMER, T0 + 85_000)
    request = sent(core.token_fetched("jwt-2", T0 + 85_000))[0]
    actions = core.receive(frame("auth_failure", {"code": "invalid_token", "message": "bad"},
                                 correlation=request["id"]), T0 + 85_000)
    assert isinstance(of(actions, ReportError)[0].error, RequestError)
    assert StartTimer(REFRESH_TIMER, 3.75) in actions


def test_a_lost_connection_abandons_a_refresh_in_progress() -> None:
    core = make_core(has_token_provider=True, refresh_before_s=60.0)
    core.start()
    open_link(core, expires_at=T0 + 100_000)
    core.timer_fired(REFRESH_TIMER, T0 + 50_000)
    lost = core.connection_lost(1006, "cut", T0 + 50_000)
    assert CancelTimer(REFRESH_TIMER) in lost
    assert core.token_fetched("jwt-2", T0 + 50_000) == []  # the reconnect presents a fresh token


def test_snapshot_subscriptions_ask_again_after_a_lost_session_and_snapshot_events_keep_the_position() -> None:
    core = started()
    _, actions = core.subscribe("agent_*", {"agentId": "a1"}, T0, snapshot=True)
    request = sent(actions)[0]
    assert request["data"] == {"events": ["agent_*"], "filters": {"agentId": "a1"}, "snapshot": True}
    confirm(core, request, "sub-1")
    core.receive(event("evt-live"), T0)
    old = frame("agent_status", {"agentId": "a1", "status": "busy"}, id="evt-old", metadata={"snapshot": True})
    assert [d.frame["id"] for d in of(core.receive(old, T0), Deliver)] == ["evt-old"]
    assert core.last_event_id == "evt-live"  # resuming from a snapshot event would replay the past
    core.connection_lost(1006, "cut", T0)
    resubscribe = sent(open_link(core, session="s-2", resumed=False))[0]
    assert resubscribe["data"]["snapshot"] is True  # the new session's state, asked again


def test_agent_short_names_map_to_their_event_types() -> None:
    from autosdlc_ws.client.subscriptions import agent_event_type

    names = ["status", "task_update", "logs", "metrics", "errors", "agent_status", "agent_*"]
    assert [agent_event_type(n) for n in names] == [
        "agent_status", "agent_task_update", "agent_log", "agent_metric", "agent_error",
        "agent_status", "agent_*"]

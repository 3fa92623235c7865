"""Rate limits per message type (config `rate_limits`) with plain values: the
config reading, the buckets a message is charged to, and the connection core's
handling of the shared bucket's answer (the buckets are `TokenBucket`s here)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from autosdlc_ws.config import load_settings
from autosdlc_ws.core.connection_core import (
    Action,
    AddSubscription,
    CheckTypeLimit,
    Close,
    ConnectionCore,
    Publish,
    Send,
)
from autosdlc_ws.core.ratelimit import KeyedBuckets
from autosdlc_ws.core.type_limits import (
    Charge,
    RateLimitsError,
    TypeLimit,
    TypeLimits,
    parse_rate_limits,
)
from autosdlc_ws.errors import ConfigError
from tests.unit.test_connection_core import (
    T0,
    Clock,
    agent_status,
    auth_req,
    authed,
    make_settings,
    new_core,
    send,
    subscribe,
    token,
)

# ----------------------------------------------------------------------- config


def test_parse_accepts_requests_and_event_types() -> None:
    limits = parse_rate_limits({"subscribe": {"per_s": 1, "burst": 2},
                                "agent_log": {"per_s": 0.5, "burst": 10}})
    assert limits == {"subscribe": TypeLimit(1.0, 2.0), "agent_log": TypeLimit(0.5, 10.0)}


def test_parse_reads_the_environment_json() -> None:
    settings = load_settings(env={"AUTOSDLC_WS_RATE_LIMITS": '{"subscribe": {"per_s": 1, "burst": 2}}'})
    assert settings.rate_limits == {"subscribe": TypeLimit(1.0, 2.0)}


def test_the_toml_table_is_read(tmp_path: Any) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('[rate_limits]\nping = { per_s = 2, burst = 4 }\n'
                    '[rate_limits.agent_status]\nper_s = 5\nburst = 5\n')
    settings = load_settings(path, env={})
    assert settings.rate_limits == {"ping": TypeLimit(2.0, 4.0), "agent_status": TypeLimit(5.0, 5.0)}


@pytest.mark.parametrize(("raw", "named"), [
    ({"subscrib": {"per_s": 1, "burst": 2}}, "'subscrib'"),  # a typo is not silently unlimited
    ({"connect": {"per_s": 1, "burst": 2}}, "'connect'"),  # server-only: a client never sends it
    ({"ping": {"per_s": "1", "burst": 2}}, "rate_limits.ping.per_s"),
    ({"ping": {"per_s": True, "burst": 2}}, "rate_limits.ping.per_s"),
    ({"ping": {"per_s": 0, "burst": 2}}, "rate_limits.ping.per_s must be positive"),
    ({"ping": {"per_s": 1, "burst": 0.5}}, "rate_limits.ping.burst must be at least 1"),
    ({"ping": {"per_s": 1}}, "rate_limits.ping: missing burst"),
    ({"ping": {"per_s": 1, "burst": 2, "brust": 3}}, "unknown keys brust"),
    ({"ping": 5}, "rate_limits.ping: expected {per_s, burst}"),
    ([1, 2], "expected a table"),
    ("{not json", "not valid JSON"),
])
def test_bad_entries_are_refused_naming_them(raw: object, named: str) -> None:
    with pytest.raises(RateLimitsError) as info:
        parse_rate_limits(raw)
    assert named in str(info.value)


def test_a_bad_entry_is_a_start_up_error() -> None:
    with pytest.raises(ConfigError, match="'subscrib' is not a message type"):
        load_settings(env={"AUTOSDLC_WS_RATE_LIMITS": '{"subscrib": {"per_s": 1, "burst": 2}}'})
    with pytest.raises(ConfigError, match=r"rate_limits\.ping\.burst"):
        make_settings(rate_limits={"ping": {"per_s": 1, "burst": -1}})


# ------------------------------------------------------------------ which bucket


def test_charge_names_a_bucket_per_type_and_identity() -> None:
    limits = TypeLimits({"subscribe": TypeLimit(1, 2)})
    assert limits.charge("subscribe", "jwt:alice") == Charge("subscribe", "type:subscribe:jwt:alice", 1, 2, 1)
    assert limits.charge("subscribe", "jwt:bob") != limits.charge("subscribe", "jwt:alice")
    assert limits.charge("ping", "jwt:alice") is None


def test_a_batch_is_charged_its_count_per_limited_type() -> None:
    limits = TypeLimits({"agent_log": TypeLimit(1, 5), "agent_status": TypeLimit(1, 5)})
    charges = limits.batch_charges(["agent_log", "agent_metric", "agent_log", "agent_status"], "k")
    assert [(c.type, c.cost) for c in charges] == [("agent_log", 2), ("agent_status", 1)]


def test_metric_labels_are_the_configured_types_and_other() -> None:
    limits = TypeLimits({"subscribe": TypeLimit(1, 2)})
    assert limits.label("subscribe") == "subscribe"
    assert {limits.label(t) for t in ("ping", "agent_log", "x" * 500, "")} == {"other"}


# ------------------------------------------------------- the connection core


class SharedBuckets:
    """Stands in for the shared limits: the same buckets for every core given it."""

    def __init__(self) -> None:
        self.by_shape: dict[tuple[float, float], KeyedBuckets] = {}

    def answer(self, core: ConnectionCore, actions: list[Action], clock: Clock) -> list[Action]:
        """What the I/O layer does with a `CheckTypeLimit`: charge, then ask the core."""
        if len(actions) != 1 or not isinstance(actions[0], CheckTypeLimit):
            return actions
        check = actions[0]
        charge = check.charge
        buckets = self.by_shape.setdefault((charge.per_s, charge.burst), KeyedBuckets(charge.per_s, charge.burst))
        return core.type_limit_answer(check, buckets.take(charge.key, clock.mono, charge.cost), clock.ms)


def limited(**limits: dict[str, float]) -> Any:
    return make_settings(rate_limits=limits)


def error_code(actions: list[Action]) -> tuple[str, int | None, str | None]:
    (action,) = actions
    assert isinstance(action, Send) and action.message["type"] == "error", actions
    data = action.message["data"]
    return data["code"], data.get("retryAfterMs"), action.message["metadata"].get("correlationId")


def test_a_limited_request_goes_through_the_shared_bucket_then_is_handled() -> None:
    core = authed(settings=limited(subscribe={"per_s": 1, "burst": 2}))
    shared, clock = SharedBuckets(), Clock()
    actions = send(core, subscribe(["agent_*"], msg_id="s1"), clock)
    assert len(actions) == 1 and isinstance(actions[0], CheckTypeLimit)
    assert actions[0].charge.key == "type:subscribe:jwt:alice"
    assert any(isinstance(a, AddSubscription) for a in shared.answer(core, actions, clock))


def test_over_the_limit_a_correlated_rate_limited_with_retry_after() -> None:
    core = authed(settings=limited(subscribe={"per_s": 1, "burst": 2}))
    shared, clock = SharedBuckets(), Clock()
    for i in range(2):
        shared.answer(core, send(core, subscribe(["agent_*"], msg_id=f"s{i}"), clock), clock)
    refused = shared.answer(core, send(core, subscribe(["agent_*"], msg_id="s9"), clock), clock)
    assert error_code(refused) == ("rate_limited", 1000, "s9")
    assert len(core.subscriptions) == 2
    clock.advance(1.0)
    assert any(isinstance(a, AddSubscription)
               for a in shared.answer(core, send(core, subscribe(["agent_*"]), clock), clock))


def test_other_types_are_unaffected() -> None:
    core = authed(settings=limited(subscribe={"per_s": 1, "burst": 1}))
    shared, clock = SharedBuckets(), Clock()
    shared.answer(core, send(core, subscribe(["agent_*"]), clock), clock)
    assert error_code(shared.answer(core, send(core, subscribe(["agent_*"]), clock), clock))[0] == "rate_limited"
    pong = send(core, {"id": "p", "type": "ping", "data": {}}, clock)
    assert isinstance(pong[0], Send) and pong[0].message["type"] == "pong"
    assert isinstance(send(core, agent_status(), clock)[0], Publish)


def test_the_bucket_is_per_identity_across_connections() -> None:
    settings = limited(agent_status={"per_s": 1, "burst": 2})
    shared, clock = SharedBuckets(), Clock()
    first, second = authed(settings=settings), authed(settings=settings)
    assert isinstance(shared.answer(first, send(first, agent_status(), clock), clock)[0], Publish)
    assert isinstance(shared.answer(second, send(second, agent_status(), clock), clock)[0], Publish)
    assert error_code(shared.answer(first, send(first, agent_status(), clock), clock))[0] == "rate_limited"
    other = authed(settings=settings)
    assert other.principal is not None
    other.principal = dataclasses.replace(other.principal, subject="bob")  # a bucket of its own
    assert isinstance(shared.answer(other, send(other, agent_status(), clock), clock)[0], Publish)


def test_an_invalid_limited_message_is_still_answered_with_its_error() -> None:
    core = authed(settings=limited(subscribe={"per_s": 5, "burst": 5}))
    shared, clock = SharedBuckets(), Clock()
    answer = shared.answer(core, send(core, {"id": "bad", "type": "subscribe", "data": {"events": []}}, clock),
                           clock)
    assert error_code(answer)[0] == "invalid_message"


def test_repeated_refusals_close_the_connection() -> None:
    core = authed(settings=make_settings(rate_limits={"ping": {"per_s": 1, "burst": 1}},
                                         rate_violations_before_close=3))
    shared, clock = SharedBuckets(), Clock()
    ping = {"id": "p", "type": "ping", "data": {}}
    shared.answer(core, send(core, ping, clock), clock)
    for _ in range(2):
        assert error_code(shared.answer(core, send(core, ping, clock), clock))[0] == "rate_limited"
    closing = shared.answer(core, send(core, ping, clock), clock)
    assert len(closing) == 1 and isinstance(closing[0], Close) and closing[0].code == 1008


def test_an_admitted_limited_message_ends_a_run_of_violations() -> None:
    core = authed(settings=make_settings(rate_limits={"ping": {"per_s": 1, "burst": 1}},
                                         rate_violations_before_close=3))
    shared, clock = SharedBuckets(), Clock()
    ping = {"id": "p", "type": "ping", "data": {}}
    for _ in range(5):
        shared.answer(core, send(core, ping, clock), clock)  # admitted
        assert error_code(shared.answer(core, send(core, ping, clock), clock))[0] == "rate_limited"
        assert error_code(shared.answer(core, send(core, ping, clock), clock))[0] == "rate_limited"
        clock.advance(1.0)
    assert not core.closed


def test_auth_request_before_authentication_is_counted_per_connection() -> None:
    settings = make_settings(rate_limits={"auth_request": {"per_s": 1, "burst": 1}})
    core = new_core(settings)
    shared, clock = SharedBuckets(), Clock()
    actions = send(core, auth_req("not-a-token", msg_id="a1"), clock)
    assert isinstance(actions[0], CheckTypeLimit) and actions[0].charge.key == "type:auth_request:conn:conn-1"
    assert shared.answer(core, actions, clock)[0].message["type"] == "auth_failure"  # type: ignore[union-attr]
    again = shared.answer(core, send(core, auth_req(token(), msg_id="a2"), clock), clock)
    assert error_code(again) == ("rate_limited", 1000, "a2")
    assert core.principal is None


def test_nothing_is_charged_when_no_type_is_limited() -> None:
    core = authed()
    actions = send(core, subscribe(["agent_*"]), Clock())
    assert not any(isinstance(a, CheckTypeLimit) for a in actions)
    assert isinstance(actions[1], Send) and actions[1].message["timestamp"] == T0

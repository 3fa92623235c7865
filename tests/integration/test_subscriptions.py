"""Subscriptions: patterns, filters, once-per-connection delivery, permissions (4.3, 5)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import READER_KEY, RunningGateway, make_token
from tests.integration.helpers import (
    agent_status,
    event,
    next_id,
    open_authed,
    open_ws,
    publish,
    workflow_started,
)


def ev(type_: str, **data: Any) -> dict[str, Any]:
    return event(type_, next_id("evt"), **data)


AGENT_LOG_A1 = {"agentId": "a1", "level": "info", "message": "hello"}

# (events, filters, expected normalised filters, [(event, delivered?)]); the last event
# of each case is delivered, so reading up to it proves nothing else came first.
Case = tuple[list[str], dict[str, Any] | None, dict[str, list[str]], list[tuple[dict[str, Any], bool]]]
CASES: dict[str, Case] = {
    "exact-type": (["agent_status"], None, {}, [
        (ev("agent_log", **AGENT_LOG_A1), False),
        (ev("workflow_started", workflowId="w1", name="x"), False),
        (ev("agent_status", agentId="a2", status="idle"), True),
        (ev("agent_status", agentId="a1", status="idle"), True),
    ]),
    "glob": (["agent_*"], None, {}, [
        (ev("tdd_phase_change", agentId="a1", currentPhase="red"), False),
        (ev("agent_log", **AGENT_LOG_A1), True),
        (ev("workflow_failed", workflowId="w1", error="boom"), False),
        (ev("agent_error", agentId="a3", message="x"), True),
        (ev("agent_status", agentId="a1", status="idle"), True),
    ]),
    "star": (["*"], None, {}, [
        (ev("system_alert", severity="info", message="m"), True),
        (ev("workflow_failed", workflowId="w1", error="boom"), True),
        (ev("github_issue_update", repository="o/r", action="opened", number=1, title="t",
            state="open", url="u", actor="me", labels=[]), True),
        (ev("agent_status", agentId="a1", status="idle"), True),
    ]),
    "filter-one-value": (["agent_status"], {"agentId": "a1"}, {"agentId": ["a1"]}, [
        (ev("agent_status", agentId="a2", status="idle"), False),
        (ev("agent_log", **AGENT_LOG_A1), False),
        (ev("agent_status", agentId="a1", status="idle"), True),
    ]),
    "filter-list": (["agent_status"], {"agentId": ["a2", "a1"]}, {"agentId": ["a1", "a2"]}, [
        (ev("agent_status", agentId="a3", status="idle"), False),
        (ev("agent_status", agentId="a2", status="idle"), True),
        (ev("agent_status", agentId="a1", status="idle"), True),
    ]),
    "several-keys": (["agent_*", "tdd_*"], {"agentId": "a1", "taskId": ["t1", "t2"]},
                     {"agentId": ["a1"], "taskId": ["t1", "t2"]}, [
        (ev("agent_log", **AGENT_LOG_A1), False),  # no taskId
        (ev("agent_log", agentId="a2", level="info", message="m", taskId="t1"), False),
        (ev("tdd_phase_change", agentId="a1", taskId="t3", currentPhase="red"), False),
        (ev("tdd_phase_change", agentId="a1", taskId="t2", currentPhase="green"), True),
        (ev("agent_log", agentId="a1", level="info", message="m", taskId="t1"), True),
    ]),
    "workflow-filter": (["workflow_*"], {"workflowId": "w1"}, {"workflowId": ["w1"]}, [
        (ev("workflow_started", workflowId="w2", name="x"), False),
        (ev("workflow_started", workflowId="w1", name="x"), True),
        (ev("workflow_complete", workflowId="w1"), True),
    ]),
    "repository-filter": (["github_*"], {"repository": "o/r"}, {"repository": ["o/r"]}, [
        (ev("github_issue_update", repository="o/other", action="opened", number=1, title="t",
            state="open", url="u", actor="me", labels=[]), False),
        (ev("github_issue_update", repository="o/r", action="opened", number=2, title="t",
            state="open", url="u", actor="me", labels=[]), True),
    ]),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_subscription_matrix(server: RunningGateway, case: str) -> None:
    events, filters, normalised, published = CASES[case]
    client = await open_authed(server)
    try:
        data: dict[str, Any] = {"events": events}
        if filters is not None:
            data["filters"] = filters
        update = await client.request("subscribe", data, req_id=f"sub-{case}")
        assert update["type"] == "subscription_update"
        assert update["metadata"]["correlationId"] == f"sub-{case}"
        assert update["data"]["status"] == "active"
        assert update["data"]["subscriptionId"]
        assert update["data"]["events"] == sorted(set(events))
        assert update["data"]["filters"] == normalised
        await publish(server, [e for e, _ in published])
        expected = [e["id"] for e, delivered in published if delivered]
        got = await client.until_event(expected[-1])
        assert [m["id"] for m in got] == expected
        assert [m["type"] for m in got] == [e["type"] for e, d in published if d]
    finally:
        await client.close()


async def test_invalid_patterns_and_filters_are_refused(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        cases: tuple[dict[str, Any], ...] = (
            {"events": ["no_such_type"]}, {"events": ["zzz_*"]}, {"events": []},
            {"events": ["agent_status"], "filters": {"colour": "red"}})
        for data in cases:
            reply = await client.request("subscribe", data)
            assert reply["type"] == "error" and reply["data"]["code"] == "invalid_message", reply
            assert reply["data"]["path"].startswith("data."), reply
    finally:
        await client.close()


async def test_event_delivered_once_however_many_subscriptions_match(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        await client.subscribe(["agent_*"])
        await client.subscribe(["agent_status"], {"agentId": "a1"})
        await client.subscribe(["agent_status", "agent_log"], {"agentId": ["a1", "a2"]})
        await client.subscribe(["*"])
        await publish(server, [agent_status("a1", "once-1"), agent_status("a2", "once-2"),
                               workflow_started("w1", "once-3")])
        got = await client.until_event("once-3")
        assert [m["id"] for m in got] == ["once-1", "once-2", "once-3"]
        await client.silent(0.1)
    finally:
        await client.close()


async def test_unsubscribe_stops_delivery(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        status_sub = await client.subscribe(["agent_status"])
        await client.subscribe(["agent_log"])
        await publish(server, agent_status("a1", "before"))
        assert (await client.recv())["id"] == "before"
        reply = await client.request("unsubscribe", {"subscriptionId": status_sub}, req_id="unsub-1")
        assert reply["type"] == "subscription_update"
        assert reply["data"] == {"subscriptionId": status_sub, "status": "removed"}
        await publish(server, [agent_status("a1", "after"), event("agent_log", "sentinel", **AGENT_LOG_A1)])
        assert (await client.recv())["id"] == "sentinel"
        again = await client.request("unsubscribe", {"subscriptionId": status_sub})
        assert again["type"] == "error" and again["data"]["code"] == "not_found"
    finally:
        await client.close()


async def test_subscriptions_are_per_connection(server: RunningGateway) -> None:
    a = await open_authed(server)
    b = await open_authed(server)
    try:
        sub = await a.subscribe(["agent_status"])
        await b.subscribe(["agent_log"])
        # b cannot remove a's subscription
        reply = await b.request("unsubscribe", {"subscriptionId": sub})
        assert reply["data"]["code"] == "not_found"
        await publish(server, [agent_status("a1", "p1"), event("agent_log", "p2", **AGENT_LOG_A1)])
        assert (await a.recv())["id"] == "p1"
        assert (await b.recv())["id"] == "p2"
    finally:
        await a.close()
        await b.close()


async def test_forbidden_subscription_is_refused_correlated(server: RunningGateway) -> None:
    client = await open_ws(f"{server.ws_url}?api_key={READER_KEY}")
    try:
        await client.recv_type("connect")
        await client.recv_type("auth_success")
        for events in (["workflow_*"], ["*"], ["system_alert"], ["agent_status", "workflow_started"]):
            reply = await client.request("subscribe", {"events": events}, req_id="forbid")
            assert reply["type"] == "error", reply
            assert reply["data"]["code"] == "forbidden"
            assert reply["metadata"]["correlationId"] == "forbid"
        # what the key does allow still works
        await client.subscribe(["agent_*"])
        await publish(server, [workflow_started("w1"), agent_status("a9", "ok")])
        assert (await client.recv())["id"] == "ok"
    finally:
        await client.close()


async def test_permission_filtering(server: RunningGateway) -> None:
    token = make_token("watcher", ("read:agent:a1",))
    client = await open_authed(server, token=token)
    try:
        for events, filters in ((["agent_*"], None), (["agent_status"], {"agentId": ["a1", "a2"]}),
                                (["workflow_*"], None), (["*"], {"taskId": "t1"})):
            data: dict[str, Any] = {"events": events}
            if filters:
                data["filters"] = filters
            reply = await client.request("subscribe", data)
            assert reply["type"] == "error" and reply["data"]["code"] == "forbidden", (events, filters, reply)
        await client.subscribe(["*"], {"agentId": "a1"})
        await client.subscribe(["agent_status"], {"agentId": "a1"})
        mix = [
            agent_status("a2", "m1"),
            agent_status("a1", "m2"),
            workflow_started("w1", "m3"),
            event("system_alert", "m4", severity="critical", message="disk full"),
            event("agent_log", "m5", agentId="a2", level="info", message="x", taskId="t1"),
            event("tdd_phase_change", "m6", agentId="a1", taskId="t1", currentPhase="red"),
            event("workflow_failed", "m7", workflowId="w1", error="x"),
            event("agent_status", "m8", agentId="a1", status="idle"),
        ]
        await publish(server, mix)
        got = await client.until_event("m8")
        assert [m["id"] for m in got] == ["m2", "m6", "m8"]
        assert all(m["data"]["agentId"] == "a1" for m in got)
    finally:
        await client.close()


async def test_subscription_limit(gateway_factory: Any) -> None:
    from tests.conftest import base_settings

    server = await gateway_factory(base_settings(max_subscriptions_per_connection=2))
    client = await open_authed(server)
    try:
        first = await client.subscribe(["agent_status"])
        await client.subscribe(["agent_log"])
        reply = await client.request("subscribe", {"events": ["agent_error"]})
        assert reply["type"] == "error" and reply["data"]["code"] == "forbidden"  # docs/protocol.md
        await client.request("unsubscribe", {"subscriptionId": first})
        await client.subscribe(["agent_error"])
    finally:
        await client.close()

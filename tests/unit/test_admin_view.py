"""The deployment-wide admin view over three in-process nodes with fake LocalAdmins."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from autosdlc_ws.broker.control import BroadcastResult, NodeInfo
from autosdlc_ws.broker.memory_control import MemoryControlChannel, MemoryControlHub
from autosdlc_ws.server import admin_view
from autosdlc_ws.server.admin_view import LocalAdmin, UnknownConnection, register_commands
from autosdlc_ws.server.logs import MessageLogConfig

T0 = 1_700_000_000_000


def conn(cid: str, subject: str, connected_at: int) -> dict[str, Any]:
    return {"connectionId": cid, "sessionId": f"s-{cid}", "subject": subject, "remoteAddress": "10.0.0.1",
            "connectedAt": connected_at, "subscriptions": []}


def group(code: str, type_: str, count: int, first: int, last: int, message: str = "m") -> dict[str, Any]:
    return {"code": code, "messageType": type_, "count": count, "firstAt": first, "lastAt": last,
            "lastMessage": message, "ratePerMin": count, "alerting": False}


@dataclass
class FakeLocalAdmin:
    conns: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    log_config: MessageLogConfig = field(default_factory=MessageLogConfig)
    resources: dict[str, int] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    closed: list[tuple[str, str]] = field(default_factory=list)

    def connections(self) -> list[dict[str, Any]]:
        return list(self.conns)

    def describe_connection(self, connection_id: str) -> dict[str, Any] | None:
        return next((c for c in self.conns if c["connectionId"] == connection_id), None)

    async def close_connection(self, connection_id: str, admin_subject: str) -> bool:
        found = self.describe_connection(connection_id)
        if found is None:
            return False
        self.conns.remove(found)
        self.closed.append((connection_id, admin_subject))
        return True

    def error_groups(self) -> list[dict[str, Any]]:
        return list(self.groups)

    def logging_config(self) -> dict[str, Any]:
        return self.log_config.to_json()

    def set_logging_config(self, config: MessageLogConfig) -> None:
        self.log_config = config

    def subscription_counts(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        return self.resources, self.types


async def hung_handler(command: str, args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}


@dataclass
class Deployment:
    hub: MemoryControlHub
    channels: dict[str, MemoryControlChannel]
    admins: dict[str, FakeLocalAdmin]

    async def add(self, node_id: str, admin: FakeLocalAdmin | None = None, *, hung: bool = False
                  ) -> MemoryControlChannel:
        admin = admin or FakeLocalAdmin()
        local: LocalAdmin = admin  # the fake keeps the protocol
        channel = MemoryControlChannel(self.hub, heartbeat_s=3600)
        handler = hung_handler if hung else register_commands(local)
        now = int(time.time() * 1000)
        await channel.start(NodeInfo(node_id, "h", 1, now, now, "0.1.0"), handler)
        self.channels[node_id], self.admins[node_id] = channel, admin
        return channel


@pytest.fixture
async def deployment() -> AsyncIterator[Deployment]:
    d = Deployment(MemoryControlHub(), {}, {})
    await d.add("node-a", FakeLocalAdmin(
        conns=[conn("c1", "alice", T0 + 30), conn("c2", "bob", T0 + 10)],
        groups=[group("invalid_json", "unknown", 2, T0 + 5, T0 + 50, "a-last")],
        resources={"agent:a1": 2, "repo:o/r": 1}, types={"agent_status": 2}))
    await d.add("node-b", FakeLocalAdmin(
        conns=[conn("c3", "alice", T0 + 20)],
        groups=[group("invalid_json", "unknown", 3, T0 + 1, T0 + 90, "b-last"),
                group("forbidden", "subscribe", 1, T0 + 7, T0 + 7)],
        resources={"agent:a1": 1}, types={"agent_status": 1, "test_result": 4}))
    await d.add("node-c", FakeLocalAdmin())
    yield d
    for channel in d.channels.values():
        await channel.close()


async def test_list_nodes(deployment: Deployment) -> None:
    body = await admin_view.list_nodes(deployment.channels["node-b"])
    assert body["count"] == 3 and [n["nodeId"] for n in body["nodes"]] == ["node-a", "node-b", "node-c"]
    assert {"nodeId", "host", "pid", "startedAt", "lastSeen", "connections", "version"} <= set(body["nodes"][0])
    assert "partial" not in body


async def test_list_nodes_says_partial_when_the_registry_is_out_of_reach(deployment: Deployment) -> None:
    class Cut(MemoryControlChannel):
        @property
        def reachable(self) -> bool:
            return False

    cut = Cut(deployment.hub)
    now = int(time.time() * 1000)
    await cut.start(NodeInfo("node-x", "h", 1, now, now, "0.1.0"), register_commands(FakeLocalAdmin()))
    deployment.channels["node-x"] = cut
    body = await admin_view.list_nodes(cut)
    assert body["partial"] is True and body["missingNodes"] == []


async def test_list_connections_merges_every_node_oldest_first(deployment: Deployment) -> None:
    body = await admin_view.list_connections(deployment.channels["node-c"])
    assert [(c["connectionId"], c["nodeId"]) for c in body["connections"]] == [
        ("c2", "node-a"), ("c3", "node-b"), ("c1", "node-a")]
    assert body["count"] == 3 and "partial" not in body
    assert body["connections"][0]["sessionId"] == "s-c2"


async def test_list_connections_filters_by_subject_and_node(deployment: Deployment) -> None:
    control = deployment.channels["node-a"]
    by_subject = await admin_view.list_connections(control, subject="alice")
    assert [c["connectionId"] for c in by_subject["connections"]] == ["c3", "c1"]
    by_node = await admin_view.list_connections(control, node_id="node-b")
    assert [c["connectionId"] for c in by_node["connections"]] == ["c3"] and by_node["count"] == 1
    both = await admin_view.list_connections(control, subject="bob", node_id="node-b")
    assert both == {"connections": [], "count": 0}


async def test_a_node_that_does_not_answer_makes_answers_partial(deployment: Deployment) -> None:
    await deployment.add("node-d", hung=True)
    control = deployment.channels["node-a"]
    started = time.monotonic()
    body = await admin_view.list_connections(control, timeout_s=0.2)
    assert time.monotonic() - started < 1.0
    assert body["count"] == 3 and body["partial"] is True and body["missingNodes"] == ["node-d"]
    # a filter on another node is not made partial by node-d's silence
    assert "partial" not in await admin_view.list_connections(control, node_id="node-b", timeout_s=0.2)
    errors = await admin_view.merged_errors(control, timeout_s=0.2)
    assert errors["partial"] is True and errors["missingNodes"] == ["node-d"]
    counts = await admin_view.subscription_counts(control, timeout_s=0.2)
    assert counts["missingNodes"] == ["node-d"]
    # the owner answers, so a found connection is a whole answer
    assert (await admin_view.find_connection(control, "c3", timeout_s=0.2))["nodeId"] == "node-b"
    with pytest.raises(UnknownConnection) as raised:
        await admin_view.find_connection(control, "nope", timeout_s=0.2)
    assert raised.value.missing_nodes == ["node-d"]  # it might be there


async def test_find_connection_asks_every_node_and_the_owner_answers(deployment: Deployment) -> None:
    found = await admin_view.find_connection(deployment.channels["node-a"], "c3")
    assert found == {**conn("c3", "alice", T0 + 20), "nodeId": "node-b"}
    with pytest.raises(UnknownConnection) as raised:
        await admin_view.find_connection(deployment.channels["node-a"], "c-unknown")
    assert raised.value.missing_nodes == [] and raised.value.code.value == "not_found"


async def test_close_connection_closes_it_on_its_node_naming_the_admin(deployment: Deployment) -> None:
    body = await admin_view.close_connection(deployment.channels["node-c"], "c3", "root")
    assert body == {"closed": "c3"}
    assert deployment.admins["node-b"].closed == [("c3", "root")]
    assert deployment.admins["node-a"].closed == []
    with pytest.raises(UnknownConnection):
        await admin_view.close_connection(deployment.channels["node-c"], "c3", "root")  # already gone


async def test_merged_errors_sum_counts_and_list_nodes(deployment: Deployment) -> None:
    body = await admin_view.merged_errors(deployment.channels["node-a"])
    assert body["total"] == 6
    first, second = body["groups"]
    assert (first["code"], first["messageType"], first["count"], first["nodes"]) == (
        "invalid_json", "unknown", 5, ["node-a", "node-b"])
    assert (first["firstAt"], first["lastAt"], first["lastMessage"], first["ratePerMin"]) == (
        T0 + 1, T0 + 90, "b-last", 5)
    assert (second["code"], second["count"], second["nodes"]) == ("forbidden", 1, ["node-b"])
    assert deployment.admins["node-a"].groups[0]["count"] == 2  # the node's own data is not changed


async def test_set_logging_applies_on_every_node_and_get_reads_it_back(deployment: Deployment) -> None:
    control = deployment.channels["node-b"]
    wanted = {"enabled": True, "types": ["agent_*"], "sampleRate": 0.5}
    body = await admin_view.set_logging(control, wanted)
    assert body["enabled"] is True and body["types"] == ["agent_*"] and body["sampleRate"] == 0.5
    for admin in deployment.admins.values():
        assert admin.log_config.enabled and admin.log_config.types == ["agent_*"]
    assert await admin_view.get_logging(deployment.channels["node-a"]) == body


async def test_get_logging_names_nodes_that_run_another_filter(deployment: Deployment) -> None:
    deployment.admins["node-c"].log_config = MessageLogConfig(enabled=True)
    body = await admin_view.get_logging(deployment.channels["node-c"])
    assert body["enabled"] is False  # two nodes against one
    assert body["divergentNodes"] == ["node-c"]


async def test_a_bad_logging_filter_is_refused_before_any_node_changes(deployment: Deployment) -> None:
    with pytest.raises(ValueError, match="sampleRate"):
        await admin_view.set_logging(deployment.channels["node-a"], {"sampleRate": 3})
    with pytest.raises(ValueError, match="unknown"):
        await admin_view.set_logging(deployment.channels["node-a"], {"colour": "red"})
    assert all(not a.log_config.enabled for a in deployment.admins.values())


async def test_subscription_counts_are_summed_per_resource_and_type(deployment: Deployment) -> None:
    body = await admin_view.subscription_counts(deployment.channels["node-a"])
    assert body == {
        "resources": [{"resource": "agent:a1", "subscribers": 3}, {"resource": "repo:o/r", "subscribers": 1}],
        "types": [{"type": "test_result", "subscribers": 4}, {"type": "agent_status", "subscribers": 3}],
    }


async def test_an_unknown_command_is_refused_by_the_handler() -> None:
    handler = register_commands(FakeLocalAdmin())
    with pytest.raises(ValueError, match="unknown admin command"):
        await handler("admin.reboot", {})


def test_with_partial_marks_only_incomplete_answers() -> None:
    assert admin_view.with_partial({"x": 1}, BroadcastResult({"a": {}}, [])) == {"x": 1}
    assert admin_view.with_partial({"x": 1}, BroadcastResult({"a": {}}, ["b"])) == {
        "x": 1, "partial": True, "missingNodes": ["b"]}
    assert admin_view.with_partial({}, BroadcastResult({"a": {}}, [], reachable=False)) == {
        "partial": True, "missingNodes": []}


# --- query parsing and PUT bodies ---------------------------------------------------------


def test_connection_filters_take_subject_and_node_once() -> None:
    assert admin_view.connection_filters({}) == {}
    filters = admin_view.connection_filters({"subject": ["carol"], "nodeId": ["h:1:ab"]})
    assert filters == {"subject": "carol", "node_id": "h:1:ab"}
    for bad in ({"subject": [""]}, {"subject": ["a", "b"]}, {"subjet": ["a"]}, {"nodeId": ["x\ny"]},
                {"nodeId": ["x" * 257]}):
        with pytest.raises(ValueError):
            admin_view.connection_filters(bad)


def test_a_get_logging_body_put_back_sets_its_filter() -> None:
    body = {"enabled": True, "types": ["ping"], "partial": True, "missingNodes": ["n2"], "divergentNodes": ["n3"]}
    assert admin_view.logging_settings(body) == {"enabled": True, "types": ["ping"]}

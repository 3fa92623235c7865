"""The WebSocket client's API surface against a real in-process gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from autosdlc_ws.client import (
    AuthenticationFailed,
    AutoSDLCWebSocket,
    ClientClosed,
    ConnectError,
    ConnectionState,
    ForbiddenError,
    InvalidMessageError,
    MessageTooLarge,
    Publisher,
    RequestError,
    to_dict,
)
from autosdlc_ws.core.messages import AgentStatusMessage, Envelope
from tests.conftest import (
    PUBLISHER_KEY,
    READER_KEY,
    RunningGateway,
    base_settings,
    free_port,
    make_token,
    timeout,
)
from tests.sdk.conftest import wait_until


async def next_event(ws: AutoSDLCWebSocket, seconds: float = 5.0) -> Any:
    return await asyncio.wait_for(ws.__anext__(), timeout(seconds))


def status(agent: str, state: str = "busy", **extra: Any) -> dict[str, Any]:
    return {"agentId": agent, "status": state, **extra}


async def test_issue_example_typed_events_handlers_and_iteration(server: RunningGateway) -> None:
    token = make_token()
    seen: list[Any] = []
    async with AutoSDLCWebSocket(server.ws_url, token=token) as ws:
        assert ws.state is ConnectionState.OPEN and ws.session_id and ws.connection_id

        @ws.on("agent_status")
        async def show(event: Any) -> None:
            seen.append(event)

        sub_id = await ws.subscribe_to_agent("coder-001",
                                             ["agent_status", "agent_task_update", "agent_metric"])
        assert sub_id.startswith("sub-") and set(ws.subscriptions) == {sub_id}
        assert ws.subscriptions[sub_id].filters == {"agentId": "coder-001"}
        async with Publisher(server.http_url, token=token) as pub:
            await pub.publish("agent_status", status("coder-002"))  # filtered out by the server
            event_id = await pub.publish("agent_status", status(
                "coder-001", currentTask={"id": "task-9", "progress": 42}, extraField="kept"))
            await pub.publish("agent_metric", {"agentId": "coder-001", "cpuUsage": 12.5})
        event = await next_event(ws)
        assert isinstance(event, AgentStatusMessage)
        assert event.id == event_id and event.type == "agent_status" and event.timestamp > 0
        assert event.data.current_task is not None and event.data.current_task.progress == 42
        assert event.data.model_extra == {"extraField": "kept"}
        assert to_dict(event)["data"]["currentTask"] == {"id": "task-9", "progress": 42.0}
        metric = await next_event(ws)
        assert metric.type == "agent_metric" and metric.data.cpu_usage == 12.5
        await wait_until(lambda: len(seen) == 1)
        assert seen[0] is event  # handlers and the iterator share the parsed envelope
        assert ws.last_event_id == metric.id
    assert ws.state is ConnectionState.CLOSED
    with pytest.raises(StopAsyncIteration):
        await next_event(ws)


async def test_subscribe_errors_carry_the_code(server: RunningGateway) -> None:
    token = make_token("bob", ("read:agent:coder-001",))
    async with AutoSDLCWebSocket(server.ws_url, token=token) as ws:
        with pytest.raises(ForbiddenError) as forbidden:
            await ws.subscribe_to_agent("coder-002", ["agent_status"])
        assert forbidden.value.code == "forbidden" and isinstance(forbidden.value, RequestError)
        with pytest.raises(ForbiddenError):
            await ws.subscribe(["agent_status"])  # no filter: could match agents bob may not read
        with pytest.raises(InvalidMessageError) as invalid:
            await ws.subscribe(["no_such_event"], {"agentId": "coder-001"})
        assert invalid.value.code == "invalid_message" and invalid.value.path == "data.events"
        sub_id = await ws.subscribe("agent_*", {"agentId": ["coder-001"]})
        assert list(ws.subscriptions) == [sub_id]


async def test_unsubscribe_stops_delivery(server: RunningGateway) -> None:
    token = make_token()
    async with AutoSDLCWebSocket(server.ws_url, token=token) as ws, \
            Publisher(server.http_url, token=token) as pub:
        a = await ws.subscribe(["agent_status"], {"agentId": "a"})
        b = await ws.subscribe(["agent_status"], {"agentId": "b"})
        await ws.unsubscribe(a)
        assert list(ws.subscriptions) == [b]
        with pytest.raises(KeyError):
            await ws.unsubscribe(a)
        await pub.publish("agent_status", status("a"))
        await pub.publish("agent_status", status("b"))
        event = await next_event(ws)
        assert event.data.agent_id == "b"
        assert server.gateway.connections[ws.connection_id].core.subscriptions.keys() == {b}


async def test_handlers_globs_sync_async_and_removal(server: RunningGateway) -> None:
    token = make_token()
    calls: dict[str, list[str]] = {"tdd": [], "all": [], "exact": [], "sub": [], "removed": []}
    async with AutoSDLCWebSocket(server.ws_url, token=token, iterate=False) as ws, \
            Publisher(server.http_url, token=token) as pub:
        ws.on("tdd_*", lambda e: calls["tdd"].append(e.type))  # sync handler

        @ws.on("*")
        async def every(event: Any) -> None:  # async handler, decorator form
            assert isinstance(event, Envelope) and event.id and event.timestamp
            calls["all"].append(event.type)

        ws.on("subscription_update", lambda e: calls["sub"].append(e.data.status))  # control frame
        remove = ws.on("coverage_update", lambda e: calls["removed"].append(e.type))
        remove()
        exact = ws.on("test_result", lambda e: calls["exact"].append(e.type))
        with pytest.raises(ValueError):
            ws.on("nothing_*", print)
        await ws.subscribe(["tdd_*", "test_result", "coverage_update"], {"agentId": "a"})
        await pub.publish("tdd_phase_change", {"agentId": "a", "currentPhase": "red"})
        await pub.publish("test_result", {"agentId": "a", "total": 3, "passing": 3, "failing": 0})
        await pub.publish("coverage_update", {"agentId": "a", "lines": 80})
        await wait_until(lambda: len(calls["all"]) == 3)
        assert calls["all"] == ["tdd_phase_change", "test_result", "coverage_update"]
        assert calls["tdd"] == ["tdd_phase_change"]  # globs match by prefix
        assert calls["exact"] == ["test_result"] and calls["removed"] == []
        assert calls["sub"] == ["active"]
        exact()
        assert ws.off("*", every) and not ws.off("*", every)
        with pytest.raises(RuntimeError):
            ws.__aiter__()  # iterate=False


async def test_untyped_mode_yields_dicts(server: RunningGateway) -> None:
    token = make_token()
    async with AutoSDLCWebSocket(server.ws_url, token=token, typed=False) as ws, \
            Publisher(server.http_url, token=token) as pub:
        await ws.subscribe(["system_*"])
        await pub.publish("system_notification", {"message": "hello", "future": {"x": 1}})
        event = await next_event(ws)
        assert isinstance(event, dict)
        assert event["data"] == {"message": "hello", "future": {"x": 1}}


async def test_send_publish_and_ping_over_the_websocket(server: RunningGateway) -> None:
    token = make_token()
    pongs: list[Any] = []
    async with AutoSDLCWebSocket(server.ws_url, token=token) as watcher, \
            AutoSDLCWebSocket(server.ws_url, api_key=PUBLISHER_KEY) as sender:
        await watcher.subscribe(["agent_log"], {"agentId": "a"})
        sender.on("pong", pongs.append)
        first = await sender.publish("agent_log", {"agentId": "a", "level": "info", "message": "one"})
        second = await sender.send({"type": "agent_log", "data": {"agentId": "a", "level": "info",
                                                                  "message": "two"}})
        ping_id = await sender.send({"type": "ping", "data": {}})
        got = [await next_event(watcher), await next_event(watcher)]
        assert [e.id for e in got] == [first, second]
        assert [e.data.message for e in got] == ["one", "two"]
        await wait_until(lambda: len(pongs) == 1)
        assert pongs[0].metadata.correlation_id == ping_id
        big = {"agentId": "a", "level": "info", "message": "x" * 70_000}
        with pytest.raises(MessageTooLarge):
            await sender.publish("agent_log", big)


async def test_state_callbacks(server: RunningGateway) -> None:
    states: list[ConnectionState] = []
    later: list[ConnectionState] = []

    async def async_listener(state: ConnectionState) -> None:
        later.append(state)

    ws = AutoSDLCWebSocket(server.ws_url, token=make_token(), on_state_change=states.append)
    ws.add_state_listener(async_listener)
    assert ws.state is ConnectionState.CLOSED
    with pytest.raises(ClientClosed):
        await ws.subscribe(["agent_status"])  # not connected yet
    await ws.connect()
    await ws.close()
    await ws.close()  # idempotent
    assert states == [ConnectionState.CONNECTING, ConnectionState.OPEN, ConnectionState.CLOSED]
    await wait_until(lambda: len(later) == 3)
    with pytest.raises(ClientClosed):
        await ws.connect()
    await ws.wait_closed()  # closed by the application: no error


async def test_gzip_frames_are_decoded(gateway_factory: Any) -> None:
    running = await gateway_factory(base_settings(gzip_threshold_bytes=256))
    token = make_token()
    async with AutoSDLCWebSocket(running.ws_url, token=token, compression="gzip") as ws, \
            Publisher(running.http_url, token=token) as pub:
        await ws.subscribe(["agent_log"])
        await pub.publish("agent_log", {"agentId": "a", "level": "info", "message": "small"})
        await pub.publish("agent_log", {"agentId": "a", "level": "info", "message": "y" * 5000})
        small, large = await next_event(ws), await next_event(ws)
        assert small.metadata is None or not small.metadata.compressed
        assert large.metadata.compressed is True and large.data.message == "y" * 5000
        conn = running.gateway.connections[ws.connection_id]
        assert conn.core.gzip is True


async def test_upgrade_401_and_403_raise_without_retry(server: RunningGateway) -> None:
    with pytest.raises(AuthenticationFailed) as bad:
        await AutoSDLCWebSocket(server.ws_url, token="not-a-jwt").connect()
    assert bad.value.status == 401
    expired = make_token(ttl_s=-60)
    with pytest.raises(AuthenticationFailed) as old:
        await AutoSDLCWebSocket(server.ws_url, token=expired).connect()
    assert old.value.status == 401
    with pytest.raises(AuthenticationFailed) as no_read:
        await AutoSDLCWebSocket(server.ws_url, token=make_token(permissions=("publish:*",))).connect()
    assert no_read.value.status == 403
    ws = AutoSDLCWebSocket(server.ws_url, api_key="ask_wrong")
    with pytest.raises(AuthenticationFailed):
        await ws.connect()
    assert ws.state is ConnectionState.CLOSED and isinstance(ws.error, AuthenticationFailed)
    assert sum(server.gateway.stats.connections_opened.values()) == 0


async def test_api_key_and_unreachable_server(server: RunningGateway) -> None:
    async with AutoSDLCWebSocket(server.ws_url, api_key=READER_KEY) as ws:
        assert await ws.subscribe_to_agent("coder-001")
    with pytest.raises(ConnectError):
        await AutoSDLCWebSocket(f"ws://127.0.0.1:{free_port()}/ws", token="t", connect_timeout=2).connect()
    with pytest.raises(ValueError):
        AutoSDLCWebSocket(server.ws_url)  # no credentials


async def test_snapshot_on_subscribe_and_the_design_documents_short_names(server: RunningGateway) -> None:
    token = make_token()
    async with Publisher(server.http_url, token=token) as pub:
        first = await pub.publish("agent_status", status("coder-001"))
        latest = await pub.publish("agent_status", status("coder-001", currentTask={"id": "t", "progress": 7}))
        await pub.publish("agent_status", status("coder-002"))  # another agent: filtered out
    async with AutoSDLCWebSocket(server.ws_url, token=token, typed=False) as ws:
        await ws.subscribe_to_agent("coder-001", ["status", "task_update"], snapshot=True)
        event = await next_event(ws)
        assert event["id"] == latest != first  # the current state only, marked as such
        assert event["metadata"]["snapshot"] is True
        async with Publisher(server.http_url, token=token) as pub:
            live = await pub.publish("agent_task_update", {"agentId": "coder-001", "taskId": "t",
                                                           "status": "completed"})
        event = await next_event(ws)
        assert event["id"] == live and not (event.get("metadata") or {}).get("snapshot")

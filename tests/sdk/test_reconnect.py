"""Reconnect, resume and reset: network cuts and stalls (proxy), restarts and kill -9
(subprocess), the outgoing queue while disconnected."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from autosdlc_ws.client import (
    AutoSDLCWebSocket,
    ConnectionState,
    Publisher,
    QueueFull,
    ReconnectPolicy,
    ResetEvent,
)
from tests.conftest import RunningGateway, base_settings, make_token, timeout
from tests.sdk.conftest import ServerProcess, TcpProxy, wait_until

FAST = ReconnectPolicy(base=0.02, cap=0.2, stable_after=0.5)


async def next_event(ws: AutoSDLCWebSocket, seconds: float = 5.0) -> Any:
    return await asyncio.wait_for(ws.__anext__(), timeout(seconds))


def log(agent: str, message: str) -> dict[str, Any]:
    return {"agentId": agent, "level": "info", "message": message}


async def test_network_cut_resumes_without_resubscribing(server: RunningGateway, proxy_factory: Any) -> None:
    proxy: TcpProxy = await proxy_factory(server.port)
    token = make_token()
    updates: list[str] = []
    async with AutoSDLCWebSocket(proxy.ws_url, token=token, reconnect=FAST) as ws, \
            Publisher(server.http_url, token=token) as pub:
        ws.on("subscription_update", lambda e: updates.append(e.data.status))
        sub_id = await ws.subscribe(["agent_log"], {"agentId": "a"})
        await pub.publish("agent_log", log("a", "before"))
        assert (await next_event(ws)).data.message == "before"
        session = ws.session_id
        proxy.refusing = True
        proxy.drop_all()
        await wait_until(lambda: ws.state is ConnectionState.RECONNECTING)
        missed = [await pub.publish("agent_log", log("a", f"missed-{i}")) for i in range(3)]
        proxy.refusing = False
        await wait_until(lambda: ws.state is ConnectionState.OPEN)
        got = [await next_event(ws) for _ in range(3)]
        assert [e.id for e in got] == missed  # replayed in order
        await pub.publish("agent_log", log("a", "live"))
        assert (await next_event(ws)).data.message == "live"
        assert ws.session_id == session and ws.stats.resumed == 1 and ws.stats.resets == 0
        assert list(ws.subscriptions) == [sub_id] and ws.subscriptions[sub_id].server_id == sub_id
        await wait_until(lambda: updates == ["active", "resumed"])  # restored by the server, not re-sent
        conn = server.gateway.connections[ws.connection_id]
        assert list(conn.core.subscriptions) == [sub_id]


async def test_stalled_network_is_detected_by_the_heartbeat(gateway_factory: Any, proxy_factory: Any) -> None:
    running = await gateway_factory(base_settings(heartbeat_interval_s=0.5))
    proxy: TcpProxy = await proxy_factory(running.port)
    token = make_token()
    async with AutoSDLCWebSocket(proxy.ws_url, token=token, reconnect=FAST, pong_timeout=0.5,
                                 connect_timeout=1.0) as ws, \
            Publisher(running.http_url, token=token) as pub:
        assert ws.heartbeat_interval == 0.5  # learned from the connect frame
        await ws.subscribe(["agent_log"], {"agentId": "a"})
        proxy.stall()  # no bytes move, nothing is closed
        stalled_at = time.monotonic()
        await wait_until(lambda: ws.state is ConnectionState.RECONNECTING, 5)
        detected_after = time.monotonic() - stalled_at
        assert ws.stats.heartbeat_timeouts == 1  # the application-level watchdog fired
        assert detected_after < timeout(0.5 + 0.5 + 0.5)  # interval + pong timeout + slack
        during = await pub.publish("agent_log", log("a", "during the stall"))
        proxy.unstall()
        got = await next_event(ws, 10)
        assert got.id == during and ws.state is ConnectionState.OPEN
        assert ws.stats.resumed == 1 and ws.stats.resets == 0


async def test_outgoing_queue_is_bounded_and_flushed_in_order(server: RunningGateway,
                                                               proxy_factory: Any) -> None:
    proxy: TcpProxy = await proxy_factory(server.port)
    token = make_token()
    async with AutoSDLCWebSocket(server.ws_url, token=token) as watcher, \
            AutoSDLCWebSocket(proxy.ws_url, token=token, reconnect=FAST, outbox_size=3) as ws:
        await watcher.subscribe(["agent_log"], {"agentId": "q"})
        proxy.refusing = True
        proxy.drop_all()
        await wait_until(lambda: ws.state is ConnectionState.RECONNECTING)
        ids = [await ws.publish("agent_log", log("q", f"m{i}")) for i in range(2)]
        pending_sub = asyncio.create_task(ws.subscribe(["agent_status"], {"agentId": "q"}))
        await asyncio.sleep(0.05)
        assert not pending_sub.done()  # a request waits in the same queue
        assert ws.pending_outgoing == 3
        with pytest.raises(QueueFull):
            await ws.publish("agent_log", log("q", "one too many"))
        with pytest.raises(QueueFull):
            await ws.subscribe(["agent_log"], {"agentId": "q"})
        proxy.refusing = False
        got = [await next_event(watcher) for _ in range(2)]
        assert [e.id for e in got] == ids
        assert (await asyncio.wait_for(pending_sub, timeout(5))).startswith("sub-")
        assert ws.pending_outgoing == 0


async def _restart_scenario(server_process: Any, sig: int) -> AutoSDLCWebSocket:
    proc: ServerProcess = await server_process(heartbeat_interval_s=1, shutdown_grace_s=1).start()
    token = make_token()
    resets: list[ResetEvent] = []
    ws = AutoSDLCWebSocket(proc.ws_url, token=token, reconnect=FAST, on_reset=resets.append)
    await ws.connect()
    try:
        sub_id = await ws.subscribe(["agent_status"], {"agentId": "r"})
        async with Publisher(proc.http_url, token=token) as pub:
            await pub.publish("agent_status", {"agentId": "r", "status": "busy"})
        assert (await next_event(ws)).data.status == "busy"
        old_session = ws.session_id
        await proc.stop(sig)
        await wait_until(lambda: ws.state is ConnectionState.RECONNECTING)
        await proc.start()  # same port, empty memory: the session is gone
        reset = await next_event(ws, 10)
        assert isinstance(reset, ResetEvent) and reset.type == "$reset"
        assert reset.data.reason == "session_not_resumed"
        assert reset.data.subscription_ids == (sub_id,)
        assert reset.data.previous_session_id == old_session != ws.session_id
        assert resets == [reset]
        await wait_until(lambda: ws.subscriptions[sub_id].server_id not in (None, sub_id))
        async with Publisher(proc.http_url, token=token) as pub:
            await pub.publish("agent_status", {"agentId": "r", "status": "idle"})
        assert (await next_event(ws)).data.status == "idle"
        assert list(ws.subscriptions) == [sub_id]  # the caller's id is stable
        await ws.unsubscribe(sub_id)  # maps to the new server id
        assert ws.stats.resumed == 0 and ws.stats.reconnects == 1 and ws.stats.resets == 1
        return ws
    finally:
        await ws.close()


async def test_server_restart_surfaces_reset_and_resubscribes(server_process: Any) -> None:
    ws = await _restart_scenario(server_process, signal.SIGTERM)
    assert ws.stats.last_close_code == 1001  # disconnect frame, then going away


async def test_server_kill_9_surfaces_reset_and_resubscribes(server_process: Any) -> None:
    ws = await _restart_scenario(server_process, signal.SIGKILL)
    assert ws.stats.last_close_code == 1006


async def test_history_past_retention_surfaces_a_reset(gateway_factory: Any, proxy_factory: Any) -> None:
    running = await gateway_factory(base_settings(history_max_events=3))
    proxy: TcpProxy = await proxy_factory(running.port)
    token = make_token()
    async with AutoSDLCWebSocket(proxy.ws_url, token=token, reconnect=FAST) as ws, \
            Publisher(running.http_url, token=token) as pub:
        sub_id = await ws.subscribe(["agent_log"], {"agentId": "h"})
        await pub.publish("agent_log", log("h", "seen"))
        assert (await next_event(ws)).data.message == "seen"
        proxy.refusing = True
        proxy.drop_all()
        await wait_until(lambda: ws.state is ConnectionState.RECONNECTING)
        for i in range(5):  # pushes the last seen event out of the 3-event history
            await pub.publish("agent_log", log("h", f"gone-{i}"))
        proxy.refusing = False
        reset = await next_event(ws)
        assert isinstance(reset, ResetEvent) and reset.data.reason == "history_lost"
        assert reset.data.subscription_ids == (sub_id,) and reset.data.detail
        assert ws.stats.resumed == 1  # the session itself survived: no re-subscribe
        await pub.publish("agent_log", log("h", "after"))
        assert (await next_event(ws)).data.message == "after"


async def test_a_new_client_can_resume_a_session_by_id(server: RunningGateway) -> None:
    token = make_token()
    first = AutoSDLCWebSocket(server.ws_url, token=token)
    await first.connect()
    sub_id = await first.subscribe(["agent_log"], {"agentId": "s"})
    session, last = first.session_id, first.last_event_id
    await first.close()
    async with Publisher(server.http_url, token=token) as pub:
        missed = await pub.publish("agent_log", log("s", "while no process ran"))
    async with AutoSDLCWebSocket(server.ws_url, token=token, session_id=session, last_event_id=last) as ws:
        assert (await next_event(ws)).id == missed
        assert ws.session_id == session and list(ws.subscriptions) == [sub_id]  # adopted


async def test_half_open_old_connection_does_not_lose_new_subscriptions(
        server: RunningGateway, proxy_factory: Any) -> None:
    """The client gives up on a silent connection and resumes while the server still holds
    the old one; subscriptions made after that must survive the old one's end."""
    proxy: TcpProxy = await proxy_factory(server.port)
    token = make_token()
    async with AutoSDLCWebSocket(proxy.ws_url, token=token, reconnect=FAST, heartbeat_interval=0.2,
                                 pong_timeout=0.2) as ws, Publisher(server.http_url, token=token) as pub:
        await ws.subscribe(["agent_log"], {"agentId": "a"})
        old = ws.connection_id
        proxy.freeze_existing()  # the old path goes silent, even its close never arrives
        await wait_until(lambda: ws.connection_id != old and ws.state is ConnectionState.OPEN)
        b = await ws.subscribe(["agent_log"], {"agentId": "b"})
        await wait_until(lambda: old not in server.gateway.connections)  # the server let it go
        current = ws.connection_id
        proxy.drop_all()
        await wait_until(lambda: ws.connection_id != current and ws.state is ConnectionState.OPEN)
        await pub.publish("agent_log", log("b", "for b"))
        assert (await next_event(ws)).data.agent_id == "b"
        assert b in server.gateway.connections[ws.connection_id].core.subscriptions
        assert ws.stats.resets == 0 and ws.stats.resumed == 2

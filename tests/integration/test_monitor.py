"""The system monitor reports broker loss locally, and resolves it once; other alerts
once per deployment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import websockets

from autosdlc_ws.broker.base import Position, PublishReceipt
from autosdlc_ws.broker.memory import MemoryEventLog, memory_backend
from autosdlc_ws.broker.memory_control import MemoryControlChannel, MemoryControlHub
from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.monitor import SystemMonitor
from tests.conftest import RunningGateway, base_settings, make_token, timeout


class FlakyLog(MemoryEventLog):
    up = True

    async def ready(self) -> bool:
        return self.up

    async def publish(self, events: Sequence[dict[str, Any]]) -> list[PublishReceipt]:
        if not self.up:
            raise BrokerUnavailable("test broker is down")
        return await super().publish(events)


async def _next_of_type(ws: Any, type_: str) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
        if msg["type"] == type_:
            return msg


async def test_broker_loss_alert_is_delivered_locally_and_resolved(server: RunningGateway) -> None:
    gateway: Gateway = server.gateway
    flaky = FlakyLog()
    await flaky.start(gateway.hub.on_broker_event)
    gateway.backend.log = flaky
    monitor = SystemMonitor(gateway)
    token = make_token(permissions=("read:system",))
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        await _next_of_type(ws, "auth_success")
        await ws.send(json.dumps({"id": "s", "type": "subscribe", "data": {"events": ["system_alert"]}}))
        await _next_of_type(ws, "subscription_update")

        assert await monitor.check() == []  # healthy: nothing to say
        flaky.up = False
        fired = await monitor.check()
        assert [t.rule for t in fired] == ["broker_unavailable"]
        assert await monitor.check() == []  # still down: no second alert
        alert = await _next_of_type(ws, "system_alert")
        assert alert["data"]["severity"] == "critical" and alert["data"]["resolved"] is False

        flaky.up = True
        resolved = await monitor.check()
        assert [(t.rule, t.fired) for t in resolved] == [("broker_unavailable", False)]
        cleared = await _next_of_type(ws, "system_alert")
        assert cleared["data"]["resolved"] is True
        assert cleared["data"]["alertId"] == alert["data"]["alertId"]


async def test_deployment_status_on_start(server: RunningGateway) -> None:
    head = await server.gateway.backend.log.head()
    history = await server.gateway.backend.log.history_after(position=Position(head.epoch, 0))
    started = [r.event for r in history.events if r.event["type"] == "deployment_status"]
    assert started and started[0]["data"]["status"] == "started"


async def test_two_nodes_raise_one_alert_and_one_resolution_for_the_deployment() -> None:
    hub = MemoryControlHub()
    gateways: list[Gateway] = []
    published: list[tuple[int, dict[str, Any]]] = []
    monitors: list[SystemMonitor] = []
    for i in range(2):
        backend = memory_backend()
        backend.control = MemoryControlChannel(hub)
        gateway = Gateway(base_settings(alert_connections=3, monitor_interval_s=1.0), backend=backend)
        await gateway.start()
        gateways.append(gateway)
        monitor = SystemMonitor(gateway)

        async def record(event: dict[str, Any], node: int = i) -> None:
            published.append((node, event))

        monitor.emit = record  # type: ignore[method-assign]
        monitors.append(monitor)

    live = [0, 1]

    async def observe(connections: tuple[int, int]) -> list[tuple[int, dict[str, Any]]]:
        for i in live:
            gateways[i].connections = {f"c{n}": object() for n in range(connections[i])}  # type: ignore[misc]
            gateways[i].control.update(connections[i], gateways[i].node_gauges())
            await gateways[i].control.heartbeat()  # type: ignore[attr-defined]
        published.clear()
        for i in live:
            await monitors[i].check()
        return [(node, e) for node, e in published if e["data"]["title"] == "Many connections"]

    try:
        assert await observe((1, 1)) == []
        ((leader, fired),) = await observe((2, 1))  # 3 in the deployment, neither node alone
        assert fired["data"]["alertId"] == "deployment:connections" and fired["data"]["resolved"] is False
        assert "3 open connections in the deployment" in fired["data"]["message"]
        assert await observe((2, 2)) == []  # still firing: nothing new from either node
        live.remove(leader)  # the publisher leaves; its lease goes with it
        await gateways[leader].control.close()
        ((other, resolved),) = [(n, e) for n, e in await observe((1, 0))]
        assert other != leader
        assert resolved["data"]["alertId"] == fired["data"]["alertId"] and resolved["data"]["resolved"] is True
    finally:
        for gateway in gateways:
            gateway.connections = {}
            await gateway.close()


async def test_an_error_burst_on_two_nodes_is_raised_once() -> None:
    hub = MemoryControlHub()
    gateways: list[Gateway] = []
    raised: list[dict[str, Any]] = []

    async def sink(event: dict[str, Any]) -> None:
        raised.append(event)

    try:
        for _ in range(2):
            backend = memory_backend()
            backend.control = MemoryControlChannel(hub)
            gateway = Gateway(base_settings(alert_error_rate_per_min=3), backend=backend)
            await gateway.start()
            gateway.alert_sink = sink
            gateways.append(gateway)
        for gateway in gateways:  # both cross the threshold for the same group
            for _ in range(4):
                gateway.record_error("invalid_json", "unknown", "not JSON")
        for _ in range(20):
            await asyncio.sleep(0)
        assert [e["data"]["alertId"] for e in raised] == ["errors:invalid_json:unknown"]
    finally:
        for gateway in gateways:
            await gateway.close()

"""The system monitor reports broker loss locally, and resolves it once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import websockets

from autosdlc_ws.broker.base import Position, PublishReceipt
from autosdlc_ws.broker.memory import MemoryEventLog
from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.server.monitor import SystemMonitor
from tests.conftest import RunningGateway, make_token, timeout


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

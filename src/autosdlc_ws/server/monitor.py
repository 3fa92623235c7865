"""The system monitor: the gateway reports on the deployment as events.

Every `monitor_interval_s` it reads broker readiness and the deployment's
error-frame rate, connection count and largest node's memory
(`server.deployment_readings`, from every node's registry entry), feeds them
to hysteresis rules (`sources.alerts`) and, on each transition, raises a
`system_alert` (severity `critical` for the broker, `warning` otherwise;
`resolved: true` when it clears) with an id that names the condition, the
same on every node (`deployment:<condition>`).

One alert per condition for the deployment, not one per process: every node
runs the rules on the same deployment-wide readings (so each knows the
state), but only the holder of the monitor lease (`MONITOR_LEASE`, renewed at
every check) publishes. When the holder dies its lease lapses and the next
node to check takes over, its rules already in the same state.

The broker outage is the exception: an alert cannot travel through a broker
that is down, so each node tells its own subscribers directly, both the
outage and its end (a client is connected to one node, so it sees one of
each). Broker loss is announced once per node: by this poll or by the log's
own outage report (`Gateway.broker_outage`), whichever notices first.

It also publishes `deployment_status` when the gateway starts and when it
drains. Alerts are worded in `server.alerts`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import psutil

from autosdlc_ws.core.envelope import new_id
from autosdlc_ws.core.schema_versions import schema_version
from autosdlc_ws.errors import BrokerUnavailable
from autosdlc_ws.server.alerts import (
    BROKER_UNAVAILABLE_TITLE,
    MONITOR_ORIGIN,
    broker_unavailable_alert,
    deployment_alert_id,
    instance_name,
    system_alert,
)
from autosdlc_ws.server.deployment_readings import DeploymentReadings, NodeFigures, merge_own
from autosdlc_ws.server.gateway import Gateway
from autosdlc_ws.sources.alerts import ThresholdRule, Transition

log = logging.getLogger("autosdlc_ws.monitor")

MESSAGES = {
    "broker_unavailable": (BROKER_UNAVAILABLE_TITLE, "the event broker cannot be reached; publishes are refused"),
    "error_rate": ("Error rate high", "clients are getting error frames at {value:.0f}/min across the deployment"),
    "connections": ("Many connections", "{value:.0f} open connections in the deployment"),
    "memory": ("Memory high", "memory of the largest gateway process at {value:.0f} MB"),
}
#: The lease whose holder publishes the deployment's alerts.
MONITOR_LEASE = "system-monitor"


class SystemMonitor:
    def __init__(self, gateway: Gateway) -> None:
        s = gateway.settings
        self.gateway = gateway
        self.rules = {
            "broker_unavailable": ThresholdRule("broker_unavailable", 1.0, 0.0),
            "error_rate": ThresholdRule("error_rate", s.alert_error_rate_per_min,
                                        s.alert_error_rate_per_min * 0.5, hold_s=s.monitor_interval_s),
            "connections": ThresholdRule("connections", s.alert_connections, s.alert_connections * 0.9),
            "memory": ThresholdRule("memory", s.alert_memory_mb, s.alert_memory_mb * 0.9,
                                    hold_s=s.monitor_interval_s),
        }
        self._deployment = DeploymentReadings()
        self._process = psutil.Process(os.getpid())
        self._task: asyncio.Task[None] | None = None
        self.instance = instance_name()
        gateway.alert_sink = self.emit

    async def readings(self) -> dict[str, float]:
        started = time.perf_counter()
        try:
            ready = await self.gateway.backend.log.ready()
        except Exception:  # a broker error is exactly what this reading reports
            ready = False
        stats = self.gateway.stats
        stats.broker_up = 1.0 if ready else 0.0
        stats.broker_rtt_s = time.perf_counter() - started if ready else 0.0
        gateway = self.gateway
        own = NodeFigures(gateway.node.node_id, len(gateway.connections), float(sum(stats.errors.values())),
                          float(self._process.memory_info().rss))
        try:
            registry = await gateway.control.nodes()
        except Exception as exc:  # the channel answers locally on outages; this is a last resort
            log.warning("system monitor could not list the nodes: %s", exc)
            registry = []
        return {"broker_unavailable": 0.0 if ready else 1.0,
                **self._deployment.read(merge_own(own, registry), time.monotonic())}

    async def leads(self) -> bool:
        """Whether this node publishes the deployment's alerts (takes or renews the lease)."""
        ttl_s = max(3 * self.gateway.settings.monitor_interval_s, 5.0)
        try:
            return await self.gateway.control.acquire_lease(MONITOR_LEASE, ttl_s)
        except Exception as exc:  # fail open: an alert twice beats no alert
            log.warning("system monitor could not take its lease: %s", exc)
            return True

    async def check(self) -> list[Transition]:
        """Observe every rule; returns the transitions (this node's view, published or not)."""
        readings = await self.readings()
        leader = await self.leads()
        now = time.monotonic()
        transitions = []
        for name, value in readings.items():
            transition = self.rules[name].observe(value, now)
            if transition is None:
                continue
            transitions.append(transition)
            if name == "broker_unavailable":
                if self.gateway.broker_outage.change(transition.fired):  # else the log said it first
                    self.gateway.deliver_locally(self.alert_event(transition))
            elif leader:
                await self.emit(self.alert_event(transition))
        return transitions

    def alert_event(self, t: Transition) -> dict[str, Any]:
        title, message = MESSAGES[t.rule]
        now_ms = self.gateway.now_ms()
        if t.rule == "broker_unavailable":
            return broker_unavailable_alert(down=t.fired, message=message, origin=MONITOR_ORIGIN,
                                            now_ms=now_ms)
        message = message.format(value=t.value)
        return system_alert(
            alert_id=deployment_alert_id(t.rule), severity="warning" if t.fired else "info", title=title,
            message=message if t.fired else f"resolved: {message}", resolved=not t.fired,
            origin=MONITOR_ORIGIN, now_ms=now_ms)

    def deployment_event(self, status: str, description: str) -> dict[str, Any]:
        return {"id": new_id("sys"), "type": "deployment_status", "timestamp": self.gateway.now_ms(),
                "data": {"environment": self.gateway.settings.environment, "status": status,
                         "description": f"{self.instance}: {description}"},
                "metadata": {"version": schema_version("deployment_status"), "source": MONITOR_ORIGIN}}

    async def emit(self, event: dict[str, Any]) -> None:
        try:
            await self.gateway.publish([event])
        except BrokerUnavailable:
            # Deliver to this worker's subscribers directly; never replayed by offset.
            self.gateway.deliver_locally(event)
        except Exception as exc:  # the monitor must never take the gateway down
            log.warning("system monitor could not publish %s: %s", event["type"], exc)

    async def run(self) -> None:
        interval = self.gateway.settings.monitor_interval_s
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("system monitor check failed")
            await asyncio.sleep(interval)

    async def start(self) -> None:
        await self.emit(self.deployment_event("started", "gateway started"))
        if self.gateway.settings.monitor_interval_s > 0:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.emit(self.deployment_event("draining", "gateway draining for shutdown"))

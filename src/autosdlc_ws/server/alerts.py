"""Every `system_alert` the gateway raises about itself is built here.

Three sources feed it: the system monitor's hysteresis rules, the error
aggregator, and the broker's outage reports (`broker.base.Outage`). Alert ids
name the condition, not the process (`deployment_alert_id`), so every node
of a deployment speaks of the same alert. Broker
loss can be noticed by two of them (the monitor polling readiness, the log
reporting its own outage); `BrokerOutageState` lets only the first say so,
and only the first say it is over.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from autosdlc_ws.broker.base import Outage, OutageKind
from autosdlc_ws.core.envelope import new_id
from autosdlc_ws.core.schema_versions import schema_version

#: `metadata.source` of alerts, by what raised them.
MONITOR_ORIGIN = "system-monitor"
ERRORS_ORIGIN = "error-aggregator"
BROKER_ORIGIN = "gateway"

BROKER_UNAVAILABLE_TITLE = "Broker unavailable"
HISTORY_RESET_TITLE = "Broker history reset"


def instance_name() -> str:
    """This worker, as named in its `deployment_status` events: `<host>:<pid>`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def deployment_alert_id(condition: str) -> str:
    """The id of a condition's alerts: the same on every node of the deployment, so the
    alert and its resolution pair up whichever node raised them."""
    return f"deployment:{condition}"


def system_alert(*, alert_id: str, severity: str, title: str, message: str, resolved: bool,
                 origin: str, now_ms: int) -> dict[str, Any]:
    """One `system_alert` envelope; a resolving alert keeps the id of the one it resolves."""
    return {
        "id": new_id("sys"), "type": "system_alert", "timestamp": now_ms,
        "data": {"severity": severity, "title": title, "message": message, "alertId": alert_id,
                 "source": "gateway", "resolved": resolved},
        "metadata": {"version": schema_version("system_alert"), "source": origin},
    }


class BrokerOutageState:
    """Whether broker loss has been announced, shared by every source that notices it."""

    def __init__(self) -> None:
        self.announced = False

    def change(self, down: bool) -> bool:
        """True when `down` is news (announce it), False when already said."""
        if down == self.announced:
            return False
        self.announced = down
        return True


def broker_unavailable_alert(*, down: bool, message: str, origin: str, now_ms: int) -> dict[str, Any]:
    return system_alert(
        alert_id=deployment_alert_id("broker_unavailable"), severity="critical" if down else "info",
        title=BROKER_UNAVAILABLE_TITLE, message=message if down else f"resolved: {message}",
        resolved=not down, origin=origin, now_ms=now_ms)


def outage_alert(outage: Outage, state: BrokerOutageState, now_ms: int) -> dict[str, Any] | None:
    """The alert for a reported outage, or None when it is already announced."""
    if outage.kind is OutageKind.HISTORY_RESET:
        return system_alert(
            alert_id=deployment_alert_id("history_reset"), severity="warning", title=HISTORY_RESET_TITLE,
            message=outage.detail, resolved=False, origin=BROKER_ORIGIN, now_ms=now_ms)
    if not state.change(outage.started):
        return None
    return broker_unavailable_alert(down=outage.started, message=outage.detail, origin=BROKER_ORIGIN,
                                    now_ms=now_ms)

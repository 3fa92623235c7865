"""Broker outages become alerts in one place, announced once whoever notices first."""

from __future__ import annotations

from autosdlc_ws.broker.base import Outage, OutageKind
from autosdlc_ws.server.alerts import (
    BROKER_ORIGIN,
    MONITOR_ORIGIN,
    BrokerOutageState,
    broker_unavailable_alert,
    outage_alert,
)


def test_an_outage_is_announced_once_and_resolved_once() -> None:
    state = BrokerOutageState()
    down = outage_alert(Outage(OutageKind.UNAVAILABLE, True, "Redis is unreachable"), state, 5)
    assert down is not None and down["type"] == "system_alert" and down["timestamp"] == 5
    assert down["data"] == {"severity": "critical", "title": "Broker unavailable",
                            "message": "Redis is unreachable", "resolved": False, "source": "gateway",
                            "alertId": "deployment:broker_unavailable"}
    assert down["metadata"]["source"] == BROKER_ORIGIN
    assert outage_alert(Outage(OutageKind.UNAVAILABLE, True, "again"), state, 6) is None
    up = outage_alert(Outage(OutageKind.UNAVAILABLE, False, "Redis is back"), state, 7)
    assert up is not None and up["data"]["resolved"] is True and up["data"]["severity"] == "info"
    assert up["data"]["message"] == "resolved: Redis is back"
    assert up["data"]["alertId"] == down["data"]["alertId"]
    assert outage_alert(Outage(OutageKind.UNAVAILABLE, False, "still back"), state, 8) is None


def test_the_monitor_and_the_log_share_the_announcement() -> None:
    state = BrokerOutageState()
    assert state.change(True)  # the monitor's poll noticed first: it announces
    assert outage_alert(Outage(OutageKind.UNAVAILABLE, True, "down"), state, 1) is None
    resolved = outage_alert(Outage(OutageKind.UNAVAILABLE, False, "up"), state, 2)
    assert resolved is not None and resolved["data"]["resolved"] is True
    assert not state.change(False)  # the monitor's next poll has nothing to add


def test_a_history_reset_always_alerts() -> None:
    state = BrokerOutageState()
    reset = Outage(OutageKind.HISTORY_RESET, True, "new epoch")
    first, second = outage_alert(reset, state, 1), outage_alert(reset, state, 2)
    assert first is not None and second is not None and first["id"] != second["id"]
    assert first["data"]["title"] == "Broker history reset" and first["data"]["severity"] == "warning"
    assert not state.announced


def test_the_monitor_words_broker_loss_like_the_log() -> None:
    alert = broker_unavailable_alert(down=True, message="cannot be reached", origin=MONITOR_ORIGIN, now_ms=1)
    assert alert["data"]["alertId"] == "deployment:broker_unavailable"
    assert alert["metadata"]["source"] == MONITOR_ORIGIN

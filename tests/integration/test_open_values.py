"""Open values on a running gateway: a new status is published and delivered
(HTTP and WebSocket), a wrong JSON type or a too-long value is still refused,
and /metrics counts the new values by field."""

from __future__ import annotations

import aiohttp

from tests.conftest import RunningGateway
from tests.integration.helpers import event, open_authed, publish


async def test_new_values_pass_and_are_counted_by_field(server: RunningGateway) -> None:
    watcher = await open_authed(server)
    publisher = await open_authed(server)
    try:
        await watcher.subscribe(["agent_task_update", "deployment_status"])
        await publish(server, event("agent_task_update", "t-new", agentId="a1", taskId="t1", status="in_progress"))
        await publish(server, event("agent_task_update", "t-old", agentId="a1", taskId="t1", status="running"))
        await publisher.send(event("deployment_status", "d-new", environment="prod", status="rolling_back",
                                   components=[{"name": "api", "health": "warming_up"},
                                               {"name": "db", "health": "healthy"}]))
        seen = {m["id"]: m["data"] for m in await watcher.until_event("d-new")}
        assert seen["t-new"]["status"] == "in_progress"
        assert seen["d-new"]["components"][0]["health"] == "warming_up"

        body = await publish(server, event("agent_task_update", None, agentId="a1", taskId="t1", status=3),
                             expect=422)
        assert body["error"] == {"code": "invalid_message", "message": body["error"]["message"],
                                 "path": "data.status"}
        await publish(server, event("system_alert", None, severity="s" * 65, message="m"), expect=422)
        refused = await publisher.request("agent_log", {"agentId": "a1", "level": None, "message": "m"})
        assert refused["data"]["code"] == "invalid_message" and refused["data"]["path"] == "data.level"

        async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
            metrics = await resp.text()
        assert 'autosdlc_ws_unknown_values_total{field="agent_task_update.data.status"} 1.0' in metrics
        assert 'autosdlc_ws_unknown_values_total{field="deployment_status.data.status"} 1.0' in metrics
        assert 'autosdlc_ws_unknown_values_total{field="deployment_status.data.components[].health"} 1.0' \
            in metrics
    finally:
        await watcher.close()
        await publisher.close()

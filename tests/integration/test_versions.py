"""Protocol 1.1 version info on a running gateway: `connect` says 1.1, each schema
names its version, and every delivered event carries `metadata.version`."""

from __future__ import annotations

import aiohttp

from tests.conftest import RunningGateway
from tests.integration.helpers import agent_status, event, open_authed, publish


async def test_connect_says_protocol_1_1(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        assert client.connect is not None and client.connect["data"]["protocolVersion"] == "1.1"
    finally:
        await client.close()


async def test_each_served_schema_names_its_version(server: RunningGateway) -> None:
    async with aiohttp.ClientSession() as http:
        for type_, version in (("agent_status", "1.1"), ("coverage_update", "1.0"),
                               ("subscribe", "1.1"), ("unsubscribe", "1.0")):
            async with http.get(f"{server.http_url}/schemas/{type_}.json") as resp:
                assert (await resp.json(content_type=None))["version"] == version


async def test_delivered_events_carry_the_publishers_version_or_the_schemas(server: RunningGateway) -> None:
    watcher = await open_authed(server)
    publisher = await open_authed(server)
    try:
        await watcher.subscribe(["agent_status", "coverage_update"])
        own = {**agent_status("a1", "v-own"), "metadata": {"version": "2.3", "source": "agent"}}
        await publish(server, [agent_status("a1", "v-http"), own])
        await publisher.send(event("coverage_update", "v-ws", agentId="a1", lines=80.0))
        seen = {m["id"]: m["metadata"] for m in await watcher.until_event("v-ws")}
        assert seen["v-http"] == {"version": "1.1"}
        assert seen["v-own"] == {"version": "2.3", "source": "agent"}
        assert seen["v-ws"] == {"version": "1.0"}
    finally:
        await watcher.close()
        await publisher.close()

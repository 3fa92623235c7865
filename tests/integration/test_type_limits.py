"""Rate limits per message type (config `rate_limits`) on a running gateway with
the memory broker: WebSocket requests and publishes, HTTP batches, /metrics.
(Across workers sharing Redis: tests/redis/test_type_limits.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from tests.conftest import PUBLISHER_KEY, RunningGateway, base_settings, make_token
from tests.integration.helpers import agent_status, event, open_authed

Factory = Callable[..., Any]
LIMITS = {"subscribe": {"per_s": 0.1, "burst": 2}, "agent_log": {"per_s": 0.1, "burst": 3}}


def agent_log(n: int) -> dict[str, Any]:
    return event("agent_log", f"log-{n}", agentId="a1", level="info", message=f"line {n}")


async def post(server: RunningGateway, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any], str | None]:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/api/v1/events", headers={"X-API-Key": PUBLISHER_KEY},
                               json=events)
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def test_a_limited_request_type_per_identity_over_websocket(gateway_factory: Factory) -> None:
    server = await gateway_factory(base_settings(rate_limits=LIMITS))
    token = make_token("alice")
    first, second = await open_authed(server, token=token), await open_authed(server, token=token)
    try:
        await first.subscribe(["agent_status"])
        await second.subscribe(["agent_log"])  # the identity's burst of 2, over two connections
        refused = await first.request("subscribe", {"events": ["agent_error"]}, req_id="third")
        assert refused["type"] == "error" and refused["data"]["code"] == "rate_limited", refused
        assert 0 < refused["data"]["retryAfterMs"] <= 10_000
        assert (await second.request("ping", {}))["type"] == "pong"  # other types unaffected
        bob = await open_authed(server, token=make_token("bob"))  # another identity: its own bucket
        await bob.subscribe(["agent_status"])
        await bob.close()
    finally:
        await first.close()
        await second.close()


async def test_an_http_batch_with_a_limited_type_is_refused_as_a_whole(gateway_factory: Factory) -> None:
    server = await gateway_factory(base_settings(rate_limits=LIMITS))
    watcher = await open_authed(server)
    try:
        await watcher.subscribe(["agent_status", "agent_log"])
        assert (await post(server, [agent_log(1), agent_log(2)]))[0] == 202
        status, body, retry_after = await post(server, [agent_status("a1", "st-1"), agent_log(3), agent_log(4)])
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert retry_after is not None and int(retry_after) >= 1
        status, body, _ = await post(server, [agent_log(n) for n in range(10, 14)])  # more than the burst
        assert status == 413 and "at most 3" in body["error"]["message"], body
        assert (await post(server, [agent_status("a1", "st-2")]))[0] == 202  # unlimited type
        seen = await watcher.until_event("st-2")
        assert [m["id"] for m in seen] == ["log-1", "log-2", "st-2"]  # nothing of the refused batch
        async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
            metrics = await resp.text()
        assert 'autosdlc_ws_rate_limited_by_type_total{type="agent_log"} 1.0' in metrics
    finally:
        await watcher.close()


async def test_limited_websocket_publishes_count_by_type_in_metrics(gateway_factory: Factory) -> None:
    server = await gateway_factory(base_settings(rate_limits={"agent_log": {"per_s": 0.1, "burst": 1}},
                                                 rate_control_per_s=1, rate_control_burst=1))
    client = await open_authed(server)
    try:
        await client.send({"id": "l1", **agent_log(1)})
        refused = await client.request("agent_log", agent_log(2)["data"], req_id="l2")
        assert refused["type"] == "error" and refused["data"]["code"] == "rate_limited", refused
        await client.request("ping", {})
        over = await client.request("ping", {})  # the per-connection control bucket: not a configured type
        assert over["data"]["code"] == "rate_limited"
        async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as resp:
            metrics = await resp.text()
        assert 'autosdlc_ws_rate_limited_by_type_total{type="agent_log"} 1.0' in metrics
        assert 'autosdlc_ws_rate_limited_by_type_total{type="other"} 1.0' in metrics
        assert "autosdlc_ws_rate_limited_total 2.0" in metrics
    finally:
        await client.close()

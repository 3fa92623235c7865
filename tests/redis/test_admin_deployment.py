"""The admin API answers for the whole deployment (CONTRACT §10), tried with real processes:
`serve --workers 2` on one port, and two separate `serve` processes (two "hosts"), each
pair sharing one Redis. Clients sit on both nodes; every endpoint, asked through either
process, answers for all of them; a DELETE travels to the owning node; a logging change
applies on the other node; a node killed by SIGKILL leaves the listing with its connections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import websockets

from autosdlc_ws.core.auth import hash_api_key
from tests.conftest import ADMIN_KEY, PUBLISHER_KEY, READER_KEY, make_token, timeout
from tests.redis.conftest import RedisServer
from tests.redis.helpers import WsClient, connect, wait_status
from tests.redis.test_workers import ServeProcess, spread_clients

ADMIN = {"X-API-Key": ADMIN_KEY}


def deployment_env(prefix: str) -> dict[str, str]:
    keys = [{"name": "admin", "sha256": hash_api_key(ADMIN_KEY), "permissions": ["admin:*"]},
            {"name": "publisher", "sha256": hash_api_key(PUBLISHER_KEY), "permissions": ["publish:*", "read:*"]},
            {"name": "reader", "sha256": hash_api_key(READER_KEY), "permissions": ["read:agent:*"]}]
    return {"AUTOSDLC_WS_REDIS_PREFIX": prefix, "AUTOSDLC_WS_API_KEYS": json.dumps(keys),
            "AUTOSDLC_WS_LOG_LEVEL": "INFO"}


async def admin(url: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None,
                body: Any = None) -> tuple[int, dict[str, Any]]:
    """One admin call on a fresh TCP connection (so `--workers` spreads them over both workers)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        resp = await http.request(method, url + path, headers=ADMIN if headers is None else headers,
                                  json=body, timeout=aiohttp.ClientTimeout(total=timeout(5)))
        return resp.status, await resp.json()


async def eventually(check: Any, seconds: float, what: str) -> Any:
    """Poll the coroutine function `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout(seconds)
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def node_ids(url: str) -> set[str]:
    status, body = await admin(url, "/api/v1/nodes")
    assert status == 200, body
    return {n["nodeId"] for n in body["nodes"]}


async def connections_by_node(url: str) -> dict[str, str]:
    status, body = await admin(url, "/api/v1/connections")
    assert status == 200, body
    assert body["count"] == len(body["connections"])
    return {c["connectionId"]: c["nodeId"] for c in body["connections"]}


async def check_contract(urls: list[str], clients: list[WsClient]) -> dict[str, str]:
    """Every read endpoint through every url (several times each, for --workers) answers for
    every client; returns connection id -> node id."""
    expected = {c.connection_id for c in clients}
    owners: dict[str, str] = {}
    for url in urls:
        for _ in range(3):
            assert len(await node_ids(url)) == 2
            owners = await connections_by_node(url)
            assert set(owners) == expected
            assert len(set(owners.values())) == 2, "clients on both nodes"
    for url in urls:
        for client in clients:  # GET one connection, wherever it is
            status, body = await admin(url, f"/api/v1/connections/{client.connection_id}")
            assert status == 200 and body["nodeId"] == owners[client.connection_id], body
            assert {"sessionId", "subject", "remoteAddress", "connectedAt", "subscriptions", "state",
                    "authKind", "compression", "queueBytes", "bytesIn", "bytesOut"} <= set(body)
        some_node = owners[clients[0].connection_id]
        status, body = await admin(url, f"/api/v1/connections?nodeId={some_node}")
        assert status == 200 and {c["nodeId"] for c in body["connections"]} == {some_node}
        assert body["count"] == sum(1 for n in owners.values() if n == some_node)
        status, body = await admin(url, "/api/v1/connections?subject=admin-test-2")
        assert status == 200 and [c["subject"] for c in body["connections"]] == ["admin-test-2"]
        status, body = await admin(url, "/api/v1/subscriptions")
        assert status == 200
        assert {r["resource"]: r["subscribers"] for r in body["resources"]}["agent:shared"] == len(clients)
        assert {t["type"]: t["subscribers"] for t in body["types"]}["agent_status"] == len(clients)
        status, body = await admin(url, "/api/v1/errors")
        (group,) = [g for g in body["groups"] if g["code"] == "invalid_json"]  # merged across nodes
        assert status == 200 and group["count"] == len(clients)
        assert set(group["nodes"]) == set(owners.values())
        # credentials before ids, malformed filters refused
        assert (await admin(url, "/api/v1/connections/nope", headers={}))[0] == 401
        assert (await admin(url, "/api/v1/connections/nope", headers={"X-API-Key": READER_KEY}))[0] == 403
        assert (await admin(url, "/api/v1/connections/nope"))[0] == 404
        assert (await admin(url, "/api/v1/connections/nope", method="DELETE"))[0] == 404
        assert (await admin(url, "/api/v1/connections?subject="))[0] == 422
        assert (await admin(url, "/api/v1/connections?colour=red"))[0] == 422
    return owners


async def prepared_clients(ws_urls: list[str], count: int) -> list[WsClient]:
    clients: list[WsClient] = []
    if len(ws_urls) == 1:
        for probe in await spread_clients(ws_urls[0], count):  # learn that both workers take clients
            await probe.close()
    for i in range(40):
        clients.append(await connect(ws_urls[i % len(ws_urls)], token=make_token(f"admin-test-{i}")))
        if len(clients) >= count and (len(ws_urls) > 1 or len({c.connection_id.split("-", 1)[1][:8]
                                                                for c in clients}) == 2):
            break
    for client in clients:
        await client.subscribe(["agent_status"], {"agentId": "shared"})
        await client.ws.send("not json")
        assert (await client.recv())["data"]["code"] == "invalid_json"
    return clients


async def check_logging_applies_everywhere(urls: list[str]) -> None:
    status, body = await admin(urls[0], "/api/v1/logging", method="PUT",
                               body={"enabled": True, "types": ["ping"], "directions": ["in"]})
    assert status == 200 and body["enabled"] is True, body
    for url in urls:
        status, body = await admin(url, "/api/v1/logging")
        assert status == 200 and body["types"] == ["ping"] and "divergentNodes" not in body, body
    # A GET body PUT back as it came (it may carry partial/missingNodes) is accepted.
    status, body = await admin(urls[-1], "/api/v1/logging", method="PUT",
                               body={**body, "partial": True, "missingNodes": []})
    assert status == 200, body
    assert (await admin(urls[0], "/api/v1/logging", method="PUT", body={"sampleRate": 7}))[0] == 422


async def check_delete_reaches_the_owner(url: str, victim: WsClient) -> None:
    started = time.monotonic()
    status, body = await admin(url, f"/api/v1/connections/{victim.connection_id}", method="DELETE")
    assert status == 200 and body == {"closed": victim.connection_id}
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:  # frames still owed before the close
            await victim.recv(2)
    assert victim.ws.close_code == 1008 and victim.ws.close_reason == "closed by admin admin"
    assert time.monotonic() - started < 2.0 * float(os.environ.get("AUTOSDLC_WS_TEST_TIMEOUT_FACTOR", "1"))


async def check_killed_node_leaves(url: str, dead_node: str, dead_conns: set[str]) -> None:
    """Within 15 s the killed node and its connections leave; meanwhile answers never hang."""
    started = time.monotonic()

    async def gone() -> bool:
        t0 = time.monotonic()
        status, body = await admin(url, "/api/v1/connections")
        assert status == 200 and time.monotonic() - t0 < 2.5, "an admin answer took longer than ~2 s"
        if body.get("partial"):
            assert body["missingNodes"] == [dead_node]
        return dead_node not in await node_ids(url) and not dead_conns & {c["connectionId"]
                                                                          for c in body["connections"]}

    await eventually(gone, 15, "the killed node to leave")
    assert time.monotonic() - started < 15


@pytest.fixture
def two_hosts(redis_server: RedisServer, prefix: str) -> Iterator[list[ServeProcess]]:
    procs = [ServeProcess("--broker", redis_server.url, env=deployment_env(prefix)) for _ in range(2)]
    yield procs
    for proc in procs:
        proc.stop()


@pytest.fixture(params=["redis", "redis-cluster"])
def two_workers(request: pytest.FixtureRequest, prefix: str) -> Iterator[ServeProcess]:
    """`serve --workers 2` on one Redis, and on a Redis Cluster (CONTRACT §12)."""
    broker = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster").url
    proc = ServeProcess("--workers", "2", "--broker", broker, env=deployment_env(prefix))
    yield proc
    proc.stop()


async def test_two_separate_processes_are_one_deployment(two_hosts: list[ServeProcess]) -> None:
    a, b = two_hosts
    for proc in two_hosts:
        await wait_status(f"{proc.http_url}/readyz", 200, seconds=20)
    urls = [a.http_url, b.http_url]
    clients = await prepared_clients([a.ws_url, b.ws_url], 4)
    try:
        owners = await check_contract(urls, clients)
        await check_logging_applies_everywhere(urls)
        on_b = [c for c in clients if owners[c.connection_id] == owners[clients[1].connection_id]]
        await on_b[0].request("ping", {}, "logged-ping")
        await eventually(lambda: _async(any("type=ping" in line and "direction=in" in line for line in b.lines)),
                         5, "node b to log the ping (logging set through node a)")
        await check_delete_reaches_the_owner(a.http_url, on_b[0])
        b_node = owners[on_b[0].connection_id]
        b.proc.send_signal(signal.SIGKILL)
        await check_killed_node_leaves(a.http_url, b_node, {c.connection_id for c in on_b})
    finally:
        for client in clients:
            await client.close()


async def test_two_workers_are_one_deployment(two_workers: ServeProcess) -> None:
    workers = await two_workers.wait_workers(2)
    await wait_status(f"{two_workers.http_url}/readyz", 200)
    url = two_workers.http_url
    await eventually(lambda: _len_is(node_ids(url), 2), 10, "both workers registered")
    clients = await prepared_clients([two_workers.ws_url], 4)
    try:
        owners = await check_contract([url], clients)
        await check_logging_applies_everywhere([url, url])
        for client in clients[:2]:  # whichever worker takes the request, it reaches the owner
            await check_delete_reaches_the_owner(url, client)
        status, body = await admin(url, "/api/v1/nodes")
        assert status == 200
        victim_pid = workers[0]
        (dead_node,) = [n["nodeId"] for n in body["nodes"] if n["pid"] == victim_pid]
        os.kill(victim_pid, signal.SIGKILL)
        await check_killed_node_leaves(url, dead_node, {c for c, n in owners.items() if n == dead_node})
    finally:
        for client in clients:
            await client.close()


async def _async(value: bool) -> bool:
    return value


async def _len_is(ids: Any, count: int) -> bool:
    return len(await ids) == count

"""The shipped deploy/nginx.conf and deploy/haproxy.cfg in front of two `serve` processes
("two hosts") sharing one Redis: sticky sessions, and failover with resume when the
gateway a client is pinned to dies with kill -9.

The test runs the shipped files with only addresses, ports and (for nginx) temp
paths rewritten. Each load balancer is skipped, with the reason, when its binary
is missing (CI: `apt-get install -y nginx haproxy`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.conftest import REPO, free_port, missing, timeout
from tests.redis.conftest import RedisServer
from tests.redis.helpers import WsClient, connect, publish_until, wait_status
from tests.redis.test_workers import ServeProcess, reconnect

DEPLOY = REPO / "deploy"


def worker_of(client: WsClient) -> str:
    return client.connection_id.split("-", 1)[1][:8]


class LoadBalancer:
    def __init__(self, kind: str, workdir: Path, backends: list[int]) -> None:
        self.kind = kind
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        if kind == "nginx":
            text = (DEPLOY / "nginx.conf").read_text()
            text = text.replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
            temp = "".join(f"    {name}_temp_path {workdir}/{name};\n"
                           for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            text = text.replace("http {\n", "http {\n" + temp, 1)
            text = text.replace("worker_processes auto;", "worker_processes 1;")
            args = ["nginx", "-c", "CONF", "-e", "stderr", "-g", f"daemon off; pid {workdir}/nginx.pid;"]
        else:
            text = (DEPLOY / "haproxy.cfg").read_text()
            text = text.replace("bind :8080", f"bind 127.0.0.1:{self.port}")
            text = text.replace("inter 1s fall 2 rise 2", "inter 200ms fall 1 rise 1")
            args = ["haproxy", "-db", "-f", "CONF"]
        for i, port in enumerate(backends, 1):
            text = text.replace(f"gateway{i}:8765", f"127.0.0.1:{port}")
        conf = workdir / f"{kind}.conf"
        conf.write_text(text)
        args = [str(conf) if a == "CONF" else a for a in args]
        self.log = workdir / f"{kind}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(params=["nginx", "haproxy"])
def cluster(request: pytest.FixtureRequest, redis_server: RedisServer, prefix: str,
            tmp_path: Path) -> Iterator[tuple[LoadBalancer, list[ServeProcess]]]:
    kind = request.param
    if shutil.which(kind) is None and not os.path.exists(f"/usr/sbin/{kind}"):
        missing(kind, f"apt-get install -y {kind}")
    gateways = [ServeProcess("--broker", redis_server.url, env={"AUTOSDLC_WS_REDIS_PREFIX": prefix})
                for _ in range(2)]
    lb = LoadBalancer(kind, tmp_path / kind, [g.port for g in gateways])
    yield lb, gateways
    lb.stop()
    for g in gateways:
        g.stop()


async def test_sticky_sessions_and_failover(cluster: tuple[LoadBalancer, list[ServeProcess]]) -> None:
    lb, gateways = cluster
    identity: dict[str, int] = {}  # connection-id prefix -> gateway index
    for i, g in enumerate(gateways):
        await wait_status(f"{g.http_url}/readyz", 200, seconds=20)
        direct = await connect(g.ws_url)
        identity[worker_of(direct)] = i
        await direct.close()
    await wait_status(f"{lb.http_url}/readyz", 200)
    # until the balancer routes to both (HAProxy's health checks bring them up one by one)
    seen_both: set[int] = set()
    for n in range(100):
        c = await connect(lb.ws_url, query=f"session_id=probe-{n}")
        seen_both.add(identity[worker_of(c)])
        await c.close()
        if len(seen_both) == 2:
            break
    assert len(seen_both) == 2

    # no session id: pinned by client address
    seen = set()
    for _ in range(4):
        c = await connect(lb.ws_url)
        seen.add(identity[worker_of(c)])
        await c.close()
    assert len(seen) == 1

    # with a session id: every reconnect of a session reaches the same gateway,
    # and different sessions spread over both
    homes: dict[str, int] = {}
    for _ in range(12):
        c = await connect(lb.ws_url)
        await c.subscribe(["agent_status"])
        await c.close()
        landed = set()
        for _ in range(3):
            again = await connect(lb.ws_url, query=f"session_id={c.session_id}")
            assert again.connect["data"]["resumed"] is True
            landed.add(identity[worker_of(again)])
            await again.close()
        assert len(landed) == 1, "a session moved between live gateways"
        homes[c.session_id] = landed.pop()
    assert set(homes.values()) == {0, 1}

    # failover: kill -9 the gateway a subscriber is pinned to, mid-stream
    session = next(s for s, home in homes.items() if home == 0)
    sub = await connect(lb.ws_url, query=f"session_id={session}")
    assert identity[worker_of(sub)] == 0
    accepted: list[str] = []
    maybe: list[str] = []
    received: list[str] = []
    stop = asyncio.Event()

    async def publisher() -> None:
        await publish_until(stop, lb.http_url, accepted, maybe)

    async def subscriber(client: WsClient) -> str:
        while True:
            try:
                msg = await client.recv(30)
            except websockets.ConnectionClosed:
                last = received[-1] if received else ""
                client = await reconnect(lb.ws_url, f"session_id={session}&last_event_id={last}")
                assert client.connect["data"]["resumed"] is True
                return worker_of(client) + "|" + await follow(client)
            if msg["type"] == "agent_status":
                received.append(msg["id"])

    async def follow(client: WsClient) -> str:
        try:
            while True:
                msg = await client.recv(30)
                if msg["type"] == "agent_status":
                    received.append(msg["id"])
        finally:
            await client.close()

    pub_task = asyncio.create_task(publisher())
    sub_task = asyncio.create_task(subscriber(sub))
    try:
        await asyncio.sleep(0.5)
        gateways[0].proc.send_signal(signal.SIGKILL)
        await asyncio.sleep(1.0)
        stop.set()
        await pub_task
        deadline = time.monotonic() + timeout(15)
        while not set(accepted).issubset(received) and time.monotonic() < deadline:
            if sub_task.done():
                sub_task.result()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        sub_task.cancel()
        await asyncio.gather(pub_task, sub_task, return_exceptions=True)
    assert any(a.startswith("r-") for a in accepted) and len(accepted) > 100
    assert len(received) == len(set(received)), "an event was delivered twice"
    assert set(accepted).issubset(received), f"{len(set(accepted) - set(received))} events lost"
    assert set(received) <= set(accepted) | set(maybe)
    assert [i for i in received if i in set(accepted)] == accepted

"""`autosdlc-ws serve --workers 2 --broker redis://…` as a real subprocess: cross-worker
delivery on one port, kill -9 of a worker mid-stream (the parent restarts it; its
clients resume on the other worker and lose nothing), SIGTERM drains and exits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import websockets

from autosdlc_ws.bench.procstat import alive, comm, worker_pids
from autosdlc_ws.core.auth import hash_api_key
from autosdlc_ws.server.workers import WORKER_NAME_PREFIX
from tests.conftest import JWT_SECRET, PUBLISHER_KEY, REPO, LocalEndpoints, free_port, timeout
from tests.redis.conftest import RedisServer
from tests.redis.helpers import WsClient, agent_event, connect, publish, publish_until, wait_status

LISTENING = re.compile(r"worker (\d+) \(pid (\d+)\) listening")


class ServeProcess(LocalEndpoints):
    """`python -m autosdlc_ws serve …` with its output collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        full_env = {**os.environ, "AUTOSDLC_WS_JWT_SECRET": JWT_SECRET,
                    "AUTOSDLC_WS_MONITOR_INTERVAL_S": "0", "AUTOSDLC_WS_SHUTDOWN_GRACE_S": "2",
                    "AUTOSDLC_WS_API_KEYS": json.dumps([{
                        "name": "publisher", "sha256": hash_api_key(PUBLISHER_KEY),
                        "permissions": ["publish:*", "read:*"]}]),
                    **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autosdlc_ws", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def workers(self) -> dict[int, int]:
        """worker index -> pid of its latest incarnation."""
        out: dict[int, int] = {}
        for line in self.lines:
            m = LISTENING.search(line)
            if m:
                out[int(m.group(1))] = int(m.group(2))
        return out

    async def wait_workers(self, count: int, exclude: set[int] = frozenset(), seconds: float = 20) -> dict[
            int, int]:  # type: ignore[assignment]
        deadline = time.monotonic() + timeout(seconds)
        while time.monotonic() < deadline:
            workers = self.workers()
            if len(workers) >= count and not exclude & set(workers.values()):
                return workers
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError("workers did not come up:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout(20))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def serve2(redis_server: RedisServer, prefix: str) -> Iterator[ServeProcess]:
    proc = ServeProcess("--workers", "2", "--broker", redis_server.url,
                        env={"AUTOSDLC_WS_REDIS_PREFIX": prefix})
    yield proc
    proc.stop()


def worker_of(client: WsClient) -> str:
    """Connection ids carry a per-process random prefix: it names the worker."""
    return client.connection_id.split("-", 1)[1][:8]


async def spread_clients(url: str, count: int) -> list[WsClient]:
    clients: list[WsClient] = []
    for _ in range(40):
        clients.append(await connect(url))
        if len(clients) >= count and len({worker_of(c) for c in clients}) == 2:
            return clients
    raise AssertionError("SO_REUSEPORT never put a connection on the second worker")


async def test_two_workers_on_one_port_share_events_and_drain_on_sigterm(serve2: ServeProcess) -> None:
    await serve2.wait_workers(2)
    await wait_status(f"{serve2.http_url}/readyz", 200)
    clients = await spread_clients(serve2.ws_url, 4)
    for c in clients:
        await c.subscribe(["agent_status"])
    for start in range(0, 200, 20):  # a fresh HTTP connection each: they too spread over both workers
        await publish(serve2.http_url, [agent_event(i) for i in range(start, start + 20)])
    for c in clients:
        assert [m["id"] for m in await c.events(200)] == [f"r-{i}" for i in range(200)]
    assert serve2.stop() == 0
    for c in clients:
        frames = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                frames.append(await c.recv())
        assert frames and frames[-1]["type"] == "disconnect" and frames[-1]["data"]["reconnect"] is True
        assert c.ws.close_code == 1001
    assert any("all workers exited" in line for line in serve2.lines)


async def test_workers_are_named_and_do_not_outlive_a_supervisor_killed_with_9(serve2: ServeProcess) -> None:
    """Workers are forked by a fork server, not the supervisor: the bench still finds them by
    name, and killing the supervisor (which takes the fork server with it) leaves none serving."""
    workers = await serve2.wait_workers(2)
    assert worker_pids(serve2.proc.pid) == sorted(workers.values())
    assert sorted(comm(p) for p in workers.values()) == [f"{WORKER_NAME_PREFIX}0", f"{WORKER_NAME_PREFIX}1"]
    serve2.proc.kill()
    deadline = time.monotonic() + timeout(15)
    while any(alive(p) for p in workers.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not any(alive(p) for p in workers.values()), "a worker outlived its supervisor"


async def test_kill_9_of_a_worker_mid_stream(serve2: ServeProcess) -> None:
    workers = await serve2.wait_workers(2)
    await wait_status(f"{serve2.http_url}/readyz", 200)
    clients = await spread_clients(serve2.ws_url, 6)
    for c in clients:
        await c.subscribe(["agent_status"])
    accepted: list[str] = []
    maybe: list[str] = []
    stop = asyncio.Event()

    async def publisher() -> None:
        await publish_until(stop, serve2.http_url, accepted, maybe)

    received: dict[int, list[str]] = {i: [] for i in range(len(clients))}
    reconnected: list[int] = []

    async def subscriber(i: int, client: WsClient) -> None:
        while True:
            try:
                msg = await client.recv(30)
            except websockets.ConnectionClosed:
                last = received[i][-1] if received[i] else ""
                client = await reconnect(serve2.ws_url, f"session_id={client.session_id}"
                                                        f"&last_event_id={last}")
                assert client.connect["data"]["resumed"] is True
                reconnected.append(i)
                clients[i] = client
                continue
            if msg["type"] == "agent_status":
                received[i].append(msg["id"])
            elif msg["type"] == "subscription_update":
                assert msg["data"]["status"] == "resumed", msg

    pub_task = asyncio.create_task(publisher())
    readers = [asyncio.create_task(subscriber(i, c)) for i, c in enumerate(clients)]
    try:
        await asyncio.sleep(0.5)
        victim_pid = workers[0]
        os.kill(victim_pid, signal.SIGKILL)
        restarted = await serve2.wait_workers(2, exclude={victim_pid})
        assert restarted[0] != victim_pid and restarted[1] == workers[1]
        await wait_status(f"{serve2.http_url}/readyz", 200)
        await asyncio.sleep(0.5)
        stop.set()
        await pub_task
        deadline = time.monotonic() + timeout(15)
        want = set(accepted)
        while any(not want.issubset(r) for r in received.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        for task in readers:
            task.cancel()
        outcomes = await asyncio.gather(pub_task, *readers, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)
                    and not isinstance(o, asyncio.CancelledError)]
        for c in clients:
            await c.close()
    assert not failures, failures
    assert reconnected, "no client was on the killed worker"
    assert any("exited with signal 9; restarting" in line for line in serve2.lines)
    for ids in received.values():
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert want.issubset(ids), f"{len(want - set(ids))} accepted events lost"
        assert set(ids) <= want | set(maybe)
        assert [i for i in ids if i in want] == accepted


async def test_a_restarted_worker_takes_every_new_connection_until_it_has_caught_up(
        serve2: ServeProcess) -> None:
    """Left to the kernel's hash, a killed worker's returning clients would spread over the
    survivor too; the replacement steers them all to itself until it holds as many as the
    survivor (`server.refill_steering`), then the kernel spreads again."""
    workers = await serve2.wait_workers(2)
    await wait_status(f"{serve2.http_url}/readyz", 200)
    clients: list[WsClient] = []
    for _ in range(80):
        clients.append(await connect(serve2.ws_url))
        per_worker = Counter(worker_of(c) for c in clients)
        if len(per_worker) == 2 and min(per_worker.values()) >= 8:
            break
    else:
        raise AssertionError(f"SO_REUSEPORT kept {per_worker} apart")
    await asyncio.sleep(1.5)  # every worker's metrics snapshot (written each second) counts them
    try:
        os.kill(workers[0], signal.SIGKILL)
        await serve2.wait_workers(2, exclude={workers[0]})
        deadline = time.monotonic() + timeout(5)
        while len({worker_of(c) for c in clients if c.ws.close_code is None}) > 1:
            assert time.monotonic() < deadline, "the killed worker's clients were not closed"
            await asyncio.sleep(0.05)
        survivor = {worker_of(c) for c in clients if c.ws.close_code is None}
        held = sum(1 for c in clients if c.ws.close_code is None)
        newcomers = [await connect(serve2.ws_url) for _ in range(6)]
        clients += newcomers
        assert len({worker_of(c) for c in newcomers}) == 1 and not {worker_of(c) for c in newcomers} & survivor
        while len(newcomers) < held:  # the replacement catches up with the survivor
            newcomers.append(await connect(serve2.ws_url))
            clients.append(newcomers[-1])
        assert {worker_of(c) for c in newcomers} == {worker_of(newcomers[0])}
        deadline = time.monotonic() + timeout(10)
        while not any("caught up" in line for line in serve2.lines):
            assert time.monotonic() < deadline, "\n".join(serve2.lines[-20:])
            await asyncio.sleep(0.05)
        later = [await connect(serve2.ws_url) for _ in range(16)]
        clients += later
        assert {worker_of(c) for c in later} & survivor, "steering did not stop"
    finally:
        for c in clients:
            await c.close()


async def reconnect(url: str, query: str) -> WsClient:
    """Like a real client: retry with backoff. A connection can land in the dying worker's
    accept queue in the instant before the kernel drops its listening socket."""
    delay = 0.02
    for _ in range(20):
        try:
            return await connect(url, query=query)
        except (OSError, websockets.InvalidHandshake, websockets.InvalidMessage, TimeoutError):
            await asyncio.sleep(delay)
            delay = min(0.5, delay * 2)
    return await connect(url, query=query)


def test_workers_with_the_memory_broker_are_refused() -> None:
    proc = ServeProcess("--workers", "2")
    code = proc.proc.wait(timeout(20))
    proc._reader.join(timeout(5))
    assert code != 0
    assert any("needs a shared broker" in line for line in proc.lines), proc.lines
    assert not any("Traceback" in line for line in proc.lines)


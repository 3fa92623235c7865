"""Redis for the tests: a private `redis-server` on a free port, never the shared 6379.

`redis_server` is one server per test module (started once, restarted by the
tests that stop it); every test gets its own key prefix, so tests never see
each other's keys. The whole directory is skipped, with the reason, when the
`redis-server` binary is missing.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from autosdlc_ws.bench.local_processes import redis_ping, resp_command
from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.redis_backend import redis_backend
from autosdlc_ws.broker.redis_cluster_backend import redis_cluster_backend
from tests.conftest import free_port, missing, timeout
from tests.redis.cluster import LocalCluster

REDIS_SERVER = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                                 if os.path.exists("/usr/bin/redis-server") else None)


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    if REDIS_SERVER is None:
        missing("redis-server", "apt-get install -y redis-server")


class RedisServer:
    """A throw-away redis-server process that a test can stop and start again.

    `persistent=True` writes an append-only file fsynced on every write, so a
    restart keeps the data (the same epoch); without it a restart is a Redis
    that lost everything (a new epoch)."""

    def __init__(self, workdir: Path, *, persistent: bool = False, port: int | None = None) -> None:
        self.workdir = workdir
        self.persistent = persistent
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.workdir), "--stream-node-max-entries", "10",
                "--appendonly", "yes" if self.persistent else "no"]
        if self.persistent:
            args += ["--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout(10)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if self.ping():
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def ping(self) -> bool:
        return redis_ping(self.port)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def command(self, *args: str) -> bytes:
        """One command over a raw socket (for CLIENT KILL and the like, outside any event loop)."""
        return resp_command(self.port, *args)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    yield server
    server.stop(kill=True)


@pytest.fixture
def prefix() -> str:
    return f"{{t-{uuid.uuid4().hex[:10]}}}:"


def make_redis_broker(url: str, prefix: str, **kwargs: object) -> Backend:
    """A Redis backend with test-friendly timings (fast reconnects, short timeouts)."""
    options: dict[str, object] = {"reconnect_min_s": 0.02, "reconnect_max_s": 0.3,
                                  "connect_timeout_s": 0.5, "command_timeout_s": 2.0,
                                  "start_timeout_s": 5.0}
    options.update(kwargs)
    return redis_backend(url, prefix=prefix, **options)  # type: ignore[arg-type]


#: Partitions in the cluster tests: enough to spread over 3 masters, few enough to start fast.
TEST_PARTITIONS = 4


def make_cluster_broker(url: str, prefix: str, **kwargs: object) -> Backend:
    """A Redis Cluster backend with the same test-friendly timings; it reads every
    partition unless told `readers="needed"` (what a gateway does by default)."""
    options: dict[str, object] = {"reconnect_min_s": 0.02, "reconnect_max_s": 0.3,
                                  "connect_timeout_s": 0.5, "command_timeout_s": 2.0,
                                  "start_timeout_s": 5.0, "partitions": TEST_PARTITIONS, "readers": "all"}
    options.update(kwargs)
    return redis_cluster_backend(url, prefix=prefix, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One 3-master cluster for the tests that do not stop its nodes (each uses its own prefix)."""
    with LocalCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
async def redis_brokers(redis_server: RedisServer, prefix: str) -> AsyncIterator[list[Backend]]:
    """A list the test appends its brokers to; all are closed afterwards."""
    brokers: list[Backend] = []
    yield brokers
    for broker in brokers:
        await broker.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, without persistence: a restart loses everything."""
    server = RedisServer(tmp_path / "redis-private")
    server.start()
    yield server
    server.stop(kill=True)


async def wait_until(predicate: Callable[[], bool], seconds: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout(seconds)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)

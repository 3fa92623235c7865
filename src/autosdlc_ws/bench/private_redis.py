"""A throw-away `redis-server` on a free port for the Redis benchmarks (never the shared 6379).

Used by benchmarks/ (through its `private_redis.py`) and `bench --max-connections`.

    async with private_redis(pin_cpu=0) as url: ...
    async with private_redis_server(pin_cpu=0) as (url, pid): ...  # pid: its CPU from /proc

`pin_cpu` pins Redis to that core and this process to the other one, so their
CPU times do not mix (docs/benchmarks.md, "How to measure").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator

from redis.asyncio import Redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def private_redis(pin_cpu: int | None = None) -> AsyncIterator[str]:
    async with private_redis_server(pin_cpu) as (url, _):
        yield url


@contextlib.asynccontextmanager
async def private_redis_server(pin_cpu: int | None = None) -> AsyncIterator[tuple[str, int]]:
    """The same, with the server's pid (its CPU from /proc)."""
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", workdir]
    if pin_cpu is not None and hasattr(os, "sched_setaffinity") and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(pin_cpu), *cmd]
        os.sched_setaffinity(0, {(pin_cpu + 1) % (os.cpu_count() or 1)})
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                await Redis.from_url(url).ping()
                break
            except Exception:  # not listening yet
                await asyncio.sleep(0.05)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)

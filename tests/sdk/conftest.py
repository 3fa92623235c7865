"""Helpers of the SDK tests: a TCP proxy that can cut or stall the network, a
gateway in a subprocess (for restarts and kill -9), and small waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.conftest import JWT_SECRET, LocalEndpoints, free_port, timeout


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0, step: float = 0.01) -> None:
    """Poll `condition` until true; fail the test after `timeout(seconds)`."""
    deadline = time.monotonic() + timeout(seconds)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout(seconds)} s")
        await asyncio.sleep(step)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the gateway. `drop_all()` aborts every connection
    (both sides see a reset); `stall()` stops forwarding without closing anything (a
    silently hanging network), `freeze_existing()` does so for the connections open now
    only; `refusing = True` turns new connections away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self.drops = 0
        self.refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pairs: dict[tuple[asyncio.StreamWriter, asyncio.StreamWriter], asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refusing:
            client_w.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self.connections += 1
        pair = (client_w, up_w)
        gate = self._pairs[pair] = asyncio.Event()
        gate.set()
        pumps = [asyncio.create_task(self._pump(client_r, up_w, gate)),
                 asyncio.create_task(self._pump(up_r, client_w, gate))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            client_w.transport.abort()
            up_w.transport.abort()
            self._pairs.pop(pair, None)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    gate: asyncio.Event) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                data = await reader.read(65536)
                await self._flowing.wait()
                await gate.wait()  # a stalled path passes nothing, not even the close
                if not data:
                    return
                writer.write(data)
                await writer.drain()

    def drop_all(self) -> int:
        n = len(self._pairs)
        for client_w, up_w in list(self._pairs):
            client_w.transport.abort()
            up_w.transport.abort()
        self.drops += 1
        return n

    def stall(self) -> None:
        self._flowing.clear()

    def unstall(self) -> None:
        self._flowing.set()

    def freeze_existing(self) -> None:
        """Stall the connections open now; new ones flow."""
        for gate in self._pairs.values():
            gate.clear()

    async def close(self) -> None:
        self.unstall()
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def proxy_factory() -> AsyncIterator[Callable[[int], Awaitable[TcpProxy]]]:
    proxies: list[TcpProxy] = []

    async def factory(target_port: int) -> TcpProxy:
        proxy = await TcpProxy(target_port).start()
        proxies.append(proxy)
        return proxy

    yield factory
    for proxy in proxies:
        await proxy.close()


class ServerProcess(LocalEndpoints):
    """`python -m autosdlc_ws serve --port P` in a subprocess, started and stopped at will."""

    def __init__(self, port: int, **settings: Any) -> None:
        self.port = port
        self.env = dict(os.environ)
        self.env["AUTOSDLC_WS_JWT_SECRET"] = JWT_SECRET
        self.env.setdefault("AUTOSDLC_WS_LOG_LEVEL", "WARNING")
        for key, value in settings.items():
            self.env[f"AUTOSDLC_WS_{key.upper()}"] = str(value)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> ServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "autosdlc_ws", "serve", "--port", str(self.port),
            env=self.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        deadline = time.monotonic() + timeout(15)
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.returncode is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"{self.http_url}/healthz") as resp:
                        if resp.status == 200:
                            return self
                if time.monotonic() > deadline:
                    raise AssertionError("server did not become healthy")
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), timeout(15))


@pytest.fixture
async def server_process() -> AsyncIterator[Callable[..., ServerProcess]]:
    made: list[ServerProcess] = []

    def factory(port: int | None = None, **settings: Any) -> ServerProcess:
        proc = ServerProcess(port or free_port(), **settings)
        made.append(proc)
        return proc

    yield factory
    for proc in made:
        with contextlib.suppress(Exception):
            await proc.stop(signal.SIGKILL)

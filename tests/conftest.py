"""Shared test fixtures: an in-process gateway on a free port, tokens, timeouts.

Every timeout in the tests is multiplied by AUTOSDLC_WS_TEST_TIMEOUT_FACTOR
(default 1), so a slow machine is handled by one variable.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.memory import memory_backend
from autosdlc_ws.config import ApiKeyEntry, Settings
from autosdlc_ws.core.auth import hash_api_key, mint_token
from autosdlc_ws.server.app import build_app
from autosdlc_ws.server.gateway import Gateway

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"  # copied into the repository: a clone tests alone
TIMEOUT_FACTOR = float(os.environ.get("AUTOSDLC_WS_TEST_TIMEOUT_FACTOR", "1"))
JWT_SECRET = "test-secret-0123456789abcdef0123456789abcdef"
ADMIN_KEY = "ask_test_admin_key"
PUBLISHER_KEY = "ask_test_publisher_key"
READER_KEY = "ask_test_reader_key"


def missing(what: str, install: str) -> None:
    """A test needs something not installed: skip on a developer's machine, fail in CI
    (where `.ci/run` installs it, so its absence is a broken setup, not a reason to skip)."""
    message = f"{what} is not installed ({install})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def timeout(seconds: float) -> float:
    return seconds * TIMEOUT_FACTOR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def base_settings(**changes: Any) -> Settings:
    settings = Settings(
        port=0,
        jwt_secret=JWT_SECRET,
        api_keys=(
            ApiKeyEntry("admin", hash_api_key(ADMIN_KEY), ("admin:*",)),
            ApiKeyEntry("publisher", hash_api_key(PUBLISHER_KEY), ("publish:*", "read:*")),
            ApiKeyEntry("reader", hash_api_key(READER_KEY), ("read:agent:*",)),
        ),
        github_webhook_secret="gh-test-secret",
        monitor_interval_s=0,
    )
    return settings.replace(**changes)


def make_token(sub: str = "alice", permissions: tuple[str, ...] = ("read:*", "publish:*"),
               ttl_s: int | None = 3600, now_s: int | None = None) -> str:
    return mint_token(JWT_SECRET, sub, permissions, ttl_s=ttl_s,
                      now_s=int(time.time()) if now_s is None else now_s)


class LocalEndpoints:
    """`http_url` and `ws_url` of a gateway listening on 127.0.0.1:`port`."""

    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@dataclass
class RunningGateway(LocalEndpoints):
    gateway: Gateway
    runner: web.AppRunner
    port: int
    clock: dict[str, int] = field(default_factory=dict)


async def start_gateway(settings: Settings | None = None,
                        clock_ms: Callable[[], int] | None = None,
                        backend: Backend | None = None) -> RunningGateway:
    """A gateway on a free port; `backend` defaults to a fresh memory backend."""
    settings = settings or base_settings()
    if backend is None:
        backend = memory_backend(max_events=settings.history_max_events, max_age_s=settings.history_max_age_s)
    gateway = Gateway(settings, backend=backend, clock_ms=clock_ms)
    runner = web.AppRunner(build_app(gateway), handle_signals=False, access_log=None,
                           shutdown_timeout=settings.shutdown_grace_s,
                           keepalive_timeout=settings.http_idle_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return RunningGateway(gateway, runner, port)


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Callable[..., Any]]:
    started: list[RunningGateway] = []

    async def factory(settings: Settings | None = None, **kwargs: Any) -> RunningGateway:
        running = await start_gateway(settings, **kwargs)
        started.append(running)
        return running

    yield factory
    for running in started:
        await asyncio.wait_for(running.runner.cleanup(), timeout(10))


@pytest.fixture
async def server(gateway_factory: Callable[..., Any]) -> RunningGateway:
    running: RunningGateway = await gateway_factory()
    return running

"""Short-lived tokens: in-band refresh before expiry, 4003 with and without a provider."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from autosdlc_ws.client import (
    AutoSDLCWebSocket,
    ConnectionState,
    Publisher,
    ReconnectPolicy,
    TokenExpired,
)
from tests.conftest import base_settings, make_token, timeout
from tests.sdk.conftest import wait_until

FAST = ReconnectPolicy(base=0.02, cap=0.1, stable_after=0.5)


@pytest.fixture
async def short_lived(gateway_factory: Any) -> Any:
    return await gateway_factory(base_settings(jwt_leeway_s=0.2))


async def test_token_provider_refreshes_in_band(short_lived: Any) -> None:
    calls: list[str] = []

    async def provider() -> str:
        token = make_token(ttl_s=2)
        calls.append(token)
        return token

    refreshes: list[Any] = []
    async with AutoSDLCWebSocket(short_lived.ws_url, token_provider=provider) as ws:
        ws.on("auth_success", refreshes.append)
        await ws.subscribe(["agent_status"], {"agentId": "t"})
        await asyncio.sleep(timeout(2.6))  # past the first token's expiry (+ leeway)
        assert ws.state is ConnectionState.OPEN and ws.stats.connects == 1  # never dropped
        assert ws.stats.token_refreshes >= 2 and len(calls) >= 3
        assert all(r.metadata.correlation_id for r in refreshes)  # answers to our auth_requests
        async with Publisher(short_lived.http_url, token=make_token()) as pub:
            await pub.publish("agent_status", {"agentId": "t", "status": "idle"})
        event = await asyncio.wait_for(ws.__anext__(), timeout(5))
        assert event.data.agent_id == "t"


async def test_static_token_expiry_stops_with_token_expired(short_lived: Any) -> None:
    ws = AutoSDLCWebSocket(short_lived.ws_url, token=make_token(ttl_s=1), reconnect=FAST)
    await ws.connect()
    with pytest.raises(TokenExpired) as expired:
        await asyncio.wait_for(ws.wait_closed(), timeout(5))
    assert expired.value.code == 4003
    assert sum(short_lived.gateway.stats.connections_opened.values()) == 1
    await ws.close()


async def test_4003_reconnects_with_a_fresh_token_and_resumes(short_lived: Any) -> None:
    tokens: list[str] = []

    def provider() -> str:  # a sync provider
        tokens.append(make_token(ttl_s=2))
        return tokens[-1]

    async with AutoSDLCWebSocket(short_lived.ws_url, token_provider=provider, reconnect=FAST,
                                 refresh_before_expiry=None) as ws:  # no in-band refresh: expire
        sub_id = await ws.subscribe(["agent_status"], {"agentId": "t"})
        await wait_until(lambda: ws.stats.reconnects >= 1, 5)
        await wait_until(lambda: ws.state is ConnectionState.OPEN)
        assert ws.stats.last_close_code == 4003 and ws.stats.resumed >= 1
        assert ws.error is None and len(tokens) >= 2 and list(ws.subscriptions) == [sub_id]

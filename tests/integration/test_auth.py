"""Authentication at the upgrade and in-band (CONTRACT.md section 4.1, 4.6)."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from autosdlc_ws.server.admission import RESERVED_FDS, connection_capacity
from tests.conftest import (
    ADMIN_KEY,
    READER_KEY,
    RunningGateway,
    base_settings,
    make_token,
    timeout,
)
from tests.integration.helpers import Client, open_authed, open_ws


async def expect_status(url: str, status: int, **kwargs: Any) -> dict[str, Any]:
    """The upgrade is refused with `status` and a JSON error body."""
    with pytest.raises(InvalidStatus) as info:
        ws = await websockets.connect(url, open_timeout=timeout(5), **kwargs)
        await ws.close()
    response = info.value.response
    assert response.status_code == status
    assert response.headers.get("Content-Type", "").startswith("application/json")
    body: dict[str, Any] = json.loads(response.body or b"{}")
    assert set(body["error"]) >= {"code", "message"}, body
    return body


# --- credential sources at the upgrade -------------------------------------------


@pytest.mark.parametrize("source", ["bearer", "x-api-key", "query-token", "query-api-key", "cookie"])
async def test_each_credential_source_is_accepted(server: RunningGateway, source: str) -> None:
    token = make_token("alice", ("read:*",))
    url, headers = server.ws_url, {}
    if source == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    elif source == "x-api-key":
        headers["X-API-Key"] = READER_KEY
    elif source == "query-token":
        url += f"?token={token}"
    elif source == "query-api-key":
        url += f"?api_key={READER_KEY}"
    else:
        headers["Cookie"] = f"autosdlc_token={token}"
    client = await open_ws(url, additional_headers=headers)
    try:
        connect = await client.recv_type("connect")
        assert connect["data"]["resumed"] is False
        assert connect["data"]["protocolVersion"] == "1.1"
        assert connect["data"]["limits"]["maxFrameBytes"] == 65536
        assert connect["data"]["heartbeatInterval"] == 25000
        assert connect["data"]["connectionId"] and connect["data"]["sessionId"]
        success = await client.recv_type("auth_success")
        if source in ("x-api-key", "query-api-key"):
            assert success["data"]["subject"] == "reader"
            assert success["data"]["permissions"] == ["read:agent:*"]
            assert success["data"]["expiresAt"] is None
        else:
            assert success["data"]["subject"] == "alice"
            assert isinstance(success["data"]["expiresAt"], int)
    finally:
        await client.close()


async def test_bad_token_is_refused_with_401_json(server: RunningGateway) -> None:
    body = await expect_status(f"{server.ws_url}?token=not.a.jwt", 401)
    assert body["error"]["code"] == "unauthorized"
    forged = make_token()[:-4] + "AAAA"
    await expect_status(server.ws_url, 401, additional_headers={"Authorization": f"Bearer {forged}"})
    await expect_status(server.ws_url, 401, additional_headers={"X-API-Key": "ask_nope"})


async def test_expired_token_is_refused_with_401(server: RunningGateway) -> None:
    expired = make_token(ttl_s=60, now_s=int(time.time()) - 3600)
    body = await expect_status(f"{server.ws_url}?token={expired}", 401)
    assert "expired" in body["error"]["message"]


async def test_token_without_read_permission_is_refused_with_403(server: RunningGateway) -> None:
    token = make_token("pub", ("publish:*",))
    body = await expect_status(f"{server.ws_url}?token={token}", 403)
    assert body["error"]["code"] == "forbidden"


async def test_first_credential_source_wins(server: RunningGateway) -> None:
    """Authorization is read before the query: a bad header is not rescued by a good query."""
    await expect_status(f"{server.ws_url}?token={make_token()}", 401,
                        additional_headers={"Authorization": "Bearer garbage"})


# --- in-band authentication ------------------------------------------------------


@pytest.mark.parametrize("variant", ["token", "apiKey"])
async def test_in_band_auth_request(server: RunningGateway, variant: str) -> None:
    client = await open_ws(server.ws_url)
    try:
        first = await client.recv_type("connect")
        await client.silent(0.1)  # no auth_success without credentials
        credential = make_token("bob", ("read:*",)) if variant == "token" else ADMIN_KEY
        await client.send({"id": "auth-1", "type": "auth_request", "timestamp": 0,
                           "data": {variant: credential}})
        again = await client.recv_type("connect")
        assert again["data"]["resumed"] is False
        assert again["data"]["connectionId"] == first["data"]["connectionId"]
        success = await client.recv_type("auth_success")
        assert success["data"]["subject"] == ("bob" if variant == "token" else "admin")
        # authenticated now: control messages work
        pong = await client.request("ping", {})
        assert pong["type"] == "pong"
    finally:
        await client.close()


async def test_no_auth_within_timeout_closes_4001(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(auth_timeout_s=0.3))
    client = await open_ws(server.ws_url)
    started = time.monotonic()
    await client.recv_type("connect")
    code, _ = await client.closed(3)
    assert code == 4001
    assert time.monotonic() - started < timeout(2)


async def test_three_bad_credentials_close_4001(server: RunningGateway) -> None:
    client = await open_ws(server.ws_url)
    await client.recv_type("connect")
    for n in range(3):
        failure = await client.request("auth_request", {"token": f"bad-{n}"})
        assert failure["type"] == "auth_failure"
        assert failure["data"]["code"] and failure["data"]["message"]
    code, _ = await client.closed()
    assert code == 4001


async def test_failure_count_resets_after_success(server: RunningGateway) -> None:
    """Three failures *in a row*: a refresh failing twice after a success is not fatal."""
    client = await open_authed(server)
    try:
        for n in range(2):
            assert (await client.request("auth_request", {"apiKey": f"bad-{n}"}))["type"] == "auth_failure"
        assert (await client.request("auth_request", {"token": make_token()}))["type"] == "auth_success"
        for n in range(2):
            assert (await client.request("auth_request", {"apiKey": f"bad-{n}"}))["type"] == "auth_failure"
        assert (await client.request("ping", {}))["type"] == "pong"
    finally:
        await client.close()


async def test_message_before_auth_is_unauthorized(server: RunningGateway) -> None:
    client = await open_ws(server.ws_url)
    try:
        await client.recv_type("connect")
        for type_, data in (("subscribe", {"events": ["agent_status"]}), ("ping", {}),
                            ("agent_status", {"agentId": "a1", "status": "idle"})):
            reply = await client.request(type_, data)
            assert reply["type"] == "error" and reply["data"]["code"] == "unauthorized", reply
    finally:
        await client.close()


async def test_token_refresh_replaces_expiry(server: RunningGateway) -> None:
    client = await open_authed(server, token=make_token("alice", ttl_s=600))
    try:
        assert client.auth is not None
        old = client.auth["data"]["expiresAt"]
        now_s = int(time.time())
        reply = await client.request("auth_request", {"token": make_token("alice", ttl_s=7200, now_s=now_s)})
        assert reply["type"] == "auth_success"
        assert reply["data"]["expiresAt"] == (now_s + 7200) * 1000
        assert reply["data"]["expiresAt"] > old
    finally:
        await client.close()


async def test_refresh_for_another_subject_is_refused(server: RunningGateway) -> None:
    client = await open_authed(server, token=make_token("alice"))
    try:
        reply = await client.request("auth_request", {"token": make_token("mallory")})
        assert reply["type"] == "auth_failure"
        assert (await client.request("ping", {}))["type"] == "pong"
    finally:
        await client.close()


def clock_just_past_a_second() -> Callable[[], int]:
    """Gateway time (ms) running at real speed, 20 ms past a whole second now: a token
    minted at that second with a 1 s lifetime lives about one second, with no wait
    for the real clock's next second boundary."""
    shift = time.time() % 1 - 0.02
    return lambda: int((time.time() - shift) * 1000)


async def test_token_expiring_mid_connection_closes_4003(gateway_factory: Callable[..., Any]) -> None:
    clock = clock_just_past_a_second()
    server = await gateway_factory(base_settings(jwt_leeway_s=0), clock_ms=clock)
    client = await open_authed(server, token=make_token("alice", ttl_s=1, now_s=clock() // 1000))
    assert client.auth is not None
    expires_at = client.auth["data"]["expiresAt"]
    failure = await client.recv_type("auth_failure", 3)
    assert failure["data"]["code"] == "token_expired"
    assert clock() >= expires_at - 50
    code, _ = await client.closed()
    assert code == 4003


async def test_refresh_postpones_expiry(gateway_factory: Callable[..., Any]) -> None:
    clock = clock_just_past_a_second()
    server = await gateway_factory(base_settings(jwt_leeway_s=0), clock_ms=clock)
    client = await open_authed(server, token=make_token("alice", ttl_s=1, now_s=clock() // 1000))
    try:
        reply = await client.request("auth_request", {"token": make_token("alice", ttl_s=3600,
                                                                          now_s=clock() // 1000)})
        assert reply["type"] == "auth_success"
        await client.silent(1.3)  # the first token's expiry passes without a close
        assert (await client.request("ping", {}))["type"] == "pong"
    finally:
        await client.close()


# --- admission: per-identity cap, Origin ------------------------------------------


async def test_a_process_at_its_connection_capacity_answers_503(gateway_factory: Callable[..., Any]) -> None:
    """Below the open-files limit, not at it: accept() never starts failing in a loop."""
    server = await gateway_factory(base_settings(max_connections_per_process=2))
    clients = [await open_authed(server, token=make_token(name)) for name in ("alice", "bob")]
    body = await expect_status(f"{server.ws_url}?token={make_token('carol')}", 503)
    assert body["error"]["code"] == "at_capacity"
    await clients[0].close()
    for _ in range(200):
        if len(server.gateway.connections) < 2:
            break
        await asyncio.sleep(0.01)
    again = await open_authed(server, token=make_token("carol"))
    await again.close()
    await clients[1].close()


def test_capacity_defaults_to_the_open_files_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = (1 << 30) if soft == resource.RLIM_INFINITY else max(1, soft - RESERVED_FDS)
    assert connection_capacity(base_settings()) == expected
    assert connection_capacity(base_settings(max_connections_per_process=7)) == 7


async def test_connections_per_identity_cap_429(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(max_connections_per_identity=2))
    token = make_token("alice")
    clients = [await open_authed(server, token=token) for _ in range(2)]
    body = await expect_status(f"{server.ws_url}?token={token}", 429)
    assert body["error"]["code"] == "too_many_connections"
    # another identity is not affected
    other = await open_authed(server, token=make_token("bob"))
    await other.close()
    # a slot frees up when a connection closes
    await clients[0].close()
    for _ in range(100):
        if server.gateway.per_identity.get("jwt:alice", 0) < 2:
            break
        await asyncio.sleep(0.01)
    again = await open_authed(server, token=token)
    await again.close()
    await clients[1].close()


async def test_connections_per_identity_cap_holds_under_concurrency(
        gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(max_connections_per_identity=2))
    token = make_token("alice")

    async def attempt() -> Client | int:
        try:
            return await open_authed(server, token=token)
        except InvalidStatus as exc:
            return exc.response.status_code

    results = await asyncio.gather(*(attempt() for _ in range(6)))
    opened = [r for r in results if isinstance(r, Client)]
    refused = [r for r in results if not isinstance(r, Client)]
    try:
        assert len(opened) == 2, results
        assert refused == [429] * 4
    finally:
        for c in opened:
            await c.close()


async def test_origin_allow_list(gateway_factory: Callable[..., Any]) -> None:
    server = await gateway_factory(base_settings(allowed_origins=("https://dash.example",)))
    url = f"{server.ws_url}?token={make_token()}"
    body = await expect_status(url, 403, origin="https://evil.example")
    assert body["error"]["code"] == "forbidden"
    ok = await open_ws(url, origin="https://dash.example")
    assert (await ok.recv())["type"] == "connect"
    await ok.close()
    # non-browser clients send no Origin and are let in
    plain = await open_ws(url)
    assert (await plain.recv())["type"] == "connect"
    await plain.close()


async def test_in_band_auth_success_is_correlated(server: RunningGateway) -> None:
    client = await open_ws(server.ws_url)
    try:
        await client.recv_type("connect")
        await client.send({"id": "auth-corr", "type": "auth_request", "timestamp": 0,
                           "data": {"token": make_token()}})
        await client.recv_type("connect")
        success = await client.recv_type("auth_success")
        assert success["metadata"].get("correlationId") == "auth-corr"
    finally:
        await client.close()


async def test_refresh_with_fewer_permissions_drops_unreadable_subscriptions(server: RunningGateway) -> None:
    from tests.integration.helpers import agent_status, publish, workflow_started

    client = await open_authed(server, token=make_token("alice", ("read:*",)))
    try:
        agent_sub = await client.subscribe(["agent_*"])
        workflow_sub = await client.subscribe(["workflow_*"])
        reply = await client.request("auth_request", {"token": make_token("alice", ("read:agent:*",))},
                                     req_id="narrow")
        assert reply["type"] == "auth_success"
        assert reply["data"]["permissions"] == ["read:agent:*"]
        removed = await client.recv_type("subscription_update")
        assert removed["data"]["subscriptionId"] == workflow_sub
        assert removed["data"]["status"] == "removed"
        await publish(server, [workflow_started("w1", "wf"), agent_status("a1", "ag")])
        assert (await client.recv())["id"] == "ag"
        assert agent_sub
    finally:
        await client.close()


async def test_refresh_with_expired_token_fails_but_keeps_the_connection(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        expired = make_token("alice", ttl_s=10, now_s=int(time.time()) - 3600)
        reply = await client.request("auth_request", {"token": expired})
        assert reply["type"] == "auth_failure" and reply["data"]["code"] == "token_expired"
        assert (await client.request("ping", {}))["type"] == "pong"
    finally:
        await client.close()


async def test_in_band_auth_over_the_identity_cap_is_refused(gateway_factory: Callable[..., Any]) -> None:
    """docs/protocol.md: the cap in-band is auth_failure too_many_connections, then close 1008."""
    server = await gateway_factory(base_settings(max_connections_per_identity=1))
    token = make_token("alice")
    first = await open_authed(server, token=token)
    second = await open_ws(server.ws_url)
    try:
        await second.recv_type("connect")
        # (not correlated: the same core gap as test_in_band_auth_success_is_correlated)
        await second.send({"id": "cap", "type": "auth_request", "timestamp": 0, "data": {"token": token}})
        failure = await second.recv()
        assert failure["type"] == "auth_failure" and failure["data"]["code"] == "too_many_connections"
        code, _ = await second.closed()
        assert code == 1008
        assert (await first.request("ping", {}))["type"] == "pong"
    finally:
        await first.close()


async def test_plain_http_get_on_ws_is_a_client_error(server: RunningGateway) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.ws_url.replace('ws://', 'http://')}?token={make_token()}") as resp:
            assert 400 <= resp.status < 500
    assert not server.gateway.connections
    assert not server.gateway.per_identity


async def test_subprotocol_is_negotiated(server: RunningGateway) -> None:
    client = await open_ws(f"{server.ws_url}?token={make_token()}", subprotocols=["autosdlc.v1"])
    try:
        assert client.ws.subprotocol == "autosdlc.v1"
        assert (await client.recv())["type"] == "connect"
    finally:
        await client.close()
    plain = await open_ws(f"{server.ws_url}?token={make_token()}")
    try:
        assert plain.ws.subprotocol is None
    finally:
        await plain.close()

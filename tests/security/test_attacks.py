"""Named attacks against a live gateway: what each one gets, and that the server
keeps serving afterwards (docs/security.md's attack table is filled from these)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import io
import json
import logging
import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import InvalidStatus

from autosdlc_ws.core.envelope import gunzip_capped
from autosdlc_ws.errors import TooLarge
from autosdlc_ws.server.logs import JsonFormatter, KeyValueFormatter
from tests.conftest import (
    ADMIN_KEY,
    JWT_SECRET,
    PUBLISHER_KEY,
    RunningGateway,
    base_settings,
    make_token,
    timeout,
)
from tests.integration.helpers import agent_status, open_authed, open_ws, publish
from tests.security.support import check_server_message

# --------------------------------------------------------------------------- helpers


async def refused(url: str, status: int, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """The upgrade is refused with `status` and a JSON error body; (body, headers)."""
    with pytest.raises(InvalidStatus) as info:
        ws = await websockets.connect(url, open_timeout=timeout(5), **kwargs)
        await ws.close()
    response = info.value.response
    assert response.status_code == status, (response.status_code, response.body)
    body: dict[str, Any] = json.loads(response.body or b"{}")
    assert set(body["error"]) >= {"code", "message"}, body
    return body, response.headers


async def still_serving(server: RunningGateway) -> None:
    """healthz answers and a new client gets a published event."""
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{server.http_url}/healthz")).status == 200
    client = await open_authed(server, token=make_token("checker", ("read:*",)))
    try:
        await client.subscribe(["agent_status"], {"agentId": "probe"})
        ids = (await publish(server, agent_status("probe")))["ids"]
        assert (await client.recv())["id"] == ids[0]
    finally:
        await client.close()


def b64(obj: Any) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "permissions": ["read:*", "publish:*", "admin:*"], "iat": now,
            "exp": now + 3600, **extra}


def forge_hs256(key: bytes, payload: dict[str, Any]) -> str:
    """An HS256 token made by hand (PyJWT refuses a PEM key as an HMAC secret)."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(payload)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def gzip_bomb(inflated: int) -> bytes:
    """gzip of `inflated` zero bytes, built without ever holding them: the same
    fully flushed deflate block repeated (the trailer's CRC is not reached)."""
    chunk = 1 << 20
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = deflater.compress(bytes(chunk)) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(bytes(chunk)) + deflater.flush(zlib.Z_FULL_FLUSH)
    return head + block * (inflated // chunk - 1) + deflater.flush()


# ------------------------------------------------------------------------ gzip bombs


def test_gigabyte_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip_bomb(4 << 30)  # 4 GiB of zeros in about 4 MiB
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with pytest.raises(TooLarge):
            gunzip_capped(bomb, 1 << 20)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n4 GiB gzip bomb ({len(bomb)} bytes): refused in {elapsed * 1000:.1f} ms, peak {peak >> 10} KiB")
    assert elapsed < 0.5, elapsed
    assert peak < 8 << 20, peak  # the 1 MiB cap (+1 byte) and change, never the 4 GiB


async def test_gzip_bomb_frame_is_refused_quickly_and_cheaply(server: RunningGateway) -> None:
    limits = server.gateway.settings
    bomb = gzip.compress(b'{"type":"ping","data":{"p":"' + b"A" * (60 << 20) + b'"}}', 9)
    assert len(bomb) < limits.max_frame_bytes  # 61 KB on the wire, 60 MiB inflated
    client = await open_authed(server)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        await client.send(bomb)
        reply = await client.recv()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check_server_message(reply)
    print(f"\n60 MiB gzip frame ({len(bomb)} bytes): {reply['data']['code']} in {elapsed * 1000:.1f} ms, "
          f"peak {peak >> 10} KiB")
    assert reply["data"]["code"] == "too_large", reply
    assert elapsed < 2.0, elapsed
    assert peak < 16 << 20, peak  # cap 1 MiB: no 60 MiB buffer anywhere
    assert (await client.request("ping", {}))["type"] == "pong"  # the connection stays usable
    await client.close()
    await still_serving(server)


async def test_gzip_bomb_http_body_is_refused(server: RunningGateway) -> None:
    """Content-Encoding: gzip on the publish API: aiohttp inflates, the body cap stops it."""
    body = gzip.compress(b"[" + b" " * (60 << 20) + b"]", 9)
    tracemalloc.start()
    try:
        async with aiohttp.ClientSession() as http:
            resp = await http.post(f"{server.http_url}/api/v1/events", data=body, headers={
                "X-API-Key": PUBLISHER_KEY, "Content-Encoding": "gzip", "Content-Type": "application/json"})
            status = resp.status
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\ngzip HTTP body ({len(body)} bytes, 60 MiB inflated): {status}, peak {peak >> 10} KiB")
    assert status == 413, status
    assert peak < 24 << 20, peak
    await still_serving(server)


# -------------------------------------------------------------------- oversize frames


async def test_oversize_frame_closes_1009_and_others_are_unaffected(server: RunningGateway) -> None:
    bystander = await open_authed(server)
    await bystander.subscribe(["agent_status"], {"agentId": "probe"})
    attacker = await open_authed(server)
    await attacker.send("[" + " " * server.gateway.settings.max_frame_bytes + "]")
    code, _ = await attacker.closed()
    assert code == 1009
    ids = (await publish(server, agent_status("probe")))["ids"]
    assert (await bystander.recv())["id"] == ids[0]
    await bystander.close()
    await still_serving(server)


async def test_deep_json_is_refused_on_both_doors(server: RunningGateway) -> None:
    deep = "[" * 300 + "]" * 300
    client = await open_authed(server)
    await client.send('{"id":"d","type":"agent_log","data":{"agentId":"a","level":"info","message":"m",'
                      f'"x":{deep}}}}}')
    reply = await client.recv()
    assert reply["data"]["code"] == "invalid_message" and reply["data"]["path"] == "", reply
    # refused whole, before its fields are read: not correlated (like invalid_json)
    assert "correlationId" not in reply["metadata"]
    await client.close()
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/api/v1/events", headers={"X-API-Key": PUBLISHER_KEY},
                               data='{"type":"agent_log","data":{"agentId":"a","level":"info","message":"m",'
                                    f'"x":{deep}}}}}')
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "invalid_message"
    await still_serving(server)


# ------------------------------------------------------------------------- slowloris


async def test_slowloris_upgrade_is_dropped_and_others_are_served(
        gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(http_idle_timeout_s=1.0))
    request = (f"GET /ws?token={make_token()} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n").encode()  # the final CRLF never comes
    loop = asyncio.get_running_loop()

    async def slowloris(silent: bool) -> float:
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        started = time.monotonic()
        try:
            if not silent:
                for byte in request:
                    await loop.sock_sendall(sock, bytes([byte]))
                    await asyncio.sleep(0.02)  # ~5 s for the whole head: far past the 1 s timeout
            data = await asyncio.wait_for(loop.sock_recv(sock, 1024), timeout(10))
            assert data == b"", data  # closed without an answer
        except (ConnectionResetError, BrokenPipeError):
            pass
        finally:
            sock.close()
        return time.monotonic() - started

    attackers = [loop.create_task(slowloris(silent=i % 2 == 0)) for i in range(10)]
    await asyncio.sleep(0.3)
    await still_serving(server)  # served while the slowloris sockets hang
    dropped_after = await asyncio.gather(*attackers)
    print(f"\nslowloris sockets dropped after {min(dropped_after):.2f}-{max(dropped_after):.2f} s")
    assert all(t < 1.0 + timeout(1.5) for t in dropped_after), dropped_after
    await still_serving(server)


# --------------------------------------------------------------------------- tokens


async def test_token_expiring_mid_connection_gets_4003(gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(jwt_leeway_s=0))
    await asyncio.sleep(1.02 - time.time() % 1)
    client = await open_authed(server, token=make_token("alice", ttl_s=1))
    await client.subscribe(["agent_status"])
    failure = await client.recv_type("auth_failure", 3)
    assert failure["data"]["code"] == "token_expired"
    code, _ = await client.closed()
    assert code == 4003
    assert server.gateway.connections == {}
    await still_serving(server)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_token_is_refused_at_the_upgrade(server: RunningGateway, alg: str) -> None:
    token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims())}."
    body, _ = await refused(f"{server.ws_url}?token={token}", 401)
    assert body["error"]["code"] == "unauthorized"
    # in-band too: auth_failure, never auth_success
    client = await open_ws(server.ws_url)
    await client.recv_type("connect")
    reply = await client.request("auth_request", {"token": token})
    assert reply["type"] == "auth_failure", reply
    await client.close()


@pytest.fixture
def rsa_setup(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, bytes, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "rs-public.pem"
    path.write_bytes(pem)
    return key, pem, path


@pytest.mark.parametrize("with_secret", [False, True])
async def test_hs256_signed_with_the_rs_public_key_is_refused(
        gateway_factory: Callable[..., Any], rsa_setup: tuple[rsa.RSAPrivateKey, bytes, Path],
        with_secret: bool) -> None:
    key, pem, path = rsa_setup
    server: RunningGateway = await gateway_factory(base_settings(
        jwt_public_keys=(str(path),), jwt_secret=JWT_SECRET if with_secret else None))
    # the genuine RS256 token is accepted: the key is configured and works
    genuine = jwt.encode(claims(sub="alice"), key, algorithm="RS256")
    ok = await open_authed(server, token=genuine)
    await ok.close()
    for variant in (pem, pem.strip(), pem.decode().replace("\n", "\r\n").encode()):
        forged = forge_hs256(variant, claims())
        body, _ = await refused(f"{server.ws_url}?token={forged}", 401)
        assert body["error"]["code"] == "unauthorized"
    await still_serving(server) if with_secret else None


async def test_token_not_yet_valid_is_refused(server: RunningGateway) -> None:
    leeway = server.gateway.settings.jwt_leeway_s
    future = jwt.encode(claims(nbf=int(time.time() + leeway + 60)), JWT_SECRET, algorithm="HS256")
    await refused(f"{server.ws_url}?token={future}", 401)
    within_leeway = jwt.encode(claims(sub="early", nbf=int(time.time() + leeway / 2)), JWT_SECRET,
                               algorithm="HS256")
    client = await open_authed(server, token=within_leeway)
    await client.close()


# ---------------------------------------------------------------- origin / CSWSH


async def test_cross_site_websocket_hijacking_with_the_cookie(gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(allowed_origins=("https://dash.example",)))
    cookie = {"Cookie": f"autosdlc_token={make_token('victim', ('read:*',))}"}
    body, _ = await refused(server.ws_url, 403, origin="https://evil.example", additional_headers=cookie)
    assert body["error"]["code"] == "forbidden"
    assert server.gateway.connections == {}
    # the dashboard's own origin gets the upgrade (101), authenticated by the cookie
    client = await open_ws(server.ws_url, origin="https://dash.example", additional_headers=cookie)
    assert client.ws.response.status_code == 101
    await client.recv_type("connect")
    assert (await client.recv_type("auth_success"))["data"]["subject"] == "victim"
    await client.close()


# ------------------------------------------------------------ connection admission


async def test_open_connections_per_ip_are_capped(gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(max_connections_per_ip=3))
    clients = [await open_authed(server, token=make_token(f"user{i}")) for i in range(3)]
    body, headers = await refused(f"{server.ws_url}?token={make_token('user9')}", 429)
    assert body["error"]["code"] == "too_many_connections" and int(headers["Retry-After"]) >= 1
    unauthenticated_too = await refused(server.ws_url, 429)
    assert unauthenticated_too[0]["error"]["code"] == "too_many_connections"
    await clients[0].close()
    for _ in range(200):
        if server.gateway.per_ip.get("127.0.0.1", 0) < 3:
            break
        await asyncio.sleep(0.01)
    clients[0] = await open_authed(server, token=make_token("user9"))
    for client in clients:
        await client.close()


async def test_connection_attempts_per_ip_are_rate_limited(gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(rate_connect_per_ip_per_s=2,
                                                                 rate_connect_per_ip_burst=5))
    # a token-guessing attacker: every attempt counts, failed ones too
    for i in range(5):
        await refused(f"{server.ws_url}?token=guess{i}", 401)
    body, headers = await refused(f"{server.ws_url}?token={make_token()}", 429)
    assert body["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
    await asyncio.sleep(0.6)  # the bucket refills at 2/s
    client = await open_authed(server)
    await client.close()


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(gateway_factory: Callable[..., Any]) -> None:
    trusting: RunningGateway = await gateway_factory(base_settings(max_connections_per_ip=1,
                                                                   trusted_proxies=("127.0.0.0/8",)))
    a = await open_authed(trusting, additional_headers={"X-Forwarded-For": "203.0.113.7"})
    b = await open_authed(trusting, additional_headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.8"})
    await refused(f"{trusting.ws_url}?token={make_token()}", 429,
                  additional_headers={"X-Forwarded-For": "203.0.113.7"})
    assert trusting.gateway.per_ip == {"203.0.113.7": 1, "203.0.113.8": 1}
    await a.close()
    await b.close()
    # not behind a trusted proxy: a spoofed header changes nothing
    direct: RunningGateway = await gateway_factory(base_settings(max_connections_per_ip=1))
    c = await open_authed(direct, additional_headers={"X-Forwarded-For": "203.0.113.7"})
    await refused(f"{direct.ws_url}?token={make_token()}", 429,
                  additional_headers={"X-Forwarded-For": "192.0.2.1"})
    await c.close()


async def test_connections_per_identity_are_capped(gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(max_connections_per_identity=2))
    token = make_token("alice")
    clients = [await open_authed(server, token=token) for _ in range(2)]
    body, headers = await refused(f"{server.ws_url}?token={token}", 429)
    assert body["error"]["code"] == "too_many_connections" and headers["Retry-After"]
    for client in clients:
        await client.close()


async def test_publish_rate_is_shared_by_an_identitys_connections(
        gateway_factory: Callable[..., Any]) -> None:
    server: RunningGateway = await gateway_factory(base_settings(rate_identity_publish_per_s=1,
                                                                 rate_identity_publish_burst=5))
    token = make_token("alice")
    first, second = await open_authed(server, token=token), await open_authed(server, token=token)
    other = await open_authed(server, token=make_token("bob"))
    for n in range(5):  # 3 + 2: the identity's burst, used from two connections
        await (first if n < 3 else second).send(agent_status("a1", f"ok-{n}"))
    await second.send(agent_status("a1", "over"))
    reply = await second.recv()
    assert reply["data"]["code"] == "rate_limited" and reply["metadata"]["correlationId"] == "over", reply
    assert reply["data"]["retryAfterMs"] > 0
    await first.send(agent_status("a1", "over-too"))
    assert (await first.recv())["data"]["code"] == "rate_limited"
    # another identity has its own bucket; control messages are not charged
    await other.send(agent_status("a1", "bob-ok"))
    await other.silent(0.2)
    assert (await first.request("ping", {}))["type"] == "pong"
    for client in (first, second, other):
        await client.close()


# ----------------------------------------------------------------------- log injection


async def test_newlines_in_subject_and_message_do_not_forge_log_lines(
        server: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    evil_subject = 'mallory\nts=2024-01-01T00:00:00Z level=ERROR logger=autosdlc_ws.auth msg="admin login"'
    async with aiohttp.ClientSession() as http:
        resp = await http.put(f"{server.http_url}/api/v1/logging", headers={"X-API-Key": ADMIN_KEY},
                              json={"enabled": True})
        assert resp.status == 200
    client = await open_authed(server, token=make_token(evil_subject, ("read:*", "publish:*")))
    note = "line one\nlevel=ERROR msg=forged\r\n<script>x</script>"
    await client.send(agent_status("a1", "inj-1", note=note))
    await client.send('{"id":"inj-2","type":"ping","data":{}}\n\nlevel=CRITICAL msg=forged')
    assert (await client.recv())["data"]["code"] == "invalid_json"
    await client.close()
    await asyncio.sleep(0.1)
    records = [r for r in caplog.records if r.name.startswith("autosdlc_ws")]
    assert any(getattr(r, "msg_subject", None) == evil_subject for r in records)
    out = io.StringIO()
    for formatter in (KeyValueFormatter(), JsonFormatter()):
        for record in records:
            line = formatter.format(record)
            assert "\n" not in line and "\r" not in line, line
            out.write(line + "\n")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 * len(records)  # one line per record, in both formats
    assert all(line.startswith(("ts=", "{")) for line in lines)
    assert not any(line.startswith(("level=", "ts=2024")) for line in lines)


async def test_oversize_request_head_is_refused(server: RunningGateway) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{server.http_url}/healthz", headers={"X-Junk": "x" * 9000})
        assert resp.status == 400
        resp = await http.get(f"{server.http_url}/healthz", headers={f"X-H{i}": "1" for i in range(200)})
        assert resp.status == 400
    await still_serving(server)

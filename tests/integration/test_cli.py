"""The `autosdlc-ws` command as an operator runs it, in subprocesses (CONTRACT.md section 8)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import tomllib
from typing import Any

import aiohttp

from autosdlc_ws.core.auth import hash_api_key
from tests.conftest import JWT_SECRET, PUBLISHER_KEY, RunningGateway, free_port, timeout
from tests.integration.helpers import open_authed, open_ws


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOSDLC_WS_")}
    env["AUTOSDLC_WS_JWT_SECRET"] = JWT_SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str] | None = None, seconds: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "autosdlc_ws", *args, env=env or cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout(seconds))
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_refuses_workers_with_memory_broker() -> None:
    code, out, err = await run_cli("serve", "--workers", "2", "--port", str(free_port()))
    assert code == 1, (out, err)
    assert "redis" in err.lower()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


async def test_token_create_mints_a_token_the_server_accepts(server: RunningGateway) -> None:
    code, out, err = await run_cli("token", "create", "--sub", "cli-user", "--permission", "read:agent:*",
                                   "--permission", "publish:agent:a1", "--ttl", "120")
    assert code == 0, err
    token = out.strip()
    assert token.count(".") == 2
    client = await open_authed(server, token=token)
    try:
        assert client.auth is not None
        data = client.auth["data"]
        assert data["subject"] == "cli-user"
        assert data["permissions"] == ["read:agent:*", "publish:agent:a1"]
        assert abs(data["expiresAt"] - (time.time() + 120) * 1000) < 5000
    finally:
        await client.close()


async def test_token_create_errors_are_one_line() -> None:
    code, _, err = await run_cli("token", "create", "--sub", "x", "--permission", "fly:away")
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    env = cli_env()
    del env["AUTOSDLC_WS_JWT_SECRET"]
    code, _, err = await run_cli("token", "create", "--sub", "x", "--permission", "read:*", env=env)
    assert code == 1 and "jwt_secret" in err.lower() and "Traceback" not in err


async def test_keys_create_prints_key_and_config_entry() -> None:
    code, out, err = await run_cli("keys", "create", "--name", "ci", "--permission", "publish:*",
                                   "--permission", "read:agent:*")
    assert code == 0, err
    key_lines = [line for line in out.splitlines() if "ask_" in line]
    assert len(key_lines) == 1
    key = next(word for word in key_lines[0].split() if word.startswith("ask_"))
    toml_text = out[out.index("[[api_keys]]"):]
    entry = tomllib.loads(toml_text)["api_keys"][0]
    assert entry == {"name": "ci", "sha256": hash_api_key(key), "permissions": ["publish:*", "read:agent:*"]}
    assert entry["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in toml_text  # the plaintext is shown once, not stored in the entry


async def test_publish_against_the_server(server: RunningGateway) -> None:
    client = await open_authed(server)
    try:
        await client.subscribe(["agent_status"])
        code, out, err = await run_cli(
            "publish", "agent_status", "--data", json.dumps({"agentId": "cli-1", "status": "busy"}),
            "--url", server.http_url, "--api-key", PUBLISHER_KEY)
        assert code == 0, err
        event = await client.recv()
        assert event["type"] == "agent_status" and event["data"] == {"agentId": "cli-1", "status": "busy"}
        assert event["id"] in out
    finally:
        await client.close()


async def test_publish_invalid_data_fails_locally(server: RunningGateway) -> None:
    cases: list[tuple[str, ...]] = [
        ("agent_status", "--data", '{"agentId": "a1", "status": 7}'),  # open value, wrong JSON type
        ("agent_status", "--data", "{not json"),
        ("agent_status", "--data", "[1, 2]"),
        ("agent_dance", "--data", "{}"),
        ("ping", "--data", "{}"),
    ]
    before = server.gateway.stats.events_published
    results = await asyncio.gather(*(
        run_cli("publish", *case, "--url", server.http_url, "--api-key", PUBLISHER_KEY) for case in cases))
    for case, (code, out, err) in zip(cases, results, strict=True):
        assert code == 1, (case, out, err)
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
    assert server.gateway.stats.events_published == before  # refused before anything was sent


async def test_publish_errors_from_the_server_are_one_line(server: RunningGateway) -> None:
    code, _, err = await run_cli("publish", "agent_status", "--data", '{"agentId": "a1", "status": "idle"}',
                                 "--url", server.http_url, "--api-key", "ask_wrong")
    assert code == 1 and "401" in err and "Traceback" not in err
    code, _, err = await run_cli("publish", "agent_status", "--data", '{"agentId": "a1", "status": "idle"}',
                                 "--url", f"http://127.0.0.1:{free_port()}", "--api-key", PUBLISHER_KEY)
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1


async def wait_healthy(url: str, proc: asyncio.subprocess.Process, seconds: float) -> None:
    deadline = time.monotonic() + timeout(seconds)
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "the server exited"
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not become healthy")


async def test_serve_then_sigterm_drains_clients() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "autosdlc_ws", "serve", "--port", str(port),
        env=cli_env(AUTOSDLC_WS_MONITOR_INTERVAL_S="0"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc, 15)
        from autosdlc_ws.core.auth import mint_token

        token = mint_token(JWT_SECRET, "watcher", ["read:*"], ttl_s=600, now_s=int(time.time()))
        client = await open_ws(f"ws://127.0.0.1:{port}/ws?token={token}")
        await client.recv_type("connect")
        await client.recv_type("auth_success")
        await client.subscribe(["agent_status"])
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        frames: list[dict[str, Any]] = await client.until(lambda m: m["type"] == "disconnect")
        disconnect = frames[-1]
        assert disconnect["data"]["reconnect"] is True and disconnect["data"]["reason"]
        code, _ = await client.closed()
        assert code == 1001
        returncode = await asyncio.wait_for(proc.wait(), timeout(5))
        assert returncode == 0
        assert time.monotonic() - started < timeout(5)
        err = (await proc.stderr.read()).decode() if proc.stderr else ""
        assert "Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

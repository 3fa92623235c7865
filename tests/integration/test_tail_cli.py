"""`autosdlc-ws tail`: filtered live events, JSON for pipes, no terminal injection."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from autosdlc_ws.tools.tail import clean, format_line, parse_filters
from tests.conftest import RunningGateway, make_token, timeout


def test_clean_strips_escape_sequences_and_newlines() -> None:
    assert clean("ok\x1b[2J\nforged line\r") == "ok[2Jforged line"


def test_format_line_colours_by_phase_and_severity() -> None:
    tdd = {"type": "tdd_phase_change", "timestamp": 0,
           "data": {"agentId": "a1", "previousPhase": "red", "currentPhase": "green",
                    "testResults": {"total": 4, "passing": 4, "failing": 0}}}
    line = format_line(tdd, colour=True)
    assert line.startswith("\033[32m") and "red -> green (4/4 passing)" in line
    alert = {"type": "system_alert", "timestamp": 0, "data": {"severity": "critical", "message": "down"}}
    assert format_line(alert, colour=True).startswith("\033[1;31m")
    assert "\033" not in format_line(alert, colour=False)


def test_parse_filters_groups_repeated_keys() -> None:
    assert parse_filters(["agentId=a", "agentId=b", "repository=o/r"]) == {
        "agentId": ["a", "b"], "repository": ["o/r"]}


async def test_tail_prints_only_matching_events(server: RunningGateway) -> None:
    token = make_token()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "autosdlc_ws", "tail", "--url", server.http_url, "--token", token,
        "--events", "agent_*", "--filter", "agentId=a1", "--json", "--count", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # until tail's subscription is in place
                await asyncio.sleep(0.05)
                if len(server.gateway.hub.index):
                    break
            for agent, status in (("a2", "idle"), ("a1", "busy"), ("a1", "idle")):
                resp = await http.post(f"{server.http_url}/api/v1/events",
                                       headers={"Authorization": f"Bearer {token}"},
                                       json={"type": "agent_status", "data": {"agentId": agent, "status": status}})
                assert resp.status == 202
        out, err = await asyncio.wait_for(proc.communicate(), timeout(15))
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [(e["data"]["agentId"], e["data"]["status"]) for e in lines] == [("a1", "busy"), ("a1", "idle")]


async def test_tail_bad_filter_is_one_line_error(server: RunningGateway) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "autosdlc_ws", "tail", "--url", server.http_url, "--token", "x",
        "--filter", "nokey", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout(10))
    assert proc.returncode == 1
    assert err.decode().strip().count("\n") == 0 and "key=value" in err.decode()

"""End-to-end fuzz: hostile connections hammer a live gateway while well-behaved
clients must still receive every event, in order, with nothing lost.

Several hostile workers send thousands of frames in total (random bytes as text
and binary, invalid UTF-8, oversize frames, gzip bombs, floods, bad auth,
unknown types, subscribe storms, forbidden and over-deep publishes, mutated
valid messages), reconnecting whenever the server closes them. Every frame the
server sends them must be a valid server message, every close a contract code;
meanwhile a publisher posts N events that two subscribers must receive, all of
them, in order. Afterwards the server still serves (healthz, a new client).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import websockets

from tests.conftest import PUBLISHER_KEY, RunningGateway, base_settings, make_token, timeout
from tests.integration.helpers import Client, agent_status, decode, open_authed, open_ws
from tests.security.support import ABNORMAL, CLOSE_CODES, check_server_message

SEED = int(os.environ.get("AUTOSDLC_WS_FUZZ_SEED", str(random.randrange(1 << 30))))
HOSTILE_WORKERS = 6
FRAMES_PER_WORKER = 600
EVENTS = 300
HOSTILE_TOKEN_PERMS = ("read:*", "publish:agent:evil")

SMALL_BOMB = gzip.compress(b'{"type":"ping","data":{"p":"' + b"A" * (8 << 20) + b'"}}', 9)


#: Per hostile worker, the kinds it sends first: those whose close codes are asserted
#: below (an oversize frame closes 1009, invalid UTF-8 in a text frame 1007).
FORCED_FIRST = {0: ("oversize",), 1: ("invalid_utf8",)}


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice([None, True, False, 0, -1, 2**64, 10**30, 1e308, -1e308, 5e-324, "", "x" * 300,
                           "\u202eevil\u202c", "nul\x00byte", "line\nbreak", "🙂", "\ud800"[:0] + "\ufeff",
                           rng.random(), rng.randrange(-(2**63), 2**63)])
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["id", "type", "data", "metadata", "events", "filters", "agentId", "token", "x"]):
            random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


class Hostile:
    """One hostile worker: connects, sends junk, reads and checks what comes back,
    reconnects when closed, until it has sent its quota of frames."""

    def __init__(self, server: RunningGateway, index: int, rng: random.Random) -> None:
        self.server = server
        self.index = index
        self.rng = rng
        self.sent = 0
        self.closes: Counter[int | None] = Counter()
        self.errors: Counter[str] = Counter()
        self.http_statuses: Counter[int] = Counter()
        self.frames_received = 0
        self.bad_frames: list[Any] = []
        self.connections = 0
        #: kinds whose answer the test asserts on go first, so no seed can leave them out
        self.forced = list(FORCED_FIRST.get(index, ()))

    async def connect(self) -> Client | None:
        roll = self.rng.random()
        url = self.server.ws_url
        if roll < 0.08:  # bad credentials at the upgrade: 401, no socket
            bad = self.rng.choice(["not.a.jwt", make_token(ttl_s=-3600), "x" * 3000,
                                   make_token("mallory", ("read:*",))[:-4] + "AAAA"])
            try:
                await open_ws(f"{url}?token={bad}")
            except websockets.InvalidStatus as exc:
                self.http_statuses[exc.response.status_code] += 1
                return None
            raise AssertionError("a bad token was let in")
        try:
            if roll < 0.6:
                client = await open_authed(self.server, token=make_token("mallory", HOSTILE_TOKEN_PERMS))
            else:  # unauthenticated: must auth in-band (or is refused everything)
                client = await open_ws(url)
                check_server_message(await client.recv())
        except websockets.InvalidStatus as exc:
            self.http_statuses[exc.response.status_code] += 1
            await asyncio.sleep(0.05)
            return None
        self.connections += 1
        return client

    def frames(self) -> list[tuple[str | bytes, bool | None]]:
        """The next burst: (payload, text?) pairs; text=None means websockets decides."""
        rng = self.rng
        kind = self.forced.pop(0) if self.forced else rng.choices(
            ["bytes_binary", "bytes_text", "unicode", "json", "oversize", "bomb", "ping_flood",
             "unknown", "subscribe_storm", "bad_auth", "forbidden_publish", "deep", "evil_publish",
             "mutated", "server_type"],
            weights=[10, 2, 10, 12, 1, 3, 4, 6, 4, 3, 6, 3, 4, 12, 3])[0]
        rid = f"h{self.index}-{self.sent}"
        if kind == "invalid_utf8":  # 0xff never starts UTF-8: close 1007
            return [(b"\xff" + rng.randbytes(rng.randrange(0, 50)), True)]
        if kind == "bytes_binary":
            return [(rng.randbytes(rng.randrange(1, 2000)), False)]
        if kind == "bytes_text":  # usually invalid UTF-8 in a text frame: close 1007
            return [(rng.randbytes(rng.randrange(1, 200)), True)]
        if kind == "unicode":
            return [("".join(chr(rng.choice([rng.randrange(32, 0xD800), rng.randrange(0xE000, 0x110000)]))
                             for _ in range(rng.randrange(1, 300))), None)]
        if kind == "json":
            return [(json.dumps(random_json(rng)), None)]
        if kind == "oversize":
            size = self.server.gateway.settings.max_frame_bytes + rng.randrange(1, 5000)
            return [("[" + " " * (size - 2) + "]", None)]
        if kind == "bomb":
            return [(SMALL_BOMB, False)]
        if kind == "ping_flood":
            return [(json.dumps({"id": f"{rid}-{n}", "type": "ping", "data": {}}), None) for n in range(60)]
        if kind == "unknown":
            return [(json.dumps({"id": rid, "type": rng.choice(["hack", "", "PING", "admin", "x" * 500]),
                                 "data": {}}), None)]
        if kind == "subscribe_storm":
            return [(json.dumps({"id": f"{rid}-{n}", "type": "subscribe", "data": {
                "events": rng.choice([["*"], ["agent_*"], ["nope_*"], ["system_alert"], [],
                                      ["agent_status"] * 70]),
                "filters": rng.choice([{}, {"agentId": "evil"}, {"agentId": ["a"] * 101}, {"bogus": 1},
                                       {"repository": "no-slash"}])}}), None) for n in range(25)]
        if kind == "bad_auth":
            return [(json.dumps({"id": f"{rid}-{n}", "type": "auth_request",
                                 "data": rng.choice([{"token": "bad"}, {"apiKey": "nope"}, {}, {
                                     "token": make_token("someone-else", ("read:agent:evil",))}])}), None)
                    for n in range(3)]
        if kind == "forbidden_publish":  # publish:agent:evil only: never reaches the good subscribers
            return [(json.dumps(agent_status("good-agent", f"{rid}-forged", seq=-1)), None)]
        if kind == "deep":
            depth = rng.choice([33, 100, 254, 300, 1000, 1100])
            return [(f'{{"id":"{rid}","type":"agent_log","data":{{"agentId":"evil","level":"info",'
                     f'"message":"m","deep":{nested(depth)}}}}}', None)]
        if kind == "evil_publish":
            return [(json.dumps(agent_status("evil", None, note="\n\r\x1b[31m<script>")), None)]
        if kind == "server_type":
            return [(json.dumps({"id": rid, "type": rng.choice(["connect", "error", "auth_success", "pong"]),
                                 "data": {}}), None)]
        # mutated valid message
        msg: dict[str, Any] = rng.choice([
            {"id": rid, "type": "subscribe",
             "data": {"events": ["agent_status"], "filters": {"agentId": "evil"}}},
            {"id": rid, "type": "unsubscribe", "data": {"subscriptionId": "sub-x"}},
            agent_status("evil", rid),
            {"id": rid, "type": "ping", "data": {}},
        ])
        key = rng.choice(["id", "type", "data", "timestamp", "metadata"])
        msg[key] = random_json(rng)
        return [(json.dumps(msg), None)]

    async def read(self, client: Client) -> None:
        try:
            async for raw in client.ws:
                self.frames_received += 1
                try:
                    msg = decode(raw)
                    check_server_message(msg)
                except Exception as exc:
                    self.bad_frames.append((repr(exc), raw[:300]))
                    continue
                if msg["type"] == "error":
                    self.errors[msg["data"]["code"]] += 1
                elif msg["type"] in ("agent_status",) and msg["data"].get("agentId") == "good-agent" \
                        and str(msg.get("id", "")).startswith("h"):
                    self.bad_frames.append(("forged event delivered", msg))
        except websockets.ConnectionClosed:
            pass

    async def run(self) -> None:
        while self.sent < FRAMES_PER_WORKER:
            client = await self.connect()
            if client is None:
                self.sent += 1
                continue
            reader = asyncio.get_running_loop().create_task(self.read(client))
            try:
                while self.sent < FRAMES_PER_WORKER and not reader.done():
                    for payload, text in self.frames():
                        await client.ws.send(payload, text=text)
                        self.sent += 1
                    if self.rng.random() < 0.3:
                        await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass
            finally:
                if not reader.done():
                    await client.ws.close()
                await asyncio.wait_for(reader, timeout(10))
                rcvd = client.ws.protocol.close_rcvd
                self.closes[rcvd.code if rcvd else ABNORMAL] += 1


async def receive_events(client: Client, expected: list[str], accept: Callable[[dict[str, Any]], bool],
                         seconds: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout(seconds)
    while len(got) < len(expected) and time.monotonic() < deadline:
        msg = await client.recv(max(0.1, deadline - time.monotonic()))
        check_server_message(msg)
        if accept(msg):
            got.append(msg["id"])
    return got


@pytest.mark.timeout(120)
async def test_hostile_traffic_loses_no_event(gateway_factory: Callable[..., Any],
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    server: RunningGateway = await gateway_factory(base_settings(max_connections_per_identity=50))
    print(f"fuzz seed {SEED} (set AUTOSDLC_WS_FUZZ_SEED to replay)")
    subscriber = await open_authed(server, token=make_token("goodie", ("read:agent:*",)))
    await subscriber.subscribe(["agent_status"], {"agentId": "good-agent"})
    watcher = await open_authed(server, token=make_token("watcher", ("read:*",)))
    await watcher.subscribe(["*"])
    hostiles = [Hostile(server, i, random.Random(SEED + i)) for i in range(HOSTILE_WORKERS)]
    expected = [f"good-{i}" for i in range(EVENTS)]

    async def publisher() -> None:
        async with aiohttp.ClientSession() as http:
            for i, event_id in enumerate(expected):
                resp = await http.post(f"{server.http_url}/api/v1/events",
                                       headers={"X-API-Key": PUBLISHER_KEY},
                                       json=agent_status("good-agent", event_id, seq=i))
                assert resp.status == 202, await resp.text()
                await asyncio.sleep(0.005)

    def good(msg: dict[str, Any]) -> bool:
        return msg["type"] == "agent_status" and msg["data"].get("agentId") == "good-agent"

    started = time.monotonic()
    results = await asyncio.gather(
        publisher(),
        receive_events(subscriber, expected, good, 60),
        receive_events(watcher, expected, good, 60),
        *(h.run() for h in hostiles),
    )
    elapsed = time.monotonic() - started
    sub_got, watch_got = results[1], results[2]

    total_sent = sum(h.sent for h in hostiles)
    closes = sum((h.closes for h in hostiles), Counter())
    errors = sum((h.errors for h in hostiles), Counter())
    statuses = sum((h.http_statuses for h in hostiles), Counter())
    print(f"hostile frames {total_sent}, connections {sum(h.connections for h in hostiles)}, "
          f"frames back {sum(h.frames_received for h in hostiles)}, closes {dict(closes)}, "
          f"errors {dict(errors)}, upgrade refusals {dict(statuses)}, {elapsed:.1f} s")

    # every event, in order, nothing lost, nothing forged
    assert sub_got == expected
    assert watch_got == expected
    assert total_sent >= HOSTILE_WORKERS * FRAMES_PER_WORKER
    # every answer was a valid server message; every close a contract code, never 1011
    assert [f for h in hostiles for f in h.bad_frames] == []
    assert set(closes) <= CLOSE_CODES, closes
    assert 1011 not in closes
    assert set(statuses) <= {401, 429}, statuses
    # the fuzz reached the interesting answers
    assert {"invalid_json", "invalid_message", "unknown_type", "rate_limited", "too_large",
            "forbidden"} <= set(errors), errors
    assert closes[1009] and closes[1007], closes
    # no traceback in the server's log: nothing failed inside the gateway
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert failures == [], [r.getMessage() for r in failures]

    # still serving: health, the good clients, a brand-new client
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{server.http_url}/healthz")).status == 200
    fresh = await open_authed(server, token=make_token("newcomer", ("read:*",)))
    await fresh.subscribe(["agent_status"], {"agentId": "good-agent"})
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/api/v1/events", headers={"X-API-Key": PUBLISHER_KEY},
                               json=agent_status("good-agent", "after-fuzz"))
        assert resp.status == 202
    for client in (fresh, subscriber, watcher):
        msg = await client.recv()
        assert msg["id"] == "after-fuzz", msg
    # nothing leaked: only the three good connections remain, and their address count
    await asyncio.sleep(0.2)
    assert len(server.gateway.connections) == 3
    assert sum(server.gateway.per_ip.values()) == 3
    for client in (fresh, subscriber, watcher):
        await client.close()

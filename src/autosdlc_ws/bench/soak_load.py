"""One soak load process: SDK clients that check every event, light clients that churn.

`python -m autosdlc_ws.bench.soak_load CONFIG.json` (started by `bench.soak`).
It holds two kinds of connection, each subscribed to `agent_log` of one
resource (`agentId`):

- **SDK clients** (`autosdlc_ws.client.AutoSDLCWebSocket`, what users run):
  the well-behaved clients whose deliveries the verdict counts. Each feeds a
  `SeqTracker` from the per-resource sequence numbers, starting at 0 (they
  subscribe before publishing starts). They connect through a `CuttingProxy`
  so that a resume storm can cut their sockets; they reconnect and resume
  (session + last event id) by themselves.
- **Light clients** (picows, the handshake of `bench.protocol.GatewayProtocol`):
  the bulk of the connections, cheap enough for thousands in one process.
  They make the churn (closed and replaced at a steady rate) and, when the
  server drops them (a killed worker), reconnect as new sessions. Their
  order checks while connected are reported, not judged.

The parent talks to it over pipes, one JSON object a line: it reads commands
on stdin (`{"cmd": "status"}`, `{"cmd": "storm", "k": 50}`, `{"cmd": "stop"}`)
and answers each on stdout; it writes `{"ready": true, ...}` once every
connection is subscribed. It exits after `stop`, or when stdin closes, or at
its hard deadline, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

try:
    import picows  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - the bench extra; main() says so
    picows = None  # type: ignore[assignment,unused-ignore]

from autosdlc_ws.bench.load_connections import HAVE_PICOWS
from autosdlc_ws.bench.loadgen import raise_nofile_limit
from autosdlc_ws.bench.procstat import cpu_seconds, rss_bytes
from autosdlc_ws.bench.protocol import EVENT_TYPE, GatewayProtocol
from autosdlc_ws.bench.soak_proxy import CuttingProxy
from autosdlc_ws.bench.soak_verdict import SeqTracker
from autosdlc_ws.client import AutoSDLCWebSocket, ConnectionState, ReconnectPolicy
from autosdlc_ws.client.events import ResetEvent


@dataclass
class LoadProcConfig:
    base_url: str  # http://127.0.0.1:port of the gateway
    token: str
    run_id: str
    resources: list[str]  # agentIds; client i follows resources[(offset + i) % len]
    sdk: int = 0
    light: int = 0
    offset: int = 0
    churn_per_s: float = 0.0
    deadline_s: float = 3600.0  # exit by itself after this long, whatever happens
    connect_concurrency: int = 64
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resource_of(cfg: LoadProcConfig, i: int) -> str:
    return cfg.resources[(cfg.offset + i) % len(cfg.resources)]


def _seq_of(event: Any, run_id: str) -> int | None:
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or data.get("run") != run_id or not isinstance(data.get("seq"), int):
        return None
    seq: int = data["seq"]
    return seq


# --- SDK clients -------------------------------------------------------------------------


@dataclass
class SdkClient:
    resource: str
    tracker: SeqTracker = field(default_factory=SeqTracker)
    foreign: int = 0
    resets: int = 0
    # why each reset happened and the last seq received before it: tells a lost
    # session from a lost subscription or lost history when the verdict finds a gap
    reset_reasons: list[dict[str, Any]] = field(default_factory=list)
    ws: AutoSDLCWebSocket | None = None

    def on_event(self, event: Any, run_id: str) -> None:
        seq = _seq_of(event, run_id)
        if seq is None:
            self.foreign += 1
        else:
            self.tracker.add(seq)

    def to_json(self) -> dict[str, Any]:
        stats = dataclasses.asdict(self.ws.stats) if self.ws is not None else {}
        return {"resource": self.resource, "tracker": self.tracker.to_json(), "foreign": self.foreign,
                "resets": self.resets, "reset_reasons": self.reset_reasons, "stats": stats,
                "state": self.ws.state.value if self.ws is not None else None}


async def open_sdk(client: SdkClient, url: str, token: str, run_id: str) -> None:
    ws = AutoSDLCWebSocket(url, token=token, typed=False, iterate=False,
                           reconnect=ReconnectPolicy(base=0.5, cap=5.0), connect_timeout=30.0,
                           request_timeout=30.0)
    client.ws = ws
    ws.on(EVENT_TYPE, lambda event: client.on_event(event, run_id))

    def on_reset(event: ResetEvent) -> None:
        client.resets += 1
        client.reset_reasons.append({"reason": event.data.reason, "detail": event.data.detail,
                                     "at": round(time.time(), 1), "last_seq": client.tracker.last})

    ws.on("$reset", on_reset)
    await ws.connect()
    await ws.subscribe([EVENT_TYPE], {"agentId": client.resource})


# --- light clients -----------------------------------------------------------------------


class LightConn(picows.WSListener if HAVE_PICOWS else object):  # type: ignore[misc,unused-ignore]
    """A picows connection that subscribes to one resource and counts what it gets."""

    def __init__(self, owner: LightPool, index: int, resource: str) -> None:
        super().__init__()
        self.owner = owner
        self.index = index
        self.resource = resource
        self.proto = GatewayProtocol(subscribe={"events": [EVENT_TYPE], "filters": {"agentId": resource}})
        self.tracker = SeqTracker(first=None)
        self.transport: Any = None
        self.is_ready = False
        self.closing = False
        self.ready_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # the conn interface GatewayProtocol.on_control uses
    def send_text(self, data: bytes) -> None:
        self.transport.send(picows.WSMsgType.TEXT, data)

    def ready(self) -> None:
        self.is_ready = True
        if not self.ready_fut.done():
            self.ready_fut.set_result(None)

    def fail(self, why: str) -> None:
        self.owner.failures += 1
        if not self.ready_fut.done():
            self.ready_fut.set_exception(RuntimeError(why))

    # picows callbacks
    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type is not picows.WSMsgType.TEXT:
            if frame.msg_type is picows.WSMsgType.CLOSE:
                transport.disconnect()
            return
        try:
            msg = orjson.loads(frame.get_payload_as_bytes())
        except orjson.JSONDecodeError:
            self.owner.undecodable += 1
            return
        for item in msg if isinstance(msg, list) else [msg]:
            if isinstance(item, dict) and item.get("type") == EVENT_TYPE:
                seq = _seq_of(item, self.owner.cfg.run_id)
                if seq is not None:
                    self.tracker.add(seq)
                    self.owner.received += 1
            elif isinstance(item, dict):
                self.proto.on_control(self, item)

    def on_ws_disconnected(self, transport: Any) -> None:
        was_ready, self.is_ready = self.is_ready, False
        if not self.ready_fut.done():
            self.ready_fut.set_exception(RuntimeError("closed during the handshake"))
        self.owner.gone(self, was_ready)


class LightPool:
    """The light connections of this process, kept at their number: a connection the server
    dropped is replaced by a new one, and `churn` replaces a random one on purpose."""

    def __init__(self, cfg: LoadProcConfig, ws_url: str, headers: dict[str, str]) -> None:
        self.cfg = cfg
        self.ws_url = ws_url
        self.headers = headers
        self.slots: list[LightConn | None] = [None] * cfg.light
        self.received = 0
        self.failures = 0
        self.undecodable = 0
        self.dropped = 0  # closed by the server (or the network), not by us
        self.churned = 0
        self.reopened = 0
        self.finished: list[SeqTracker] = []  # trackers of connections that ended
        self.stopping = False
        self._sem = asyncio.Semaphore(cfg.connect_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def open_count(self) -> int:
        return sum(1 for c in self.slots if c is not None and c.is_ready)

    async def open(self, i: int, *, attempts: int = 20) -> None:
        resource = resource_of(self.cfg, self.cfg.sdk + i)
        for attempt in range(attempts):
            if self.stopping:
                return
            async with self._sem:
                conn: LightConn | None = None
                try:
                    _, listener = await picows.ws_connect(
                        lambda: LightConn(self, i, resource), self.ws_url, extra_headers=self.headers,
                        websocket_handshake_timeout=30, enable_auto_pong=True)
                    assert isinstance(listener, LightConn)
                    conn = self.slots[i] = listener
                    await asyncio.wait_for(asyncio.shield(listener.ready_fut), 30)
                    return
                except (OSError, RuntimeError, TimeoutError, picows.WSError) as exc:
                    last = exc
                    if conn is not None:  # refused after the upgrade (say, broker down): not kept open
                        conn.closing = True
                        self.slots[i] = None
                        conn.transport.disconnect()
            await asyncio.sleep(min(5.0, 0.2 * 2 ** attempt) * random.random() + 0.1)
        raise RuntimeError(f"light connection {i} failed {attempts} times; last: {last!r}")

    def gone(self, conn: LightConn, was_ready: bool) -> None:
        """A connection ended; one that was serving is replaced (one still in its handshake is
        `open`'s to retry)."""
        self.finished.append(conn.tracker)
        if self.stopping or conn.closing or not was_ready or self.slots[conn.index] is not conn:
            return
        self.dropped += 1
        self.slots[conn.index] = None
        self._spawn(self._reopen(conn.index, random.uniform(0.2, 2.0)))

    async def _reopen(self, i: int, delay: float) -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(RuntimeError):
            await self.open(i)
            self.reopened += 1

    def churn_one(self, rng: random.Random) -> None:
        live = [c for c in self.slots if c is not None and c.is_ready]
        if not live:
            return
        conn = rng.choice(live)
        conn.closing = True
        self.slots[conn.index] = None
        with contextlib.suppress(Exception):
            conn.transport.send_close()
        conn.transport.disconnect()
        self.churned += 1
        self._spawn(self._reopen(conn.index, 0.0))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close_all(self) -> None:
        self.stopping = True
        for task in list(self._tasks):
            task.cancel()
        for conn in self.slots:
            if conn is not None and conn.transport is not None:
                conn.closing = True
                with contextlib.suppress(Exception):
                    conn.transport.send_close()
                conn.transport.disconnect()

    def totals(self) -> dict[str, int]:
        trackers = self.finished + [c.tracker for c in self.slots if c is not None and not c.closing]
        return {"received": self.received, "lost_while_connected": sum(t.lost for t in trackers),
                "duplicated_while_connected": sum(t.duplicated for t in trackers),
                "dropped_by_server": self.dropped, "churned": self.churned, "reopened": self.reopened,
                "handshake_failures": self.failures, "undecodable": self.undecodable}


# --- the process -------------------------------------------------------------------------


class LoadProcess:
    def __init__(self, cfg: LoadProcConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        port = int(cfg.base_url.rsplit(":", 1)[1].split("/")[0])
        self.proxy = CuttingProxy(port)
        self.sdk = [SdkClient(resource_of(cfg, i)) for i in range(cfg.sdk)]
        ws_url = cfg.base_url.replace("http://", "ws://", 1).rstrip("/") + "/ws"
        self.light = LightPool(cfg, ws_url, {"Authorization": f"Bearer {cfg.token}"})
        self.storms: list[int] = []
        self.started = time.monotonic()

    async def connect_all(self) -> None:
        await self.proxy.start()
        url = f"ws://127.0.0.1:{self.proxy.port}/ws"
        sem = asyncio.Semaphore(self.cfg.connect_concurrency)

        async def sdk_one(c: SdkClient) -> None:
            async with sem:
                await open_sdk(c, url, self.cfg.token, self.cfg.run_id)

        await asyncio.gather(*(sdk_one(c) for c in self.sdk))
        await asyncio.gather(*(self.light.open(i) for i in range(self.cfg.light)))

    async def churn(self) -> None:
        if self.cfg.churn_per_s <= 0:
            return
        interval = 1.0 / self.cfg.churn_per_s
        while True:
            await asyncio.sleep(interval)
            self.light.churn_one(self.rng)

    def status(self) -> dict[str, Any]:
        sdk_received = sum(c.tracker.received for c in self.sdk)
        pid = os.getpid()
        return {
            "t": round(time.monotonic() - self.started, 1),
            "sdk_open": sum(1 for c in self.sdk if c.ws is not None and c.ws.state is ConnectionState.OPEN),
            "light_open": self.light.open_count(),
            "received": sdk_received + self.light.received, "sdk_received": sdk_received,
            "light": self.light.totals(), "proxy_open": self.proxy.open_connections, "storms": self.storms,
            "rss_bytes": rss_bytes(pid, with_children=False), "cpu_s": cpu_seconds(pid, with_children=False),
        }

    def result(self) -> dict[str, Any]:
        return {**self.status(), "sdk_clients": [c.to_json() for c in self.sdk]}

    async def close(self) -> None:
        self.light.close_all()
        await asyncio.gather(*(c.ws.close() for c in self.sdk if c.ws is not None), return_exceptions=True)
        await self.proxy.close()


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj) + b"\n")
    sys.stdout.buffer.flush()


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run(cfg: LoadProcConfig) -> None:
    proc = LoadProcess(cfg)
    churn: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(cfg.deadline_s):
            reader = await _commands()
            try:
                await proc.connect_all()
            except Exception as exc:  # told to the parent, which stops the run
                _say({"ready": False, "error": repr(exc)})
                return
            _say({"ready": True, **proc.status()})
            churn = asyncio.get_running_loop().create_task(proc.churn())
            while True:
                line = await reader.readline()
                if not line:
                    return  # the parent went away
                cmd = orjson.loads(line)
                if cmd.get("cmd") == "status":
                    _say(proc.status())
                elif cmd.get("cmd") == "storm":
                    cut = proc.proxy.abort(int(cmd.get("k", 0)), proc.rng)
                    proc.storms.append(cut)
                    _say({"cut": cut})
                elif cmd.get("cmd") == "stop":
                    churn.cancel()
                    _say(proc.result())
                    return
    finally:
        if churn is not None:
            churn.cancel()
        await proc.close()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    with open(args[0], "rb") as fh:
        cfg = LoadProcConfig(**orjson.loads(fh.read()))
    if not HAVE_PICOWS:
        print("soak load: picows is not installed (pip install '.[bench]')", file=sys.stderr)
        return 2
    raise_nofile_limit()
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        runner = uvloop.run
    runner(run(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

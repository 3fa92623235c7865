"""The load generator: N WebSocket connections in one process, publishing through the HTTP API.

It opens N connections to one target (gateway, bare aiohttp or python-socketio),
authenticates and subscribes where the target has such things, then runs
phases: a burst (publish as fast as a bounded window of undelivered events
allows, `batch` events per POST) or a fixed rate (deliveries/s). Every
connection must receive every event exactly once and in order: each frame is
compared with the bytes the server is expected to send for the next event of
that connection, and anything else is parsed and classified (duplicate,
missing, corrupt, foreign). Latency is publish-to-receive, from the
`time.monotonic_ns()` the publisher put in the event (same machine, same clock).

Server CPU and memory come from /proc/<pid>; the load generator's own CPU from
`time.process_time()`. Runs in-process (tests) or as its own process
(`python -m autosdlc_ws.bench.loadgen CONFIG.json RESULT.json`, pinned to a core).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import re
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from autosdlc_ws.bench.errors import BenchError
from autosdlc_ws.bench.load_connections import HAVE_PICOWS, AiohttpConn, open_picows, open_stalled_reader
from autosdlc_ws.bench.load_publisher import Publisher
from autosdlc_ws.bench.procstat import cpu_seconds, rss_bytes, system_busy_seconds
from autosdlc_ws.bench.protocol import EventFactory, Protocol, make_protocol, new_run_id

monotonic_ns = time.monotonic_ns
_INF = float("inf")
WINDOW_DELIVERIES = 300_000



@dataclass
class Phase:
    label: str
    batch: int = 1  # events per POST: the events the server handles in one loop iteration
    rate: float = 0.0  # deliveries/s to hold; 0 = burst (as fast as the window allows)
    duration: float = 3.0  # seconds of publishing
    max_events: int = 1_000_000
    min_events: int = 3
    window: int = 0  # events published but not yet delivered everywhere; 0 = automatic (below)

    def window_events(self, n: int) -> int:
        """Up to 3 batches (at least 8 events) ahead, but no more than ~300,000 undelivered
        deliveries once a batch is out: the drain after the last publish stays short at large N."""
        if self.window:
            return self.window
        return max(self.batch, min(max(8, 3 * self.batch), WINDOW_DELIVERIES // max(1, n)))


@dataclass
class LoadConfig:
    target: str
    base_url: str
    n: int
    token: str | None = None
    event_size: int = 300
    compression: bool = False
    batch: bool = False  # gateway: ?batch=1, events may arrive several to a frame
    phases: list[Phase] = field(default_factory=list)
    server_pid: int | None = None
    client: str = "auto"  # picows | aiohttp | auto
    connect_concurrency: int = 64
    stalled: int = 0  # extra raw connections that subscribe and then never read
    stalled_rcvbuf: int = 4096
    warmup_events: int = 20
    drain_timeout: float = 30.0
    inflight: int = 2  # publish requests pipelined (sent before the previous one is answered)
    connect_timeout: float = 180.0
    progress: bool = True
    label: str = ""
    rss_interval: float = 0.5
    settle_s: float = 0.5
    subscribe: dict[str, Any] | None = None
    local_addr: str | None = None  # source address of the WebSocket connections (e.g. 127.0.0.2)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LoadConfig:
        obj = dict(obj)
        obj["phases"] = [Phase(**p) for p in obj.get("phases", [])]
        return cls(**obj)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- the load generator ----------------------------------------------------------------


class LoadGen:
    def __init__(self, cfg: LoadConfig) -> None:
        self.cfg = cfg
        self.n = cfg.n
        self.run_id = new_run_id()
        self.factory = EventFactory(self.run_id, cfg.event_size)
        self.proto: Protocol = make_protocol(cfg.target, compression=cfg.compression,
                                             subscribe=cfg.subscribe, batch=cfg.batch)
        self.client = cfg.client
        if self.client == "auto":
            self.client = "picows" if HAVE_PICOWS else "aiohttp"
        if self.client == "picows" and not HAVE_PICOWS:
            raise BenchError("client picows requested but picows is not installed (pip install '.[bench]')")
        # what was published, by sequence number
        self.frames: list[bytes] = []
        self.sent_ns: list[int] = []
        self.datas: list[dict[str, Any]] = []
        self.published = 0
        # what was received: deliveries accounted for (received, or found missing), all connections
        self.count = 0
        self.wake_at: float = _INF
        self._waiter: asyncio.Future[None] | None = None
        self.last_ns = 0
        self.lat: list[int] = []
        self.lat_append: Callable[[int], None] = self.lat.append
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.conns: list[Any] = []
        self.stalled: list[socket.socket] = []
        self.ready_count = 0
        self.stopping = False
        self.rss_samples: list[tuple[float, int]] = []
        self._status = ""
        self._progress: tuple[float, float] = (0.0, 1.0)
        self.loop = asyncio.get_running_loop()
        self._http: aiohttp.ClientSession | None = None
        self._publisher: Publisher | None = None
        self._ws_session: aiohttp.ClientSession | None = None
        self._t_origin = monotonic_ns()

    # --- accounting -------------------------------------------------------------------

    def error(self, conn: Any, kind: str, seq: int, *, count: int = 1, detail: str = "") -> None:
        self.errors[kind] += count
        if len(self.error_samples) < 20:
            self.error_samples.append(f"conn {conn.index}: {kind} x{count} at seq {seq} {detail}".rstrip())

    def wake(self) -> None:
        self.wake_at = _INF
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_count(self, target: int, timeout: float) -> bool:
        """Until `target` deliveries are accounted for; False on timeout."""
        if self.count >= target:
            return True
        self._waiter = self.loop.create_future()
        self.wake_at = target
        try:
            await asyncio.wait_for(self._waiter, timeout)
        except TimeoutError:
            return False
        finally:
            self.wake_at = _INF
            self._waiter = None
        return True

    # --- publishing -------------------------------------------------------------------

    def _prepare(self, batch: int) -> list[dict[str, Any]]:
        t = monotonic_ns()
        events = []
        for _ in range(batch):
            seq = len(self.frames)
            event = self.factory.make(seq, t)
            self.frames.append(self.proto.expected(event, orjson.dumps(event)))
            self.sent_ns.append(t)
            self.datas.append(event["data"])
            events.append(event)
        self.published = len(self.frames)
        return events

    async def publish(self, batch: int) -> None:
        """Publish `batch` events in one POST (an array, or one object when batch is 1)."""
        assert self._publisher is not None
        await self._publisher.acquire()
        events = self._prepare(batch)
        self._publisher.post(orjson.dumps(events if batch > 1 else events[0]))

    # --- connecting -------------------------------------------------------------------

    def open_ws_session(self) -> None:
        """The aiohttp session the aiohttp client's connections share (bound to `local_addr`)."""
        local = (self.cfg.local_addr, 0) if self.cfg.local_addr else None
        connector = aiohttp.TCPConnector(limit=0, force_close=False, local_addr=local)
        self._ws_session = aiohttp.ClientSession(connector=connector)

    async def close_ws_session(self) -> None:
        if self._ws_session is not None:
            await self._ws_session.close()

    async def _open_picows(self, index: int, url: str, headers: dict[str, str]) -> Any:
        return await open_picows(self, index, url, headers, local_addr=self.cfg.local_addr)

    async def _open_aiohttp(self, index: int, url: str, headers: dict[str, str]) -> Any:
        assert self._ws_session is not None
        conn = AiohttpConn(self, index)
        conn.ws = await self._ws_session.ws_connect(url, headers=headers, autoping=True, max_msg_size=0,
                                                    timeout=aiohttp.ClientWSTimeout(ws_receive=None))
        self.proto.on_open(conn)
        conn.task = self.loop.create_task(conn.reader())
        return conn

    async def connect_all(self, start: int = 0, stop: int | None = None) -> float:
        """Open connections `start`..`stop` (default all) and wait until each is ready."""
        stop = self.n if stop is None else stop
        url = self.proto.ws_url(self.cfg.base_url)
        headers = self.proto.headers(self.cfg.token)
        opener = self._open_picows if self.client == "picows" else self._open_aiohttp
        sem = asyncio.Semaphore(self.cfg.connect_concurrency)
        t0 = time.monotonic()
        self._status = "connecting"

        async def one(index: int) -> None:
            async with sem:
                last: Exception | None = None
                for attempt in range(3):
                    try:
                        conn = await opener(index, url, headers)
                        break
                    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
                        last = exc
                        await asyncio.sleep(0.2 * (attempt + 1))
                else:
                    raise BenchError(f"connection {index} failed: {last!r}")
                self.conns.append(conn)
                await asyncio.wait_for(asyncio.shield(conn.ready_fut), 60)
                self._progress = (self.ready_count, self.n)

        results = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(start, stop)), return_exceptions=True),
            self.cfg.connect_timeout)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise BenchError(f"{len(failures)} of {stop - start} connections failed; first: {failures[0]!r}")
        if stop < self.n:
            return time.monotonic() - t0
        for i in range(self.cfg.stalled):
            opener_ = functools.partial(open_stalled_reader, url, headers, self.cfg.target,
                                        rcvbuf=self.cfg.stalled_rcvbuf, index=i)
            self.stalled.append(await self.loop.run_in_executor(None, opener_))
        return time.monotonic() - t0

    # --- measuring --------------------------------------------------------------------

    def _server_cpu(self) -> float:
        return cpu_seconds(self.cfg.server_pid) if self.cfg.server_pid else 0.0

    def _server_rss(self) -> int:
        return rss_bytes(self.cfg.server_pid) if self.cfg.server_pid else 0

    async def _sample_rss(self) -> None:
        while True:
            self.rss_samples.append(((monotonic_ns() - self._t_origin) / 1e9, self._server_rss()))
            await asyncio.sleep(self.cfg.rss_interval)

    async def _show_progress(self) -> None:
        tty = sys.stderr.isatty()
        last_line = 0.0
        width = 24
        while True:
            done, total = self._progress
            frac = min(1.0, done / total) if total else 0.0
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            line = (f"  {self.cfg.label or self.cfg.target} N={self.n}: {self._status:<22} "
                    f"[{bar}] {frac * 100:5.1f}%")
            now = time.monotonic()
            if tty:
                sys.stderr.write("\r" + line[:160])
                sys.stderr.flush()
            elif now - last_line >= 5:
                sys.stderr.write(line + "\n")
                last_line = now
            await asyncio.sleep(0.2)

    async def _slow_consumer_closes(self) -> int | None:
        if self.cfg.target != "gateway" or self._http is None:
            return None
        try:
            async with self._http.get(self.cfg.base_url.rstrip("/") + "/metrics") as resp:
                text = await resp.text()
        except aiohttp.ClientError:
            return None
        m = re.search(r"^autosdlc_ws_slow_consumer_disconnects_total (\S+)", text, re.M)
        return int(float(m.group(1))) if m else None

    async def run_phase(self, ph: Phase) -> dict[str, Any]:
        n = self.n
        start_pub = self.published
        if self.count < start_pub * n:
            await self.wait_count(start_pub * n, self.cfg.drain_timeout)
        window = ph.window_events(n)
        interval_ns = ph.batch * n / ph.rate * 1e9 if ph.rate > 0 else 0.0
        self.lat = []
        self.lat_append = self.lat.append
        rss_from = len(self.rss_samples)
        self._status = ph.label
        self._progress = (0.0, ph.duration)
        busy0 = system_busy_seconds()
        cpu0, lcpu0, t0 = self._server_cpu(), time.process_time(), monotonic_ns()
        deadline = t0 + int(ph.duration * 1e9)
        k = 0
        window_waits = 0
        while True:
            now = monotonic_ns()
            sent = self.published - start_pub
            self._progress = ((now - t0) / 1e9, ph.duration)
            if sent + ph.batch > ph.max_events or (now >= deadline and sent >= ph.min_events):
                break
            if interval_ns:
                due = t0 + int(k * interval_ns)
                if due > now:
                    await asyncio.sleep((due - now) / 1e9)
            need = (self.published + ph.batch - window) * n
            if need > self.count:
                window_waits += 1
                if not await self.wait_count(need, self.cfg.drain_timeout):
                    break  # stalled: report what arrived, as incomplete
            await self.publish(ph.batch)
            k += 1
        publish_end = monotonic_ns()
        self._status = ph.label + " (draining)"
        assert self._publisher is not None
        try:
            await self._publisher.wait_all(self.cfg.drain_timeout)
        except TimeoutError:
            pass  # the server is still working through the requests: counted as incomplete below
        target = self.published * n
        complete = await self.wait_count(target, self.cfg.drain_timeout)
        t1 = self.last_ns if complete else monotonic_ns()
        cpu1, lcpu1 = self._server_cpu(), time.process_time()
        other_cpu = max(0.0, system_busy_seconds() - busy0 - (cpu1 - cpu0) - (lcpu1 - lcpu0))
        events = self.published - start_pub
        deliveries = events * n
        wall = max(1e-9, (t1 - t0) / 1e9)
        server_cpu = cpu1 - cpu0
        lat = sorted(self.lat)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1e6

        result: dict[str, Any] = {
            "label": ph.label, "batch": ph.batch, "rate_requested": ph.rate or None,
            "events": events, "deliveries": deliveries, "wall_s": round(wall, 4),
            "deliveries_per_s": deliveries / wall,
            "achieved_rate": deliveries / max(1e-9, (publish_end - t0) / 1e9) if ph.rate else None,
            "window_events": window, "window_waits": window_waits,
            "server_cpu_s": round(server_cpu, 3),
            "server_cpu_pct": 100 * server_cpu / wall,
            "deliveries_per_server_cpu_s": deliveries / server_cpu if server_cpu > 0 else None,
            "loadgen_cpu_s": round(lcpu1 - lcpu0, 3),
            "loadgen_cpu_pct": 100 * (lcpu1 - lcpu0) / wall,
            "other_cpu_pct": 100 * other_cpu / wall,
            "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99),
                           "max": lat[-1] / 1e6 if lat else None, "samples": len(lat)},
            "complete": complete,
            "rss_samples": [(round(t, 2), b) for t, b in self.rss_samples[rss_from:]],
            "slow_consumer_disconnects": await self._slow_consumer_closes(),
        }
        self.lat = []
        self.lat_append = self.lat.append
        return result

    # --- the whole run -----------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        cfg = self.cfg
        tasks: list[asyncio.Task[None]] = []
        if cfg.progress:
            tasks.append(self.loop.create_task(self._show_progress()))
        self.open_ws_session()
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
        self._publisher = Publisher(cfg.base_url, cfg.token, cfg.inflight)
        result: dict[str, Any] = {
            "target": cfg.target, "label": cfg.label, "n": self.n, "event_size": cfg.event_size,
            "frame_bytes": len(self.proto.expected(self.factory.make(10_000, 10**18),
                                                   orjson.dumps(self.factory.make(10_000, 10**18)))),
            "compression": cfg.compression, "batch": cfg.batch, "client": self.client, "stalled": cfg.stalled,
            "event_loop": type(self.loop).__module__.split(".")[0],
        }
        try:
            await self._publisher.start()
            # Memory per connection: server RSS before any connection and after all N, over N.
            # Also the slope from the first 1% (which pay the server's one-time warm-up:
            # imports, caches) to all, the marginal cost of one more connection.
            rss_start = self._server_rss()
            first = min(self.n, max(10, self.n // 100)) if self.n > 20 else 0
            connect_s = await self.connect_all(0, first) if first else 0.0
            await asyncio.sleep(cfg.settle_s if first else 0.0)
            rss0 = self._server_rss()
            connect_s += await self.connect_all(first, self.n)
            result["connect_s"] = round(connect_s, 3)
            await asyncio.sleep(cfg.settle_s)
            rss1 = self._server_rss()
            counted = self.n - first + cfg.stalled
            known = bool(cfg.server_pid)
            result.update(
                rss_before=rss_start, rss_after=rss1,
                rss_per_conn=(rss1 - rss_start) / (self.n + cfg.stalled) if known else None,
                rss_per_conn_marginal=(rss1 - rss0) / counted if known and counted else None)
            tasks.append(self.loop.create_task(self._sample_rss()))
            if cfg.warmup_events:
                await self.run_phase(Phase("warm-up", batch=1, duration=0.0,
                                           max_events=cfg.warmup_events, min_events=cfg.warmup_events))
            result["phases"] = [await self.run_phase(ph) for ph in cfg.phases]
        finally:
            self.stopping = True
            for task in tasks:
                task.cancel()
            if cfg.progress and sys.stderr.isatty():
                sys.stderr.write("\r" + " " * 120 + "\r")
                sys.stderr.flush()
            self._finish(result)
            for conn in self.conns:
                conn.shutdown()
            for sock in self.stalled:
                sock.close()
            await asyncio.sleep(0.2)
            await self._publisher.close()
            await self._http.close()
            await self.close_ws_session()
        return result

    def _finish(self, result: dict[str, Any]) -> None:
        for conn in self.conns:
            tail = self.published - conn.expected
            if tail > 0:
                self.error(conn, "missing", conn.expected, count=tail, detail="(never arrived)")
        result["published_events"] = self.published
        result["errors"] = dict(self.errors)
        result["error_samples"] = self.error_samples
        result["ok"] = not self.errors and len(self.conns) == self.n


async def run_loadgen(cfg: LoadConfig) -> dict[str, Any]:
    return await LoadGen(cfg).run()


def raise_nofile_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv: list[str] | None = None) -> int:
    """`python -m autosdlc_ws.bench.loadgen CONFIG.json RESULT.json [--cpu K] [--no-uvloop]`"""
    args = list(sys.argv[1:] if argv is None else argv)
    use_uvloop = "--no-uvloop" not in args
    cpu = None
    if "--cpu" in args:
        cpu = int(args[args.index("--cpu") + 1])
    paths = [a for a in args if not a.startswith("--") and not a.isdigit()]
    cfg = LoadConfig.from_json(orjson.loads(open(paths[0], "rb").read()))
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    raise_nofile_limit()
    runner: Any = asyncio.run
    if use_uvloop:
        try:
            import uvloop  # type: ignore[import-not-found,unused-ignore]

            runner = uvloop.run
        except ImportError:
            pass
    try:
        result = runner(run_loadgen(cfg))
    except BenchError as exc:
        result = {"target": cfg.target, "n": cfg.n, "fatal": str(exc), "ok": False}
    with open(paths[1], "wb") as fh:
        fh.write(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())

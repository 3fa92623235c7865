"""`make soak`: a steady mixed load against a real gateway for 30 minutes, with faults, and a verdict.

    python -m autosdlc_ws.bench.soak [--duration 1800] [-n 5000] [--rate 200] [--quick]

What runs (all on 127.0.0.1, all started and stopped by this process):
- a private `redis-server` (free port, append-only file, `appendfsync
  always`: a restart keeps history and sessions, so resumes must lose
  nothing; `bench.soak_faults`);
- `autosdlc-ws serve --workers 2 --broker redis://...` started as the
  benchmarks start it (`bench.targets.start_server`: limits raised, log level
  WARNING, its stdout and stderr in one log file), not pinned to a core;
- `--load-procs` load processes (`bench.soak_load`) holding the connections:
  `--sdk-clients` of them are SDK clients (`autosdlc_ws.client`) whose every
  delivery is checked, the rest light picows clients of which `--churn` per
  second are closed and replaced. Every connection follows the `agent_log`
  events of one of `--resources` agents;
- a publisher (the SDK's HTTP `Publisher`, retries included) posting
  `--rate` events/s round-robin over the agents, each event numbered per agent.

Faults (`bench.soak_plan.timeline`): a resume storm every `--storm-every` s
(`--storm-size` SDK clients lose their sockets at once, cut by a forwarder,
and resume), Redis stopped and started again at 50 % of the run, one worker
SIGKILLed at 70 % (the supervisor starts a new one; its clients reconnect and
resume on either worker).

Every `--sample-every` s: the gateway tree's RSS and open files
(`/proc`), Redis's RSS, `/healthz` latency as the event-loop lag proxy
(`bench.soak_sampler`), deliveries/s from the gateway's counter and from the
clients, connections open.

Verdict (`bench.soak_verdict`): RSS after warm-up grows less than 5 %; the
SDK clients lost and duplicated nothing (their tail at the end included);
no ERROR/CRITICAL line or traceback in the gateway's log. Writes
`benchmarks/results/soak-<time>.json` (and `soak-latest.json`), a PNG plot,
and exits 0 on pass, 1 on fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autosdlc_ws.bench import report
from autosdlc_ws.bench.loadgen import raise_nofile_limit
from autosdlc_ws.bench.procstat import rss_bytes
from autosdlc_ws.bench.protocol import new_run_id
from autosdlc_ws.bench.soak_faults import PERSISTENCE, RedisProcess, kill_worker, wait_workers
from autosdlc_ws.bench.soak_load import LoadProcConfig
from autosdlc_ws.bench.soak_plan import SoakPlan, default_warmup, quick_plan, split, timeline
from autosdlc_ws.bench.soak_plot import plot_soak
from autosdlc_ws.bench.soak_publisher import SeqPublisher
from autosdlc_ws.bench.soak_sampler import LagProbe, process_figures, scrape_metrics
from autosdlc_ws.bench.soak_verdict import (
    classify_log,
    delivery_totals,
    memory_growth,
    named_rss,
    survivors_rss,
    verdict,
)
from autosdlc_ws.bench.targets import Server, parse_server_env, start_server
from autosdlc_ws.client import Publisher
from autosdlc_ws.server.workers import WORKER_NAME_PREFIX

DEFAULT_OUT = Path("benchmarks/results")
DEFAULT_PLOT = Path("docs/benchmarks-soak.png")


def log(msg: str) -> None:
    print(f"soak: {msg}", file=sys.stderr, flush=True)


# --- the load processes --------------------------------------------------------------------


class LoadHandle:
    """One `bench.soak_load` process and its command pipe (one request, one answer, in turn)."""

    def __init__(self, proc: asyncio.subprocess.Process, index: int) -> None:
        self.proc = proc
        self.index = index
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, cfg: LoadProcConfig, index: int, workdir: Path, log_dir: Path) -> LoadHandle:
        cfg_path = workdir / f"load-{index}.json"
        cfg_path.write_text(json.dumps(cfg.to_json()))
        port = cfg.base_url.rsplit(":", 1)[1]
        err = open(log_dir / f"soak-load-{port}-{index}.log", "wb")  # the child keeps its copy; ours closes below
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "autosdlc_ws.bench.soak_load", str(cfg_path),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                limit=64 * 1024 * 1024)
        finally:
            err.close()
        return cls(proc, index)

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"load process {self.index} exited ({self.proc.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def ask(self, cmd: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        async with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
            await self.proc.stdin.drain()
            return await self.read(timeout)

    async def finish(self, timeout: float = 30.0) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# --- the run -------------------------------------------------------------------------------


class Soak:
    def __init__(self, plan: SoakPlan, out_dir: Path) -> None:
        self.plan = plan
        self.out_dir = out_dir
        self.log_dir = out_dir / "logs"
        self.run_id = new_run_id()
        self.resources = [f"soak-{i:03d}" for i in range(plan.resources)]
        self.samples: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.loads: list[LoadHandle] = []
        self.server: Server | None = None
        self.redis: RedisProcess | None = None
        self.t0 = 0.0
        self._last_counter: tuple[float, float] | None = None
        self._last_received: tuple[float, int] | None = None

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        self.log_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="autosdlc-soak-"))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            self.redis = RedisProcess(workdir / "redis", self.log_dir / f"soak-redis-{stamp}.log",
                                      plan.redis_persistence)
            self.redis.start()
            log(f"redis-server on port {self.redis.port} (persistence: {plan.redis_persistence})")
            self.server = start_server("gateway", log_dir=self.log_dir, workers=plan.workers,
                                       broker=self.redis.url, extra_env=plan.server_env, cpu=None,
                                       ready_timeout=60)
            if not wait_workers(self.server.pid, plan.workers, 30):
                raise RuntimeError(f"the gateway did not start {plan.workers} workers")
            log(f"gateway pid {self.server.pid} on port {self.server.port}, {plan.workers} workers; "
                f"log {self.server.log_path}")
            await self._start_loads(workdir)
            return await self._steady()
        finally:
            for handle in self.loads:
                await handle.finish()
            if self.server is not None:
                self.server.stop(timeout=30)
            if self.redis is not None:
                self.redis.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    async def _start_loads(self, workdir: Path) -> None:
        plan = self.plan
        assert self.server is not None and self.server.token is not None
        sdk = split(min(plan.sdk_clients, plan.connections), plan.load_procs)
        light = split(plan.connections - sum(sdk), plan.load_procs)
        offset = 0
        for i in range(plan.load_procs):
            cfg = LoadProcConfig(base_url=self.server.base_url, token=self.server.token, run_id=self.run_id,
                                 resources=self.resources, sdk=sdk[i], light=light[i], offset=offset,
                                 churn_per_s=plan.churn / plan.load_procs,
                                 deadline_s=plan.duration + 600 + plan.connections / 10, seed=i)
            offset += sdk[i] + light[i]
            self.loads.append(await LoadHandle.start(cfg, i, workdir, self.log_dir))
        t0 = time.monotonic()
        for handle in self.loads:
            ready = await handle.read(timeout=120 + plan.connections / 20)
            if not ready.get("ready"):
                raise RuntimeError(f"load process {handle.index} could not connect: {ready.get('error')}")
        log(f"{plan.connections:,} connections subscribed in {time.monotonic() - t0:.1f} s "
            f"({sum(sdk)} SDK clients); publishing {plan.rate:.0f} events/s for {plan.duration:.0f} s")

    async def _steady(self) -> dict[str, Any]:
        plan = self.plan
        assert self.server is not None
        probe = LagProbe(self.server.port)
        self.t0 = time.monotonic()
        probe.start()
        async with Publisher(self.server.base_url, token=self.server.token, max_attempts=60,
                             backoff_cap=2.0, timeout=10.0) as pub:
            seq_pub = SeqPublisher(pub, self.run_id, self.resources, plan.rate)
            publishing = asyncio.create_task(seq_pub.run(plan.duration))
            sampling = asyncio.create_task(self._sample_loop(probe))
            faulting = asyncio.create_task(self._fault_loop())
            try:  # bounded even if the gateway stops answering and the retries pile up
                await asyncio.wait_for(publishing, plan.duration + 120)
            except TimeoutError:
                log("the publisher did not finish within 120 s of the end; stopped")
            finally:
                faulting.cancel()
            log(f"published {seq_pub.published:,} events ({seq_pub.failed} failed); draining {plan.drain:.0f} s")
            await asyncio.sleep(plan.drain)
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            await self._sample(probe)
        await probe.stop()
        results = [await handle.ask({"cmd": "stop"}, timeout=60) for handle in self.loads]
        return self._result(seq_pub, results)

    async def _sample_loop(self, probe: LagProbe) -> None:
        while True:
            await self._sample(probe)
            await asyncio.sleep(self.plan.sample_every)

    async def _sample(self, probe: LagProbe) -> None:
        assert self.server is not None and self.redis is not None
        t = time.monotonic() - self.t0
        figures = await asyncio.to_thread(process_figures, self.server.pid)
        metrics = await asyncio.to_thread(scrape_metrics, self.server.port)
        statuses = await asyncio.gather(*(h.ask({"cmd": "status"}) for h in self.loads))
        received = sum(s["received"] for s in statuses)
        sample: dict[str, Any] = {
            "t": round(t, 1), **figures, **probe.take(),
            "redis_rss_bytes": rss_bytes(self.redis.pid, with_children=False) if self.redis.pid else None,
            "connections": sum(s["sdk_open"] + s["light_open"] for s in statuses),
            "sdk_open": sum(s["sdk_open"] for s in statuses),
            "client_received": received,
            "load_rss_bytes": sum(s["rss_bytes"] for s in statuses),
            "load_cpu_s": round(sum(s["cpu_s"] for s in statuses), 2),
            "metrics": metrics,
        }
        delivered = (metrics or {}).get("autosdlc_ws_events_delivered_total")
        sample["server_delivered_per_s"] = None
        if delivered is not None:
            if self._last_counter is not None and delivered >= self._last_counter[1] and t > self._last_counter[0]:
                sample["server_delivered_per_s"] = round((delivered - self._last_counter[1])
                                                         / (t - self._last_counter[0]), 1)
            self._last_counter = (t, delivered)
        sample["client_received_per_s"] = None
        if self._last_received is not None and t > self._last_received[0]:
            sample["client_received_per_s"] = round((received - self._last_received[1])
                                                    / (t - self._last_received[0]), 1)
        self._last_received = (t, received)
        self.samples.append(sample)
        lag = sample["healthz_ms_max"]
        log(f"t={t:6.0f}s rss={sample['rss_bytes'] / 2**20:7.1f} MiB fds={sample['fds']:6d} "
            f"conns={sample['connections']:6d} healthz max={'-' if lag is None else f'{lag:.1f}'} ms "
            f"deliveries/s={sample['client_received_per_s']}")

    async def _fault_loop(self) -> None:
        for at, kind in timeline(self.plan):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - self.t0)))
            started = self.now()
            try:
                detail = await self._fault(kind)
            except Exception as exc:  # recorded and shown; the run goes on
                detail = {"error": repr(exc)}
            self.faults.append({"t": started, "kind": kind, "took_s": round(self.now() - started, 1), **detail})
            log(f"t={started:6.0f}s {kind}: {detail}")

    async def _fault(self, kind: str) -> dict[str, Any]:
        assert self.server is not None and self.redis is not None
        if kind == "storm":
            shares = split(self.plan.storm_size, len(self.loads))
            answers = await asyncio.gather(*(h.ask({"cmd": "storm", "k": k}) for h, k in zip(self.loads, shares,
                                                                                              strict=True)))
            return {"cut": sum(a["cut"] for a in answers)}
        if kind == "redis_restart":
            await asyncio.to_thread(self.redis.restart, self.plan.redis_down)
            return {"down_s": self.plan.redis_down}
        if kind == "worker_kill":
            pid = kill_worker(self.server.pid)
            back = await asyncio.to_thread(wait_workers, self.server.pid, self.plan.workers, 30)
            return {"pid": pid, "replaced": back}
        raise ValueError(kind)

    def _result(self, seq_pub: SeqPublisher, loads: list[dict[str, Any]]) -> dict[str, Any]:
        plan = self.plan
        assert self.server is not None
        clients = [c for r in loads for c in r["sdk_clients"]]
        final = seq_pub.final_seqs()
        deliveries = delivery_totals(clients, final)
        deliveries["resets"] = sum(c["resets"] for c in clients)
        deliveries["foreign"] = sum(c["foreign"] for c in clients)
        deliveries["sdk_duplicates_dropped"] = sum(c["stats"].get("duplicates_dropped", 0) for c in clients)
        deliveries["sdk_reconnects"] = sum(c["stats"].get("reconnects", 0) for c in clients)
        deliveries["sdk_resumed"] = sum(c["stats"].get("resumed", 0) for c in clients)
        worst = sorted(clients, key=lambda c: -(c["tracker"]["lost"] + c["tracker"]["duplicated"]))[:10]
        light: dict[str, int] = {}
        for r in loads:
            for key, value in r["light"].items():
                light[key] = light.get(key, 0) + value
        steady = [s for s in self.samples if s["t"] <= plan.duration + 1]  # not the drain after it
        memory = memory_growth([(s["t"], s["rss_bytes"]) for s in steady], plan.warmup)
        memory["survivors"] = memory_growth(survivors_rss(steady, plan.warmup), plan.warmup)
        memory["workers"] = memory_growth(named_rss(steady, WORKER_NAME_PREFIX), plan.warmup)
        memory["pss"] = memory_growth([(s["t"], s.get("pss_bytes", 0)) for s in steady], plan.warmup)
        log_lines = self.server.log_path.read_text(errors="replace").splitlines()
        log_summary = classify_log(log_lines)
        log_summary["file"] = str(self.server.log_path)
        result: dict[str, Any] = {
            "plan": plan.to_json(), "run_id": self.run_id, "faults": self.faults, "samples": self.samples,
            "published": {"events": seq_pub.published, "failed": seq_pub.failed, "failures": seq_pub.failures,
                          "per_resource_final_seq": final},
            "deliveries": deliveries, "worst_clients": worst, "light_clients": light,
            "memory": memory, "log": log_summary,
            "load_processes": [{k: v for k, v in r.items() if k != "sdk_clients"} for r in loads],
        }
        result["verdict"] = verdict(memory, deliveries, log_summary)
        return result


# --- command line --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m autosdlc_ws.bench.soak", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a 2-minute smoke run: 500 connections, a storm every 30 s (options below override it)")
    p.add_argument("--duration", type=float, help="seconds of steady load (default 1800)")
    p.add_argument("-n", "--connections", type=int, help="connections held (default 5000)")
    p.add_argument("--rate", type=float, help="events/s published (default 200)")
    p.add_argument("--resources", type=int, help="agents the events are spread over; each connection follows "
                                                 "one (default 100)")
    p.add_argument("--sdk-clients", type=int, help="connections that are SDK clients, judged (default N/10)")
    p.add_argument("--churn", type=float, help="light connections closed and replaced per second (default 10)")
    p.add_argument("--storm-every", type=float, help="seconds between resume storms (default 300; 0: none)")
    p.add_argument("--storm-size", type=int, help="SDK clients cut per storm (default: all of them)")
    p.add_argument("--workers", type=int, help="serve --workers (default 2)")
    p.add_argument("--load-procs", type=int, help="load generator processes (default 2)")
    p.add_argument("--sample-every", type=float, help="seconds between samples (default 10)")
    p.add_argument("--warmup", type=float, help="seconds before the memory check starts (default duration/6, "
                                                "20..300)")
    p.add_argument("--redis-persistence", choices=PERSISTENCE, default="always",
                   help="Redis append-only fsync policy, or none: a restart then loses history and "
                        "sessions, and the clients' resets show as loss (default always)")
    p.add_argument("--no-redis-restart", action="store_true")
    p.add_argument("--no-worker-kill", action="store_true")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the gateway, e.g. AUTOSDLC_WS_HISTORY_CACHE_EVENTS=0")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    p.add_argument("--plot", type=Path, default=None,
                   help=f"PNG path (default {DEFAULT_PLOT}; with --quick next to the JSON)")
    return p.parse_args(argv)


def plan_from(args: argparse.Namespace) -> SoakPlan:
    plan = quick_plan() if args.quick else SoakPlan()
    for name in ("duration", "connections", "rate", "resources", "churn", "storm_every", "workers",
                 "load_procs", "sample_every"):
        value = getattr(args, name)
        if value is not None:
            setattr(plan, name, value)
    if not args.quick or args.duration is not None:
        plan.warmup = default_warmup(plan.duration)
    if args.warmup is not None:
        plan.warmup = args.warmup
    if args.sdk_clients is not None:
        plan.sdk_clients = args.sdk_clients
    elif not args.quick or args.connections is not None:
        plan.sdk_clients = max(1, plan.connections // 10)
    plan.sdk_clients = min(plan.sdk_clients, plan.connections)
    plan.storm_size = args.storm_size if args.storm_size is not None else plan.sdk_clients
    plan.redis_persistence = args.redis_persistence
    plan.redis_restart = not args.no_redis_restart
    plan.worker_kill = not args.no_worker_kill and plan.workers > 1
    plan.server_env = parse_server_env(args.server_env)
    return plan


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _pct(growth: float | None) -> str:
    return "-" if growth is None else f"{growth * 100:+.2f} %"


def summary(result: dict[str, Any]) -> str:
    v, d, m, lg = result["verdict"], result["deliveries"], result["memory"], result["log"]
    lags = [s["healthz_ms_max"] for s in result["samples"] if s.get("healthz_ms_max") is not None]
    rates = [s["client_received_per_s"] for s in result["samples"][1:] if s.get("client_received_per_s")]
    last = result["samples"][-1] if result["samples"] else {}
    growth = _pct(m["growth"])
    lines = [
        f"verdict: {'PASS' if v['pass'] else 'FAIL'}  {v['checks']}",
        f"memory after warm-up: {growth} ({(m['first_mean'] or 0) / 2**20:.1f} -> "
        f"{(m['last_mean'] or 0) / 2**20:.1f} MiB over {m['samples']} samples); processes never restarted: "
        f"{_pct(m['survivors']['growth'])}; workers only: {_pct(m['workers']['growth'])}; "
        f"PSS (shared pages once): {_pct(m['pss']['growth'])}",
        f"SDK clients: {d['clients']}, events received {d['received']:,}, lost {d['lost']} "
        f"(tail {d['tail_lost']}), duplicated {d['duplicated']}, resets {d['resets']}, "
        f"reconnects {d['sdk_reconnects']} (resumed {d['sdk_resumed']}), SDK-dropped duplicates "
        f"{d['sdk_duplicates_dropped']}",
        f"light clients: {result['light_clients']}",
        f"published: {result['published']['events']:,} events, failed {result['published']['failed']}",
        f"gateway log: {lg['levels']} error-level lines {lg['error_lines']}",
        f"/healthz worst per sample: median {_ms(sorted(lags)[len(lags) // 2] if lags else None)}, "
        f"max {_ms(max(lags) if lags else None)}; client deliveries/s median "
        f"{sorted(rates)[len(rates) // 2] if rates else '-'}",
        f"faults: {[(f['t'], f['kind']) for f in result['faults']]}",
        f"connections at the end: clients {last.get('connections')}, gateway "
        f"{(last.get('metrics') or {}).get('autosdlc_ws_connections_active')}",
    ]
    lines += [f"  {line}" for line in lg["first_errors"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = plan_from(args)
    raise_nofile_limit()  # inherited by the gateway and the load processes
    if not shutil.which("redis-server") and not os.path.exists("/usr/bin/redis-server"):
        print("soak: redis-server is needed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    log(f"plan: {plan.to_json()}; faults at {timeline(plan)}")
    started = time.monotonic()
    result = asyncio.run(Soak(plan, args.out).run())
    result["meta"] = report.meta({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()})
    result["wall_s"] = round(time.monotonic() - started, 1)
    path = report.write_json(result, args.out, "soak")
    plot_path = args.plot or (path.with_suffix(".png") if args.quick else DEFAULT_PLOT)
    drawn = plot_soak(result, plot_path)
    print(summary(result))
    print(f"results: {path}" + (f"\nplot: {drawn}" if drawn else ""))
    return 0 if result["verdict"]["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

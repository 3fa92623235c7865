"""`autosdlc-ws bench`: options, and what each mode runs and writes.

Without a mode flag it runs the fan-out matrix the options describe (targets x
N x repeats, burst and/or fixed-rate phases) and prints the table; `--suite`
runs everything docs/benchmarks.md reports (about 10 minutes), and
`--slow-consumer`, `--resume`, `--index` and `--max-connections` run one of
the other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_OUT = "benchmarks/results"
DEFAULT_PLOT = "docs/benchmarks.png"


def _ints(text: str) -> list[int]:
    return [int(v.replace("_", "").replace(",", "")) for v in text.split(",") if v.strip()]


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", type=_csv, default=["gateway"],
                   help="comma-separated: gateway, bare-aiohttp, socketio (python-socketio), node-socketio "
                        "(Node.js Socket.IO), bare-picows (default gateway)")
    p.add_argument("-n", "--connections", type=_ints, default=[1000], metavar="N[,N...]",
                   help="connections held by the load generator (default 1000)")
    p.add_argument("--event-size", type=int, default=300, help="bytes of JSON per event (default 300)")
    p.add_argument("--burst", type=_ints, default=None, metavar="B[,B...]",
                   help="events per POST, i.e. per server loop iteration; 1 = one event per tick, "
                        "50 = arrays of 50 whose frames coalesce (default 1 unless --rate alone)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="also run a fixed-rate phase at this many deliveries/s (latency)")
    p.add_argument("--duration", type=float, default=3.0, help="seconds of publishing per phase")
    p.add_argument("--repeat", type=int, default=1, help="sessions per (target, N); the median is reported")
    p.add_argument("--compression", action="store_true",
                   help="connect with ?compression=gzip (gateway; events above the gzip threshold)")
    p.add_argument("--batch", action="store_true",
                   help="connect with ?batch=1 (gateway: several events per frame, as JSON arrays)")
    p.add_argument("--workers", type=int, default=1, help="passed to `serve --workers` (gateway)")
    p.add_argument("--broker", default="memory", help="passed to `serve --broker` (gateway)")
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the server, e.g. AUTOSDLC_WS_OUTGOING_BUFFER_BYTES=1048576")
    p.add_argument("--client", choices=("auto", "picows", "aiohttp"), default="auto",
                   help="load generator client (auto: picows if installed)")
    p.add_argument("--inflight", type=int, default=2, help="publish requests pipelined (default 2)")
    p.add_argument("--window", type=int, default=0,
                   help="events published ahead of delivery (default max(8, 3 x burst))")
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                   help=f"JSON results (default {DEFAULT_OUT})")
    p.add_argument("--plot", default=None,
                   help=f"PNG plot path, 'none' for no plot (default {DEFAULT_PLOT} with --suite, else none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--no-uvloop", action="store_true", help="load generator on the stdlib event loop")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--suite", action="store_true",
                      help="everything docs/benchmarks.md reports; rewrites its results section")
    mode.add_argument("--slow-consumer", action="store_true",
                      help="N readers at --rate (default 50000), 10 of which stop reading "
                           "(4 KiB events unless --event-size; outgoing limit 1 MiB)")
    mode.add_argument("--resume", action="store_true", help="replay of 10,000 missed events on resume")
    mode.add_argument("--index", action="store_true", help="benchmarks/bench_index.py")
    mode.add_argument("--max-connections", action="store_true",
                      help="the most idle connections this machine holds: --step more at a time up to "
                           "--cap, with memory per connection and heartbeat CPU (2 workers over a "
                           "private Redis: --workers N above 2 and --broker URL change that)")
    cap = p.add_argument_group("--max-connections")
    cap.add_argument("--step", type=int, default=5000, help="connections added per step (default 5000)")
    cap.add_argument("--cap", type=int, default=60_000, help="stop after this many (default 60000)")
    cap.add_argument("--per-holder", type=int, default=15_000,
                     help="connections per load process, each on its own 127.0.0.x (default 15000)")
    cap.add_argument("--heartbeat", type=float, default=10.0,
                     help="server heartbeat (ping) interval during the run, s (default 10)")
    cap.add_argument("--idle-window", type=float, default=30.0,
                     help="seconds of idle CPU measured per step (default 30)")
    cap.add_argument("--time-budget", type=float, default=600.0,
                     help="no new step after this many seconds (default 600)")
    cap.add_argument("--min-available-mib", type=float, default=2048.0,
                     help="no new step once the machine has less memory available (default 2048)")
    p.add_argument("--quick", action="store_true",
                   help="with --suite: one repeat, short phases (a smoke run)")
    p.add_argument("--docs", type=Path, default=Path("docs/benchmarks.md"),
                   help="with --suite: the Markdown file whose results section is rewritten")
    p.add_argument("--from-json", type=Path, default=None, metavar="SUITE.json",
                   help="with --suite: run nothing; redo the table, plots and docs from a suite's JSON; "
                        "with --max-connections: print the table of a connections-*.json")


def run(args: argparse.Namespace) -> int:
    from autosdlc_ws.bench.protocol import TARGETS

    for target in args.target:
        if target not in TARGETS:
            print(f"autosdlc-ws bench: unknown target {target!r}; one of {', '.join(TARGETS)}",
                  file=sys.stderr)
            return 2
    if args.suite:
        from autosdlc_ws.bench.suite import run_suite

        return run_suite(args)
    if args.slow_consumer:
        return _run_slow(args)
    if args.resume:
        return _run_resume(args)
    if args.index:
        return _run_index(args)
    if args.max_connections:
        return _run_capacity(args)
    return _run_fanout(args)


def _session_kw(args: argparse.Namespace) -> dict[str, Any]:
    from autosdlc_ws.bench.targets import parse_server_env

    return {"event_size": args.event_size, "compression": args.compression, "batch": args.batch,
            "workers": args.workers,
            "broker": args.broker, "server_env": parse_server_env(args.server_env), "client": args.client,
            "progress": not args.no_progress, "uvloop": not args.no_uvloop}


def _run_fanout(args: argparse.Namespace) -> int:
    from autosdlc_ws.bench import report
    from autosdlc_ws.bench.loadgen import Phase
    from autosdlc_ws.bench.runner import run_matrix

    bursts = args.burst if args.burst is not None else ([] if args.rate else [1])

    def phases_for(target: str, n: int) -> list[Phase]:
        phases = [Phase(f"burst b={b}", batch=b, duration=args.duration, window=args.window)
                  for b in bursts]
        if args.rate:
            phases.append(Phase(f"rate {args.rate:.0f}/s", rate=args.rate, duration=args.duration,
                                window=args.window))
        return phases

    started = time.monotonic()
    sessions = run_matrix(targets=args.target, ns=args.connections, phases_for=phases_for,
                          repeat=args.repeat, log_dir=args.out / "logs", inflight=args.inflight,
                          **_session_kw(args))
    table = report.rows(sessions)
    print(report.terminal_table(table, sessions))
    peers = report.peer_table(sessions)
    if peers:
        print("\n" + peers)
    failed = [s for s in sessions if not s.get("ok")]
    for s in failed:
        print(f"\n{s['target']} N={s['n']}: {s.get('fatal') or 'delivery errors'} {s.get('errors') or ''}",
              file=sys.stderr)
        for line in s.get("error_samples", [])[:5]:
            print(f"  {line}", file=sys.stderr)
    result = {"meta": report.meta(_jsonable(args)), "duration_s": round(time.monotonic() - started, 1),
              "summary": table, "sessions": sessions}
    path = report.write_json(result, args.out, "fanout")
    print(f"\nresults: {path}")
    if args.plot and args.plot != "none":
        if report.plot(table, Path(args.plot)):
            print(f"plot: {args.plot}")
    return 0 if not failed else 1


def _run_slow(args: argparse.Namespace) -> int:
    from autosdlc_ws.bench import report
    from autosdlc_ws.bench.extra import plot_slow, slow_consumer

    n = args.connections[0]
    result = slow_consumer(n=n, rate=args.rate or 50_000,
                           event_size=args.event_size if args.event_size != 300 else 4096,
                           duration=args.duration, repeat=args.repeat, log_dir=args.out / "logs",
                           progress=not args.no_progress, client=args.client)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    path = report.write_json({"meta": report.meta(_jsonable(args)), **result}, args.out, "slow-consumer")
    print(f"results: {path}")
    if args.plot and args.plot != "none":
        plot_slow(result, Path(args.plot))
    return 0 if result["ok"] else 1


def _run_resume(args: argparse.Namespace) -> int:
    from autosdlc_ws.bench import report
    from autosdlc_ws.bench.extra import resume_replay

    result = resume_replay(repeat=args.repeat, log_dir=args.out / "logs")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    report.write_json({"meta": report.meta(_jsonable(args)), **result}, args.out, "resume")
    return 0 if result["ok"] else 1


def _run_index(args: argparse.Namespace) -> int:
    from autosdlc_ws.bench.extra import index_benchmark

    result = index_benchmark(out_dir=args.out)
    print(result.get("stdout") or result.get("error"))
    return 0 if result.get("ok") else 1


def _run_capacity(args: argparse.Namespace) -> int:
    import asyncio

    from autosdlc_ws.bench import report
    from autosdlc_ws.bench.capacity import CapacityOptions, run_capacity
    from autosdlc_ws.bench.targets import parse_server_env

    if args.from_json:  # run nothing: the table of an earlier run
        from autosdlc_ws.bench.capacity_figures import table

        print(table(json.loads(args.from_json.read_text())["steps"]))
        return 0
    opts = CapacityOptions(step=args.step, cap=args.cap, per_holder=args.per_holder,
                           workers=args.workers if args.workers > 1 else 2, broker=args.broker,
                           heartbeat_s=args.heartbeat, window_s=args.idle_window,
                           time_budget_s=args.time_budget, min_available_mib=args.min_available_mib,
                           client=args.client, server_env=parse_server_env(args.server_env),
                           log_dir=args.out / "logs")
    try:
        result = asyncio.run(run_capacity(opts))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("autosdlc-ws bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    print(result["table"])
    summary = result["summary"]
    print(f"\nmost held: {summary['max_held']:,} ({summary['stop_reason']})")
    path = report.write_json({"meta": report.meta(_jsonable(args)), **result}, args.out, "connections")
    print(f"results: {path}")
    return 0 if summary["max_held"] else 1


def _jsonable(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}

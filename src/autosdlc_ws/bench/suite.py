"""`autosdlc-ws bench --suite` (`make bench`): every figure docs/benchmarks.md reports.

1. fan-out side by side: gateway, bare aiohttp, bare picows (the physical
   limit), python-socketio, Node.js Socket.IO; N = 1,000 and 5,000 (10,000 for
   gateway and the bare servers); one event per tick, 50 per tick, and a fixed
   50,000 deliveries/s; 3 repeats, targets interleaved;
2. the subscription index (benchmarks/bench_index.py);
3. slow consumers: 1,000 readers, 10 of which stop reading;
4. resume: replay of 10,000 missed events;
5. two workers over Redis against one, when a Redis answers on 127.0.0.1:6379.

Writes benchmarks/results/suite-<time>.json (and suite-latest.json), the
plots, and the results section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from autosdlc_ws.bench import node_peer, report
from autosdlc_ws.bench.extra import index_benchmark, plot_slow, resume_replay, slow_consumer
from autosdlc_ws.bench.loadgen import Phase
from autosdlc_ws.bench.report import BASELINE, fmt_spread, paired_ratios, spread, x
from autosdlc_ws.bench.runner import run_matrix, run_session

START = "<!-- bench:results:start -->"
END = "<!-- bench:results:end -->"
RATE = 50_000.0
#: Every server of the side-by-side fan-out, and those also run at N=10,000.
FANOUT_TARGETS = ["gateway", BASELINE, "bare-picows", "socketio", "node-socketio"]
FANOUT_TARGETS_10K = ["gateway", BASELINE, "bare-picows"]


def _redis_up(port: int = 6379) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run_suite(args: argparse.Namespace) -> int:
    if args.from_json:
        return _render(json.loads(Path(args.from_json).read_text()), args)
    quick = args.quick
    reps = 1 if quick else 3
    burst_s = 1.5 if quick else 2.0
    rate_s = 2.0 if quick else 3.0
    out: Path = args.out
    log_dir = out / "logs"
    started = time.monotonic()
    kw: dict[str, Any] = {"client": args.client, "progress": not args.no_progress,
                          "uvloop": not args.no_uvloop, "quiet_wait": 0 if quick else 2.0}

    def phases(target: str, n: int) -> list[Phase]:
        out = [Phase("burst b=1", batch=1, duration=burst_s)]
        if not (target == "socketio" and n > 1000):  # one request of 50 x 5,000 takes it ~25 s
            out.append(Phase("burst b=50", batch=50, duration=burst_s))
        return [*out, Phase("rate 50000/s", rate=RATE, duration=rate_s)]

    def progress_line(result: dict[str, Any]) -> None:
        phs = result.get("phases", [])
        figures = "  ".join(f"{p['label']}: {report.si(p['deliveries_per_s'])}/s p99 "
                            f"{report.ms(p['latency_ms']['p99'])} ms" for p in phs)
        status = "ok" if result.get("ok") else f"FAILED {result.get('fatal') or result.get('errors')}"
        print(f"  {result['target']:<13} N={result['n']:<6} {status:<4} {figures}  "
              f"[{time.monotonic() - started:.0f} s]", file=sys.stderr, flush=True)

    fanout_targets = FANOUT_TARGETS
    if node_peer.missing_tools():
        fanout_targets = [t for t in fanout_targets if t != node_peer.TARGET]
        print(f"fan-out: no {node_peer.TARGET} ({' and '.join(node_peer.missing_tools())} not found)",
              file=sys.stderr)
    print(f"fan-out: {', '.join(fanout_targets)} at N=1,000 and 5,000 ({reps} repeats)", file=sys.stderr)
    sessions = run_matrix(targets=fanout_targets, ns=[1000] if quick else [1000, 5000],
                          phases_for=phases, repeat=reps, log_dir=log_dir, on_result=progress_line, **kw)
    if not quick:
        print(f"fan-out: {', '.join(FANOUT_TARGETS_10K)} at N=10,000", file=sys.stderr)
        sessions += run_matrix(targets=FANOUT_TARGETS_10K, ns=[10_000], phases_for=phases, repeat=reps,
                               log_dir=log_dir, on_result=progress_line, **kw)

    print("subscription index: benchmarks/bench_index.py", file=sys.stderr)
    index = index_benchmark(out_dir=out, iterations=20_000 if quick else 100_000, runs=3 if quick else 5)

    print("slow consumers: 1,000 readers, 10 stop reading", file=sys.stderr)
    slow = slow_consumer(n=1000, stalled=10, rate=RATE, duration=3.0 if quick else 4.0,
                         burst_s=4.0 if quick else 6.0, log_dir=log_dir, progress=not args.no_progress,
                         client=args.client, repeat=1)

    print("resume: replay of 10,000 missed events", file=sys.stderr)
    resume = resume_replay(events=10_000, repeat=1 if quick else 3, log_dir=log_dir)

    workers: dict[str, Any] | None = None
    if not quick and _redis_up():
        print("workers: 2 workers over Redis vs 1 worker", file=sys.stderr)
        workers = _workers(log_dir, kw)

    table = report.rows(sessions)
    targets = target_rows(sessions, index, slow, resume, workers)
    duration = time.monotonic() - started
    result = {"meta": report.meta({"quick": quick, "repeats": reps}), "duration_s": round(duration, 1),
              "summary": table, "targets": targets, "index": index, "slow_consumer": slow,
              "resume": resume, "workers": workers, "sessions": sessions}
    path = report.write_json(result, out, "suite")
    print(f"\nresults: {path}")
    return _render(result, args)


def _render(result: dict[str, Any], args: argparse.Namespace) -> int:
    """The terminal tables, the plots and the docs section of one suite's results."""
    plot_path = Path(args.plot) if args.plot and args.plot != "none" else Path("docs/benchmarks.png")
    sessions, table, targets, slow = (result["sessions"], result["summary"], result["targets"],
                                      result["slow_consumer"])
    plotted = report.plot(table, plot_path, title=_plot_title(result))
    slow_plot = plot_slow(slow, plot_path.with_name(plot_path.stem + "-slow-consumer.png"))
    print()
    print(report.terminal_table(table, sessions))
    print()
    for row in targets:
        print(f"{row['met']:<5} {row['figure']:<62} {row['measured']}  (target {row['target']})")
    if plotted:
        print(f"plots: {plotted}" + (f", {slow_plot}" if slow_plot else ""))
    if args.docs:
        update_docs(args.docs, render_markdown(result, plotted, slow_plot, args.docs))
        print(f"docs: {args.docs}")
    print(f"suite took {result['duration_s'] / 60:.1f} min")
    return 0 if all(s.get("ok") for s in sessions) else 1


def _workers(log_dir: Path, kw: dict[str, Any], ns: tuple[int, ...] = (1000, 5000)) -> dict[str, Any]:
    """One worker (memory broker) against two workers over Redis, per server CPU-second."""
    prefix = f"{{bench-{os.getpid()}}}:"
    env = {"AUTOSDLC_WS_REDIS_PREFIX": prefix}
    phase = [Phase("burst b=1", batch=1, duration=2.0)]
    runs = []
    for rep in range(3):
        for n in ns:
            for label, workers, broker in (("1 worker, memory", 1, "memory"),
                                           ("2 workers, redis", 2, "redis://127.0.0.1:6379/0")):
                r = run_session("gateway", n, phase, workers=workers, broker=broker, server_env=env,
                                log_dir=log_dir, label=f"{label} [{rep + 1}/3]", **kw)
                r["case"], r["repeat"] = label, rep
                runs.append(r)

    def per_cpu(case: str, n: int) -> list[float]:
        return [r["phases"][0]["deliveries_per_server_cpu_s"] for r in runs
                if r["case"] == case and r["n"] == n and r.get("phases")
                and r["phases"][0]["deliveries_per_server_cpu_s"]]

    out: dict[str, Any] = {"ok": all(r.get("ok") for r in runs), "runs": runs, "by_n": {}}
    for n in ns:
        one, two = per_cpu("1 worker, memory", n), per_cpu("2 workers, redis", n)
        out["by_n"][str(n)] = {"per_cpu_s_1_worker": spread(one), "per_cpu_s_2_workers_redis": spread(two),
                               "ratio": spread(b / a for a, b in zip(one, two, strict=False))}
    return out


def target_rows(sessions: list[dict[str, Any]], index: dict[str, Any], slow: dict[str, Any],
                resume: dict[str, Any], workers: dict[str, Any] | None) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    tput = paired_ratios(sessions, "deliveries_per_s", "gateway", BASELINE)
    per_cpu = paired_ratios(sessions, "deliveries_per_server_cpu_s", "gateway", BASELINE)
    vs_sio = paired_ratios(sessions, "deliveries_per_s", "gateway", "socketio")
    p99 = paired_ratios(sessions, "latency.p99", "gateway", BASELINE)
    ns = sorted({s["n"] for s in sessions})

    def met(value: dict[str, float] | None, ok: Any) -> str:
        if not value:
            return "n/a"
        return "yes" if ok(value["median"]) else "NO"

    for label, goal, fig in (("burst b=1", 0.9, "burst fan-out, one event per tick, vs bare"),
                             ("burst b=50", 3.0, "burst fan-out, 50 events per tick, vs bare")):
        for n in ns:
            v = tput.get((label, n))
            if v is None:
                continue
            rows.append({"figure": f"{fig}, N={n:,}", "target": f">= {goal}x",
                         "measured": f"{fmt_spread(v, fn=x)}; per server CPU-s "
                                     f"{fmt_spread(per_cpu.get((label, n)), fn=x)}",
                         "met": met(v, lambda m, g=goal: m >= g)})
    for label in ("burst b=1", "burst b=50"):
        for n in ns:
            v = vs_sio.get((label, n))
            if v is None:
                continue
            rows.append({"figure": f"fan-out vs python-socketio, {label.split()[1]}, N={n:,}",
                         "target": ">= 6x", "measured": fmt_spread(v, fn=x), "met": met(v, lambda m: m >= 6)})
    v = p99.get(("rate 50000/s", 1000))
    rows.append({"figure": "p99 at 50,000 deliveries/s, N=1,000, vs bare", "target": "<= 1.25x",
                 "measured": fmt_spread(v, fn=x), "met": met(v, lambda m: m <= 1.25)})
    if index.get("ratio_10000_over_10") is not None:
        lo, hi = index.get("ratio_per_run_min_max", [None, None])
        r = index["ratio_10000_over_10"]
        rows.append({"figure": "publish cost, 10,000 subscriptions (10 match) vs 10 in all",
                     "target": "<= 2x", "measured": f"{r:.2f}x ({lo:.2f}-{hi:.2f})",
                     "met": "yes" if r <= 2 else "NO"})
    else:
        rows.append({"figure": "publish cost, 10,000 subscriptions (10 match) vs 10 in all",
                     "target": "<= 2x", "measured": f"not measured: {index.get('error', '?')[:80]}",
                     "met": "n/a"})
    kib = lambda v: f"{v:.1f}"  # noqa: E731
    for n in ns:
        mine = [s for s in sessions if s["target"] == "gateway" and s["n"] == n and s.get("rss_per_conn")]
        rss = spread(s["rss_per_conn"] / 1024 for s in mine)
        marginal = spread(s["rss_per_conn_marginal"] / 1024 for s in mine if s.get("rss_per_conn_marginal"))
        bare = spread(s["rss_per_conn"] / 1024 for s in sessions
                      if s["target"] == BASELINE and s["n"] == n and s.get("rss_per_conn"))
        held = all(s.get("ok") for s in sessions if s["target"] == "gateway" and s["n"] == n)
        rows.append({"figure": f"RSS per idle authenticated connection, N={n:,}", "target": "<= 20 KiB",
                     "measured": f"{fmt_spread(rss, ' KiB', fn=kib)}; marginal "
                                 f"{fmt_spread(marginal, ' KiB', fn=kib)}; bare aiohttp "
                                 f"{fmt_spread(bare, ' KiB', fn=kib)}"
                                 + ("" if held else " (some runs failed)"),
                     "met": met(rss, lambda m: m <= 20)})
    if 10_000 in ns:
        runs = [bool(s.get("ok")) for s in sessions if s["target"] == "gateway" and s["n"] == 10_000]
        rows.append({"figure": "10,000 connections held", "target": "yes",
                     "measured": f"{sum(runs)}/{len(runs)} sessions complete",
                     "met": "yes" if runs and all(runs) else "NO"})
    rs = resume.get("replay_s")
    rows.append({"figure": "resume: replay of 10,000 missed events", "target": "< 1 s",
                 "measured": fmt_spread(rs, " s", fn=lambda v: f"{v:.2f}") if rs else "-",
                 "met": met(rs, lambda m: m < 1.0) if resume.get("ok") else "NO"})
    if workers:
        for n_text, figures in workers["by_n"].items():
            rows.append({"figure": f"2 workers over Redis vs 1 worker, deliveries per server CPU-s, "
                                   f"N={int(n_text):,}",
                         "target": ">= 0.8x", "measured": fmt_spread(figures.get("ratio"), fn=x),
                         "met": met(figures.get("ratio"), lambda m: m >= 0.8)})
    else:
        rows.append({"figure": "2 workers over Redis vs 1 worker, deliveries per server CPU-s",
                     "target": ">= 0.8x", "measured": "not run (no Redis on 127.0.0.1:6379)", "met": "n/a"})
    ratio = slow.get("p99_steady_ratio")
    disc = slow.get("slow_consumer_disconnects")
    mib = lambda v: f"{v:.1f}"  # noqa: E731
    peak_stalled = fmt_spread(slow.get("rss_peak_growth_mib_with_stalled"), " MiB", fn=mib)
    peak_all = fmt_spread(slow.get("rss_peak_growth_mib_all_reading"), " MiB", fn=mib)
    rows.append({"figure": "1,000 readers, 10 stalled: others' p99 at 50k/s vs none stalled",
                 "target": "unchanged within noise",
                 "measured": f"{fmt_spread(ratio, fn=x)} (after the burst "
                             f"{fmt_spread(slow.get('p99_after_ratio'), fn=x)}); stalled closed with 4008: "
                             f"{disc}; RSS peak +{peak_stalled} (all reading +{peak_all})",
                 "met": met(ratio, lambda m: m <= 1.3)})
    return rows


def _plot_title(result: dict[str, Any]) -> str:
    m, v = result["meta"]["machine"], result["meta"]["versions"]
    return (f"{m['nproc']} cores ({m['cpu_model']}), Python {v['python']}, aiohttp {v['aiohttp']}; "
            f"server on core 0, load generator on core 1; median of runs, bars min-max")


def render_markdown(result: dict[str, Any], plot: Path | None, slow_plot: Path | None, docs: Path) -> str:
    m, v = result["meta"]["machine"], result["meta"]["versions"]
    sessions = result["sessions"]
    lines = [
        f"Latest run: {result['meta']['when']}, {result['duration_s'] / 60:.1f} minutes "
        f"(`make bench`; raw figures in `benchmarks/results/suite-latest.json`).",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, Linux {m['kernel']}. "
        f"Python {v['python']}, aiohttp {v['aiohttp']}, orjson {v['orjson']}, python-socketio "
        f"{v['python-socketio']}, Node.js {v.get('node', '-')} with socket.io {v.get('socket.io', '-')}, "
        f"picows {v['picows']} and uvloop {v['uvloop']} (load generator and the bare picows server).",
        "",
        "### Targets",
        "",
        "| figure | target | measured: median (min-max) of paired runs | met |",
        "|---|---|---|---|",
    ]
    for row in result["targets"]:
        lines.append(f"| {row['figure']} | {row['target']} | {row['measured']} | {row['met']} |")
    lines += ["", "### Every run", "",
              "300-byte events. CPU % is of one core: the server's, the load generator's, and "
              "everything else on the machine during the phase (a shared machine: large values "
              "there mean the figure is disturbed).", "",
              report.markdown_table(result["summary"], sessions), ""]
    peers = report.peer_table(sessions)
    if peers:
        lines += ["### The gateway against each server", "",
                  "Paired ratios (same repeat): deliveries/s, and deliveries per server CPU-second. "
                  "bare-picows is the physical limit of one Python core; Node.js Socket.IO and "
                  "python-socketio are the popular real-time servers.", "", peers, ""]
    if plot:
        lines += [f"![throughput and p99 against N]({os.path.relpath(plot, docs.parent)})", ""]
    slow = result["slow_consumer"]
    ms_ = lambda v: f"{v:.1f}"  # noqa: E731
    lines += ["### Slow consumers", "",
              f"{slow['n']:,} readers of {slow['event_size']}-byte events; outgoing limit "
              f"{slow['outgoing_buffer_bytes'] // 1024} KiB. Phases: {slow['rate']:,.0f} deliveries/s for "
              f"{slow['duration_s']:.0f} s, a burst (20 events per tick) for {slow['burst_s']:.0f} s, "
              f"{slow['rate']:,.0f} deliveries/s again. Then the same with {slow['stalled']} of the readers "
              "raw sockets that subscribe and never read.", "",
              "| phase | others' p99, all reading | others' p99, with stalled | ratio |", "|---|---|---|---|"]
    for label in ("steady", "burst", "after"):
        lines.append(f"| {label} | {fmt_spread(slow[f'p99_{label}_all_reading_ms'], ' ms', fn=ms_)} | "
                     f"{fmt_spread(slow[f'p99_{label}_with_stalled_ms'], ' ms', fn=ms_)} | "
                     f"{fmt_spread(slow[f'p99_{label}_ratio'], fn=x)} |")
    lines += ["", f"Stalled readers closed with 4008: {slow['slow_consumer_disconnects']}. Server RSS: peak "
              f"+{fmt_spread(slow['rss_peak_growth_mib_with_stalled'], ' MiB', fn=ms_)} and at the end "
              f"+{fmt_spread(slow['rss_end_growth_mib_with_stalled'], ' MiB', fn=ms_)} with stalled readers "
              f"(+{fmt_spread(slow['rss_peak_growth_mib_all_reading'], ' MiB', fn=ms_)} / "
              f"+{fmt_spread(slow['rss_end_growth_mib_all_reading'], ' MiB', fn=ms_)} all reading).", ""]
    if slow_plot:
        rel = os.path.relpath(slow_plot, docs.parent)
        lines += [f"![server RSS over time with stalled readers]({rel})", ""]
    index = result["index"]
    if index.get("stdout"):
        lines += ["### Subscription index (benchmarks/bench_index.py)", "", "```",
                  index["stdout"].strip(), "```", ""]
    resume = result["resume"]
    if resume.get("replay_s"):
        lines += ["### Resume", "",
                  f"Replay of {resume['events']:,} missed events to a reconnecting client: "
                  f"{fmt_spread(resume['replay_s'], ' s', fn=lambda v: f'{v:.2f}')}.", ""]
    workers = result.get("workers")
    if workers:
        lines += ["### Workers", "",
                  "Deliveries per server CPU-second (the server's whole process tree, both workers "
                  "pinned to core 0; the Redis server's own CPU is not counted), one event per tick:", "",
                  "| N | 1 worker, memory broker | 2 workers over Redis | ratio |", "|---|---|---|---|"]
        for n_text, f in workers["by_n"].items():
            lines.append(f"| {int(n_text):,} | {fmt_spread(f['per_cpu_s_1_worker'])} | "
                         f"{fmt_spread(f['per_cpu_s_2_workers_redis'])} | {fmt_spread(f['ratio'], fn=x)} |")
        lines.append("")
    return "\n".join(lines)


def update_docs(path: Path, body: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    path.write_text(text)

"""Turning sessions into figures: medians with min-max, ratios to bare aiohttp, a table, a plot."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from autosdlc_ws.bench.procstat import cpu_model

BASELINE = "bare-aiohttp"
#: Order of the servers in tables: ours, the bare broadcasters, the Socket.IO servers.
_ORDER = {"gateway": 0, BASELINE: 1, "bare-picows": 2, "socketio": 3, "node-socketio": 4}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("aiohttp", "orjson", "python-socketio", "python-engineio", "picows", "uvloop",
                 "autosdlc-ws"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "-"
    from autosdlc_ws.bench import node_peer
    from autosdlc_ws.bench.targets import peers_dir

    found.update(node_peer.versions(node_peer.project_dir(peers_dir())))
    return found


def machine() -> dict[str, Any]:
    from autosdlc_ws.bench.targets import cpus_available  # before this process pinned itself

    return {"nproc": cpus_available(), "cpu_model": cpu_model(), "kernel": platform.release(),
            "machine": platform.machine()}


def meta(args: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), "versions": versions(),
            "args": args or {}, "argv": sys.argv}


# --- statistics ----------------------------------------------------------------------------


def spread(values: Iterable[float | None]) -> dict[str, float] | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def _phase_key(ph: dict[str, Any]) -> str:
    return str(ph["label"])


def rows(sessions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (phase, N, target) with each figure as median/min/max over repeats."""
    groups: dict[tuple[str, int, str], list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    for s in sessions:
        for ph in s.get("phases", []):
            groups[(_phase_key(ph), s["n"], s["target"])].append((s, ph))
    out = []
    for (label, n, target), items in groups.items():
        phs = [ph for _, ph in items]
        out.append({
            "phase": label, "n": n, "target": target, "repeats": len(items),
            "batch": phs[0]["batch"], "rate": phs[0].get("rate_requested"),
            "deliveries_per_s": spread(p["deliveries_per_s"] for p in phs),
            "deliveries_per_server_cpu_s": spread(p["deliveries_per_server_cpu_s"] for p in phs),
            "server_cpu_pct": spread(p["server_cpu_pct"] for p in phs),
            "loadgen_cpu_pct": spread(p["loadgen_cpu_pct"] for p in phs),
            "other_cpu_pct": spread(p.get("other_cpu_pct") for p in phs),
            "p50_ms": spread(p["latency_ms"]["p50"] for p in phs),
            "p95_ms": spread(p["latency_ms"]["p95"] for p in phs),
            "p99_ms": spread(p["latency_ms"]["p99"] for p in phs),
            "max_ms": spread(p["latency_ms"]["max"] for p in phs),
            "achieved_rate": spread(p.get("achieved_rate") for p in phs),
            "rss_kib_per_conn": spread((s.get("rss_per_conn") or 0) / 1024 for s, _ in items),
            "complete": all(p["complete"] for p in phs),
            "ok": all(s.get("ok") for s, _ in items),
        })
    out.sort(key=lambda r: (r["batch"], r["rate"] or 0, r["n"], _ORDER.get(r["target"], 9)))
    return out


def paired_ratios(sessions: Sequence[dict[str, Any]], metric: str, num: str, den: str,
                  *, invert: bool = False) -> dict[tuple[str, int], dict[str, float] | None]:
    """metric(num) / metric(den) per repeat, for each (phase, N); median/min/max of those ratios."""
    by: dict[tuple[str, int, int], dict[str, float]] = defaultdict(dict)
    for s in sessions:
        for ph in s.get("phases", []):
            value = _metric(ph, metric)
            if value is not None:
                by[(_phase_key(ph), s["n"], s.get("repeat", 0))][s["target"]] = value
    ratios: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (label, n, _rep), vals in by.items():
        if num in vals and den in vals and vals[den] > 0 and vals[num] > 0:
            r = vals[num] / vals[den]
            ratios[(label, n)].append(1 / r if invert else r)
    return {k: spread(v) for k, v in ratios.items()}


def _metric(ph: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("latency."):
        value = ph["latency_ms"].get(metric.split(".", 1)[1])
    else:
        value = ph.get(metric)
    return float(value) if value is not None else None


# --- formatting ------------------------------------------------------------------------------


def si(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def fmt_spread(s: dict[str, float] | None, unit: str = "", fn: Any = si) -> str:
    if not s:
        return "-"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{fn(s['median'])}{unit}"
    return f"{fn(s['median'])}{unit} ({fn(s['min'])}-{fn(s['max'])})"


def ms(value: float | None) -> str:
    return "-" if value is None else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def phase_title(row: dict[str, Any]) -> str:
    if row["rate"]:
        return f"{si(row['rate'])} deliveries/s"
    return "burst, 1 event/tick" if row["batch"] == 1 else f"burst, {row['batch']} events/tick"


def markdown_table(table_rows: Sequence[dict[str, Any]],
                   sessions: Sequence[dict[str, Any]]) -> str:
    """The main results table: every (phase, N, target), with the ratio to bare aiohttp."""
    vs_bare = paired_ratios(sessions, "deliveries_per_s", "gateway", BASELINE)
    vs_bare_cpu = paired_ratios(sessions, "deliveries_per_server_cpu_s", "gateway", BASELINE)
    p99_vs = paired_ratios(sessions, "latency.p99", "gateway", BASELINE)
    out = ["| load | N | server | deliveries/s | per server CPU-s | server / loadgen / other CPU % "
           "| p50 / p99 ms | KiB/conn | gateway vs bare |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in table_rows:
        key = (r["phase"], r["n"])
        ratio = ""
        if r["target"] == "gateway":
            if r["rate"]:
                ratio = f"p99 {fmt_spread(p99_vs.get(key), fn=x)}"
            else:
                ratio = (f"{fmt_spread(vs_bare.get(key), fn=x)}; per CPU-s "
                         f"{fmt_spread(vs_bare_cpu.get(key), fn=x)}")
        cpu = "/".join(f"{(r[k] or {}).get('median', 0):.0f}" for k in
                       ("server_cpu_pct", "loadgen_cpu_pct", "other_cpu_pct"))
        lat = f"{ms((r['p50_ms'] or {}).get('median'))} / {fmt_spread(r['p99_ms'], fn=ms)}"
        rate = fmt_spread(r["deliveries_per_s"])
        if r["rate"] and r["achieved_rate"] and r["achieved_rate"]["median"] < 0.95 * r["rate"]:
            rate += " (saturated)"
        flags = "" if r["ok"] and r["complete"] else " **(errors)**"
        out.append(f"| {phase_title(r)} | {r['n']:,} | {r['target']}{flags} | {rate} | "
                   f"{fmt_spread(r['deliveries_per_server_cpu_s'])} | {cpu} | {lat} | "
                   f"{fmt_spread(r['rss_kib_per_conn'], fn=lambda v: f'{v:.1f}')} | {ratio} |")
    return "\n".join(out)


def peer_table(sessions: Sequence[dict[str, Any]]) -> str:
    """The gateway against every other server of the run, per load and N: paired ratios of
    deliveries/s (of p99 at a fixed rate, where deliveries/s is the rate asked for) and of
    deliveries per server CPU-second. Above 1 the gateway does more (or waits longer, for p99)."""
    peers = sorted({s["target"] for s in sessions} - {"gateway"}, key=lambda t: _ORDER.get(t, 9))
    loads = sorted({(ph["label"], ph["batch"], ph.get("rate_requested") or 0, s["n"])
                    for s in sessions if s["target"] == "gateway" for ph in s.get("phases", [])},
                   key=lambda k: (k[1], k[2], k[3]))
    if not peers or not loads:
        return ""
    figures = {p: {metric: paired_ratios(sessions, metric, "gateway", p)
                   for metric in ("deliveries_per_s", "latency.p99", "deliveries_per_server_cpu_s")}
               for p in peers}
    out = ["| load | N | " + " | ".join(f"gateway vs {p}" for p in peers) + " |",
           "|---|---|" + "---|" * len(peers)]
    for label, batch, rate, n in loads:
        cells = []
        for by_metric in figures.values():
            first = by_metric["latency.p99" if rate else "deliveries_per_s"].get((label, n))
            per_cpu = by_metric["deliveries_per_server_cpu_s"].get((label, n))
            if first is None and per_cpu is None:
                cells.append("-")
                continue
            cells.append(f"{'p99 ' if rate else ''}{fmt_spread(first, fn=x)}; per CPU-s "
                         f"{fmt_spread(per_cpu, fn=x)}")
        out.append(f"| {phase_title({'rate': rate, 'batch': batch})} | {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def terminal_table(table_rows: Sequence[dict[str, Any]], sessions: Sequence[dict[str, Any]]) -> str:
    vs_bare = paired_ratios(sessions, "deliveries_per_s", "gateway", BASELINE)
    p99_vs = paired_ratios(sessions, "latency.p99", "gateway", BASELINE)
    head = (f"{'load':<24} {'N':>6} {'server':<13} {'deliveries/s':>24} {'/server CPU-s':>13} "
            f"{'srv/lg/oth%':>12} {'p50':>6} {'p99':>7} {'KiB/c':>6}  vs bare")
    lines = [head, "-" * len(head)]
    for r in table_rows:
        key = (r["phase"], r["n"])
        ratio = ""
        if r["target"] == "gateway" and any(s["target"] == BASELINE for s in sessions):
            ratio = (f"p99 {fmt_spread(p99_vs.get(key), fn=x)}" if r["rate"]
                     else fmt_spread(vs_bare.get(key), fn=x))
        cpu = "/".join(f"{(r[k] or {}).get('median', 0):.0f}" for k in
                       ("server_cpu_pct", "loadgen_cpu_pct", "other_cpu_pct"))
        bad = "" if r["ok"] and r["complete"] else " !"
        lines.append(
            f"{phase_title(r):<24} {r['n']:>6} {r['target'] + bad:<13} "
            f"{fmt_spread(r['deliveries_per_s']):>24} "
            f"{si((r['deliveries_per_server_cpu_s'] or {}).get('median')):>13} {cpu:>12} "
            f"{ms((r['p50_ms'] or {}).get('median')):>6} {ms((r['p99_ms'] or {}).get('median')):>7} "
            f"{(r['rss_kib_per_conn'] or {}).get('median', 0):>6.1f}  {ratio}")
    return "\n".join(lines)


# --- plot ------------------------------------------------------------------------------------


def plot(table_rows: Sequence[dict[str, Any]], path: Path, *, title: str = "") -> Path | None:
    """Throughput and p99 against N, one line per server and load. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("autosdlc-ws bench: matplotlib is not installed; no plot (pip install '.[bench]')",
              file=sys.stderr)
        return None
    colors = {"gateway": "tab:blue", BASELINE: "tab:orange", "socketio": "tab:green",
              "node-socketio": "tab:olive", "bare-picows": "tab:gray"}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5.6))
    series: dict[tuple[str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    for r in table_rows:
        series[(r["target"], phase_title(r), bool(r["rate"]))].append(r)
    for (target, load, is_rate), items in sorted(series.items()):
        items.sort(key=lambda r: r["n"])
        ns = [r["n"] for r in items]
        style = "-" if ("1 event" in load or is_rate) else "--"
        if is_rate:
            items = [r for r in items if r["p99_ms"]]
            ns = [r["n"] for r in items]
            vals = [float(r["p99_ms"]["median"]) for r in items]
            lo = [v - float(r["p99_ms"]["min"]) for r, v in zip(items, vals, strict=True)]
            hi = [float(r["p99_ms"]["max"]) - v for r, v in zip(items, vals, strict=True)]
            ax2.errorbar(ns, vals, yerr=[lo, hi], marker="o", linestyle=style, capsize=3,
                         color=colors.get(target), label=f"{target}, {load}")
        else:
            vals = [r["deliveries_per_s"]["median"] for r in items]
            lo = [v - r["deliveries_per_s"]["min"] for r, v in zip(items, vals, strict=True)]
            hi = [r["deliveries_per_s"]["max"] - v for r, v in zip(items, vals, strict=True)]
            ax1.errorbar(ns, vals, yerr=[lo, hi], marker="o" if style == "-" else "s", linestyle=style,
                         capsize=3, color=colors.get(target), label=f"{target}, {load}")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("connections (N)")
    ax1.set_ylabel("deliveries/s (median, min-max)")
    ax1.set_title("burst fan-out throughput")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("connections (N)")
    ax2.set_ylabel("p99 publish-to-receive, ms")
    ax2.set_title("p99 latency at a fixed rate")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    for ax in (ax1, ax2):
        ticks = sorted({r["n"] for r in table_rows})
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:,}" for t in ticks])
        ax.minorticks_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(obj: dict[str, Any], out_dir: Path, stem: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    text = json.dumps(obj, indent=1, default=str)
    path.write_text(text)
    (out_dir / f"{stem}-latest.json").write_text(text)
    return path

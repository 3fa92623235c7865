"""The soak run's plot: memory, open files, /healthz latency and deliveries over time, faults marked."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FAULT_STYLE = {"storm": ("tab:gray", ":"), "redis_restart": ("tab:red", "--"),
               "worker_kill": ("tab:purple", "--")}


def _series(samples: Sequence[Mapping[str, Any]], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for s in samples:
        value = s.get(key)
        if value is not None:
            xs.append(float(s["t"]))
            ys.append(float(value) * scale)
    return xs, ys


def plot_soak(result: Mapping[str, Any], path: Path) -> Path | None:
    """Four panels sharing the time axis; needs matplotlib (the bench extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("soak: matplotlib is not installed; no plot (pip install '.[bench]')", file=sys.stderr)
        return None
    samples = result["samples"]
    plan = result["plan"]
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True)
    mib = 1 / (1024 * 1024)
    ax = axes[0]
    ax.plot(*_series(samples, "rss_bytes", mib), label="gateway (supervisor + workers)", color="tab:blue")
    ax.plot(*_series(samples, "redis_rss_bytes", mib), label="redis-server", color="tab:orange", linestyle="--")
    ax.set_ylabel("RSS (MiB)")
    ax = axes[1]
    ax.plot(*_series(samples, "fds"), label="gateway open files", color="tab:blue")
    ax.plot(*_series(samples, "connections"), label="client connections open", color="tab:green",
            linestyle="--")
    ax.set_ylabel("count")
    ax = axes[2]
    ax.plot(*_series(samples, "healthz_ms_max"), label="GET /healthz, worst of the interval", color="tab:red")
    ax.plot(*_series(samples, "healthz_ms_p50"), label="median", color="tab:blue")
    ax.set_yscale("log")
    ax.set_ylabel("ms (loop lag proxy)")
    ax = axes[3]
    ax.plot(*_series(samples, "server_delivered_per_s"), label="gateway counter", color="tab:blue")
    ax.plot(*_series(samples, "client_received_per_s"), label="clients' count", color="tab:green",
            linestyle="--")
    ax.set_ylabel("deliveries/s")
    ax.set_xlabel("seconds since publishing started")
    seen: set[str] = set()
    for fault in result["faults"]:
        color, style = FAULT_STYLE.get(fault["kind"], ("black", ":"))
        for i, a in enumerate(axes):
            label = fault["kind"] if i == 0 and fault["kind"] not in seen else None
            a.axvline(fault["t"], color=color, linestyle=style, linewidth=1, label=label)
        seen.add(fault["kind"])
    for a in axes:
        a.axvspan(0, plan["warmup"], color="tab:green", alpha=0.06)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="upper left")
    v = result["verdict"]
    growth = result["memory"].get("growth")
    fig.suptitle(f"make soak: {plan['connections']:,} connections, {plan['rate']:.0f} events/s, "
                 f"{plan['duration']:.0f} s; {'PASS' if v['pass'] else 'FAIL'} "
                 f"(memory {'-' if growth is None else f'{growth * 100:+.1f} %'}, "
                 f"lost {result['deliveries']['lost']}, duplicated {result['deliveries']['duplicated']}, "
                 f"error lines {result['log']['error_lines']}; shaded: warm-up)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""What the metrics cost on the fan-out hot path: the same deliveries with and without them.

Runs the kernel-free hot path of `bench_hotpath.py` (real Gateway, Hub and N
real Connections writing to byte-counting transports) twice, interleaved:
once as shipped, once with the hub's fan-out metrics switched off
(`Hub.stats = None`: no counters, histograms or latency callback). Both runs
execute the shipped `Hub.on_broker_event` and `Connection._flush`, not copies;
a connection's own frame and byte counts stay on in both, since
/api/v1/connections reports them. Since the system call is left out, the
ratio overstates what metrics cost end to end, where `send()` dominates.

    .venv/bin/python benchmarks/bench_metrics.py [--n 1000] [--events 1000] [--runs 7] [--cpu 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_hotpath import build, measure

RESULTS = Path(__file__).resolve().parent / "results" / "metrics-latest.json"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    gateway, _ = build(args.n)
    stats = gateway.hub.stats
    samples: dict[str, dict[int, list[float]]] = {"on": {1: [], 50: []}, "off": {1: [], 50: []}}
    await measure(gateway, max(50, args.events // 10), 1)
    for _ in range(args.runs):
        for label, hub_stats in (("on", stats), ("off", None)):
            gateway.hub.stats = hub_stats
            for per_tick in (1, 50):
                samples[label][per_tick].append(await measure(gateway, args.events, per_tick))
    gateway.hub.stats = stats
    out: dict[str, Any] = {}
    for per_tick in (1, 50):
        on = statistics.median(samples["on"][per_tick]) * 1e9
        off = statistics.median(samples["off"][per_tick]) * 1e9
        out[f"{per_tick}_per_tick"] = {"on_ns": on, "off_ns": off, "overhead": on / off - 1}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    result = asyncio.run(main_async(args))
    for key, r in result.items():
        print(f"{key:<12} metrics on {r['on_ns']:6.0f} ns/delivery, off {r['off_ns']:6.0f} "
              f"-> overhead {r['overhead'] * 100:+.1f}% (Python only, no send())")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"n": args.n, "events": args.events, "runs": args.runs, **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Well-behaved clients' latency while another client floods the gateway.

Runs tests/security/test_flood.py RUNS times (the gateway, the flooder and the
clients each in their own process, as the test sets them up) and reports the
publish-to-receive latency of 3 clients x 300 events, unloaded and loaded:
medians and p99 per run, and the loaded/unloaded ratios (median and spread).

    .venv/bin/python benchmarks/bench_flood.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/security/test_flood.py"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(result: Path) -> dict[str, float]:
    env = {**os.environ, "AUTOSDLC_WS_FLOOD_RESULT": str(result)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    data = json.loads(result.read_text())
    unloaded, loaded = data["unloaded_ms"], data["loaded_ms"]
    return {"unloaded_p50": statistics.median(unloaded), "unloaded_p99": percentile(unloaded, 0.99),
            "loaded_p50": statistics.median(loaded), "loaded_p99": percentile(loaded, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            rows.append(one_run(Path(tmp) / f"run{i}.json"))
    print("run  unloaded p50/p99 ms  loaded p50/p99 ms")
    for i, row in enumerate(rows):
        print(f"{i:>3}  {row['unloaded_p50']:6.2f} / {row['unloaded_p99']:6.2f}    "
              f"{row['loaded_p50']:6.2f} / {row['loaded_p99']:6.2f}")
    for q in ("p50", "p99"):
        ratios = [row[f"loaded_{q}"] / row[f"unloaded_{q}"] for row in rows]
        print(f"loaded/unloaded {q}: median {statistics.median(ratios):.2f}x "
              f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x, {len(ratios)} runs)")


if __name__ == "__main__":
    main()

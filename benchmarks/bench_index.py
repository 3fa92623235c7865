"""Publish cost of the subscription index: 10,000 subscriptions of which 10 match vs 10 in all.

The index promises (core/subscriptions.py) that a publish touches only the
subscriptions registered under its type and its own resource values, so the
cost of finding the recipients depends on how many match, not on how many
exist. This measures `SubscriptionIndex.match` plus iterating the owners for
the same event against both tables, in the same run, and reports the ratio
(target: at most 2x). A linear scan of the 10,000 subscriptions is measured
too, as the cost the index avoids.

    .venv/bin/python benchmarks/bench_index.py [--iterations N] [--runs 5] [--cpu 0]

Prints a table and writes benchmarks/results/index.json. Not a test: tests
never assert on wall-clock speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autosdlc_ws.core.subscriptions import Subscription, SubscriptionIndex, normalise_filters

RESULTS = Path(__file__).resolve().parent / "results" / "index.json"
EVENT_TYPE = "agent_status"
EVENT_DATA: dict[str, Any] = {"agentId": "agent-target", "taskId": "task-1", "status": "busy"}
MATCHING = 10
TOTAL = 10_000
OTHER_TYPES = ("agent_log", "tdd_phase_change", "workflow_started", "system_alert", "github_pr_update")


def make_sub(i: int, owner: str, types: tuple[str, ...], filters: dict[str, Any] | None) -> Subscription[str]:
    return Subscription(f"sub-{i}", owner, types, frozenset(types), normalise_filters(filters))


def matching_subs() -> list[Subscription[str]]:
    """Ten subscriptions that all match the event, in the shapes clients use."""
    shapes: list[tuple[tuple[str, ...], dict[str, Any] | None]] = [
        ((EVENT_TYPE,), {"agentId": "agent-target"}),
        ((EVENT_TYPE, "agent_log"), {"agentId": ["agent-target", "agent-other"]}),
        ((EVENT_TYPE,), {"agentId": "agent-target", "taskId": "task-1"}),
        ((EVENT_TYPE,), {"taskId": ["task-1", "task-2"]}),
        ((EVENT_TYPE,), None),
    ]
    return [make_sub(i, f"match-{i}", *shapes[i % len(shapes)]) for i in range(MATCHING)]


def non_matching_subs(count: int) -> list[Subscription[str]]:
    """Subscriptions a dashboard fleet would hold that do not want this event."""
    subs = []
    for i in range(count):
        kind = i % 10
        owner = f"other-{i}"
        n = MATCHING + i
        if kind < 6:  # same type, another agent: the common case
            subs.append(make_sub(n, owner, (EVENT_TYPE,), {"agentId": f"agent-{i}"}))
        elif kind == 6:  # same type, another task
            subs.append(make_sub(n, owner, (EVENT_TYPE,), {"taskId": f"task-x{i}"}))
        elif kind == 7:  # same agent, other types
            subs.append(make_sub(n, owner, ("agent_log", "tdd_phase_change"), {"agentId": "agent-target"}))
        elif kind == 8:  # other types, unfiltered
            subs.append(make_sub(n, owner, (OTHER_TYPES[i % len(OTHER_TYPES)],), None))
        else:  # same agent but a second filter that excludes the event
            subs.append(make_sub(n, owner, (EVENT_TYPE,), {"agentId": f"agent-{i}", "taskId": "task-1"}))
    return subs


def build(subs: list[Subscription[str]]) -> SubscriptionIndex[str]:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    for sub in subs:
        index.add(sub)
    return index


def publish_cost(index: SubscriptionIndex[str], iterations: int) -> float:
    """Seconds per publish: find the owners, then touch each (as fan-out would)."""
    match = index.match
    delivered = 0
    start = time.perf_counter()
    for _ in range(iterations):
        for _owner in match(EVENT_TYPE, EVENT_DATA):
            delivered += 1
    elapsed = time.perf_counter() - start
    assert delivered == iterations * MATCHING
    return elapsed / iterations


def linear_scan_cost(subs: list[Subscription[str]], iterations: int) -> float:
    """What the index avoids: test every subscription, keep each owner once."""
    delivered = 0
    start = time.perf_counter()
    for _ in range(iterations):
        owners: dict[str, None] = {}
        for sub in subs:
            if sub.matches(EVENT_TYPE, EVENT_DATA):
                owners[sub.owner] = None
        for _owner in owners:
            delivered += 1
    elapsed = time.perf_counter() - start
    assert delivered == iterations * MATCHING
    return elapsed / iterations


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200_000, help="publishes per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per case; the median is reported")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    matching = matching_subs()
    large = build(matching + non_matching_subs(TOTAL - MATCHING))
    small = build(matching_subs())
    assert len(large) == TOTAL and len(small) == MATCHING
    expected = sorted(s.owner for s in matching)
    for index in (large, small):
        got = list(index.match(EVENT_TYPE, EVENT_DATA))
        assert sorted(got) == expected, "the two tables must deliver to the same owners"

    publish_cost(large, args.iterations // 10)  # warm up
    publish_cost(small, args.iterations // 10)
    large_samples: list[float] = []
    small_samples: list[float] = []
    for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
        large_samples.append(publish_cost(large, args.iterations))
        small_samples.append(publish_cost(small, args.iterations))
    large_median = statistics.median(large_samples)
    small_median = statistics.median(small_samples)
    ratio = large_median / small_median
    ratios = sorted(a / b for a, b in zip(large_samples, small_samples, strict=True))

    all_subs = matching + non_matching_subs(TOTAL - MATCHING)
    scan_iterations = max(10, args.iterations // 2000)
    scan_median, scan_samples = median_of(args.runs, lambda: linear_scan_cost(all_subs, scan_iterations))

    rows = [
        (f"index, {TOTAL:,} subscriptions, {MATCHING} match", large_median, large_samples),
        (f"index, {MATCHING} subscriptions in all", small_median, small_samples),
        (f"linear scan, {TOTAL:,} subscriptions", scan_median, scan_samples),
    ]
    print(f"{'case':<44} {'median us/publish':>18} {'min-max':>18}")
    for name, median, samples in rows:
        spread = f"{min(samples) * 1e6:.2f}-{max(samples) * 1e6:.2f}"
        print(f"{name:<44} {median * 1e6:>18.3f} {spread:>18}")
    print(f"\nratio 10,000 / 10 subscriptions: {ratio:.2f}x "
          f"(per-run ratios {ratios[0]:.2f}-{ratios[-1]:.2f}; target <= 2x)")
    print(f"linear scan / index at 10,000: {scan_median / large_median:.0f}x")

    result = {
        "benchmark": "subscription index publish cost",
        "event": {"type": EVENT_TYPE, "data": EVENT_DATA},
        "matching": MATCHING,
        "iterations_per_run": args.iterations,
        "runs": args.runs,
        "seconds_per_publish": {
            "index_10000": {"median": large_median, "samples": large_samples},
            "index_10": {"median": small_median, "samples": small_samples},
            "linear_scan_10000": {"median": scan_median, "samples": scan_samples,
                                  "iterations_per_run": scan_iterations},
        },
        "ratio_10000_over_10": ratio,
        "ratio_per_run_min_max": [ratios[0], ratios[-1]],
        "target_ratio_max": 2.0,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu_pinned": args.cpu,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())

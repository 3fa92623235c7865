"""What one resume's history read costs a worker: recent events in memory vs the stream.

A private `redis-server` (pinned to core 0, this process to core 1); two
started `RedisEventLog`s on it, one keeping the newest events in memory
(`history_cache_events`, default 10,000) and one keeping none (0: every
answer is an `XRANGE` parsed again). Events like the soak's `agent_log`
are published until both have delivered them; then `history_after` is asked
for the last `missed` events, as a client that was away that long resumes,
alternating between the two logs. Reported per `missed`: CPU of this process
per answer (ms), its peak of traced Python memory (tracemalloc, a separate
pass: tracing slows the timing) and the ratio stream / memory.

    .venv/bin/python benchmarks/bench_resume_history.py [--missed 100,1000,5000] [--reads 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.base import Position
from autosdlc_ws.broker.redis_backend import redis_backend
from autosdlc_ws.broker.redis_log import RedisEventLog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from private_redis import private_redis

RESULTS = Path(__file__).resolve().parent / "results" / "resume-history-latest.json"
KEPT = 10_000


def event(seq: int) -> dict[str, Any]:
    """An `agent_log` event of the soak's shape (bench/soak_publisher.py)."""
    return {"id": f"evt-{seq}", "type": "agent_log", "timestamp": 1_700_000_000_000,
            "data": {"agentId": f"agent-{seq % 100}", "level": "info",
                     "message": f"step {seq} finished", "run": "bench", "seq": seq}}


async def started(url: str, kept: int) -> tuple[Backend, RedisEventLog]:
    broker = redis_backend(url, prefix="{bench}:", recent_events=kept)
    await broker.start(lambda record: None)
    assert isinstance(broker.log, RedisEventLog)
    return broker, broker.log


async def cpu_ms(log: RedisEventLog, position: Position) -> float:
    t0 = time.process_time()
    result = await log.history_after(position=position)
    spent = (time.process_time() - t0) * 1000
    assert result.complete
    return spent


async def peak_kib(log: RedisEventLog, position: Position) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = await log.history_after(position=position)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.complete
    return peak / 1024


async def run(missed: list[int], reads: int) -> dict[str, Any]:
    async with private_redis(pin_cpu=0) as url:
        cached_broker, cached = await started(url, KEPT)
        stream_broker, stream = await started(url, 0)
        try:
            total = max(missed)
            for start in range(0, total, 500):
                await cached.publish([event(seq) for seq in range(start, min(total, start + 500))])
            head = await cached.head()
            assert isinstance(head, Position)
            rows = []
            for k in missed:
                position = Position(head.epoch, head.offset - k)
                times: dict[str, list[float]] = {"memory": [], "stream": []}
                for _ in range(reads):
                    times["memory"].append(await cpu_ms(cached, position))
                    times["stream"].append(await cpu_ms(stream, position))
                peaks = {"memory": await peak_kib(cached, position), "stream": await peak_kib(stream, position)}
                memory_ms, stream_ms = statistics.median(times["memory"]), statistics.median(times["stream"])
                rows.append({"missed": k, "memory_cpu_ms": round(memory_ms, 3), "stream_cpu_ms": round(stream_ms, 3),
                             "cpu_ratio": round(stream_ms / memory_ms, 1) if memory_ms else None,
                             "memory_peak_kib": round(peaks["memory"], 1),
                             "stream_peak_kib": round(peaks["stream"], 1)})
            assert cached.history_cache_hits > 0 and stream.history_cache_hits == 0
            return {"kept": KEPT, "reads": reads, "rows": rows}
        finally:
            await cached_broker.close()
            await stream_broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--missed", default="100,1000,5000", help="events missed, comma-separated (<= 10000)")
    parser.add_argument("--reads", type=int, default=30, help="answers timed per case and log")
    args = parser.parse_args()
    missed = [int(k) for k in args.missed.split(",")]
    if max(missed) > KEPT:
        parser.error(f"--missed up to {KEPT} (the events kept in memory)")
    result = asyncio.run(run(missed, args.reads))
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"history_after for the last N events, median of {args.reads}; CPU of the worker's process "
          "(Redis excluded), peak traced Python memory")
    print(f"{'missed':>7} {'memory ms':>10} {'stream ms':>10} {'ratio':>6} {'memory KiB':>11} {'stream KiB':>11}")
    for row in result["rows"]:
        print(f"{row['missed']:>7} {row['memory_cpu_ms']:>10} {row['stream_cpu_ms']:>10} {row['cpu_ratio']:>5}x "
              f"{row['memory_peak_kib']:>11} {row['stream_peak_kib']:>11}")
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()

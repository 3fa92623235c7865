"""What the control channel costs on Redis: latency of a listing, a request, a broadcast.

Starts its own redis-server on a free port (never 6379), starts N nodes
(`RedisControlChannel`s in this process, each with its own connections) and
times, from node 0, `nodes()`, `request()` to node 1 and `broadcast()` to
all, plus one heartbeat. The admin API makes one of these per HTTP request;
the event path never touches the channel.

    python benchmarks/bench_control.py [--nodes 2,4,8] [--calls 300]

Run outside the test suite; figures in docs/architecture.md ("Control channel").
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from private_redis import private_redis

from autosdlc_ws.broker.control import NodeInfo
from autosdlc_ws.broker.redis_control import RedisControlChannel


async def answer(command: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


async def timed(call: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    """(median, p99) in milliseconds."""
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


async def run(url: str, nodes: int, calls: int) -> None:
    channels = []
    for i in range(nodes):
        channel = RedisControlChannel(url, prefix=f"{{bench-{nodes}}}:")
        now = int(time.time() * 1000)
        await channel.start(NodeInfo(f"node-{i}", "bench", i, now, now, "bench"), answer)
        channels.append(channel)
    first = channels[0]
    try:
        rows = [("nodes()", await timed(first.nodes, calls)),
                ("request()", await timed(lambda: first.request("node-1", "ping", {}), calls)),
                ("broadcast()", await timed(lambda: first.broadcast("ping", {}), calls)),
                ("heartbeat", await timed(first.heartbeat, calls))]
        for name, (median, p99) in rows:
            print(f"| {nodes} | {name} | {median:.2f} | {p99:.2f} |", flush=True)
    finally:
        for channel in channels:
            await channel.close()


async def main_async(args: argparse.Namespace) -> None:
    async with private_redis() as url:
        print("| nodes | call | median ms | p99 ms |\n|---|---|---|---|")
        for nodes in args.nodes:
            await run(url, nodes, args.calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", default="2,4,8")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    args.nodes = [max(2, int(n)) for n in args.nodes.split(",")]
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

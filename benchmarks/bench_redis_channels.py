"""How should events map to Redis Pub/Sub channels? One channel, one per category, or one per resource.

Starts its own redis-server on a free port (never 6379), simulates W gateway
workers as W Pub/Sub connections (each parses what it receives, as a worker
would), publishes E events over R resources (agents) and 6 categories, and
measures, per mapping:

- Redis CPU per published event (INFO cpu, user+sys, delta over the run);
- messages and events delivered to the workers, and the workers' CPU per event
  (the simulated workers share this process, pinned to the other core);
- the publish rate.

Interest: `broad` = every worker has a client that wants everything (dashboards);
`narrow` = each worker's clients want 2% of the agents of one category.

    python benchmarks/bench_redis_channels.py [--events 20000] [--workers 2,8,32] [--json out.json]

Run outside the test suite; figures in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

import orjson
from private_redis import private_redis
from redis.asyncio import Redis

CATEGORIES = ["agent", "tdd", "workflow", "system", "github", "deploy"]
BATCH = 50  # events per publish call (the gateway's HTTP API batches too)


def redis_cpu(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def make_events(n: int, resources: int, seed: int = 7) -> list[tuple[str, str, bytes]]:
    """(category, resource, payload) of n events."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cat = CATEGORIES[i % len(CATEGORIES)]
        res = f"a{rng.randrange(resources)}"
        body = orjson.dumps({"id": f"e{i}", "type": f"{cat}_event", "timestamp": 1700000000000,
                             "data": {"agentId": res, "status": "busy", "pad": "x" * 200}})
        out.append((cat, res, body))
    return out


def channels_for(mapping: str, cat: str, res: str) -> str:
    if mapping == "one":
        return "ev"
    if mapping == "category":
        return f"ev:{cat}"
    return f"ev:{cat}:{res}"


def interest(mapping: str, scope: str, worker: int, resources: int) -> list[str]:
    """The channels a worker subscribes to for its clients' interest."""
    if mapping == "one":
        return ["ev"]
    if scope == "broad":
        if mapping == "category":
            return [f"ev:{c}" for c in CATEGORIES]
        return [f"ev:{c}:a{r}" for c in CATEGORIES for r in range(resources)]
    rng = random.Random(worker)
    wanted = rng.sample(range(resources), max(1, resources // 50))
    if mapping == "category":
        return ["ev:agent"]
    return [f"ev:agent:a{r}" for r in wanted]


async def run_case(url: str, mapping: str, scope: str, workers: int, events: list[tuple[str, str, bytes]],
                   resources: int) -> dict[str, Any]:
    admin = Redis.from_url(url)
    await admin.flushall()
    counts = [0] * workers
    parsed = [0] * workers
    subs = []
    for w in range(workers):
        client = Redis.from_url(url)
        ps = client.pubsub()
        chans = interest(mapping, scope, w, resources)
        for i in range(0, len(chans), 1000):
            await ps.subscribe(*chans[i:i + 1000])
        subs.append((client, ps))
    # wait for every subscription confirmation
    for _, ps in subs:
        while True:
            msg = await ps.get_message(timeout=0.01)
            if msg is None:
                break
    done = asyncio.Event()
    stop = False

    async def reader(w: int, ps: Any) -> None:
        while not stop:
            msg = await ps.get_message(timeout=0.05)
            if msg is None or msg["type"] not in ("message", "pmessage"):
                continue
            counts[w] += 1
            # a worker parses what it receives (one event or a batch of lines)
            for line in msg["data"].split(b"\n"):
                orjson.loads(line)
                parsed[w] += 1
            done.set()

    cpu_before = time.process_time()
    info0 = await admin.info("cpu")
    tasks = [asyncio.create_task(reader(w, ps)) for w, (_, ps) in enumerate(subs)]
    pub = Redis.from_url(url)
    t0 = time.perf_counter()
    for i in range(0, len(events), BATCH):
        chunk = events[i:i + BATCH]
        pipe = pub.pipeline(transaction=False)
        # one message per channel per batch, as the gateway's script publishes a
        # batch (one channel: the whole batch is one message)
        groups: dict[str, list[bytes]] = {}
        for cat, res, body in chunk:
            groups.setdefault(channels_for(mapping, cat, res), []).append(body)
        for channel, bodies in groups.items():
            pipe.publish(channel, b"\n".join(bodies))
        await pipe.execute()
    publish_s = time.perf_counter() - t0
    # drain
    expected = sum(parsed)  # grows; wait until it is stable
    while True:
        await asyncio.sleep(0.2)
        if sum(parsed) == expected:
            break
        expected = sum(parsed)
    stop = True
    await asyncio.gather(*tasks)
    info1 = await admin.info("cpu")
    worker_cpu = time.process_time() - cpu_before
    for client, ps in subs:
        await ps.aclose()
        await client.aclose()
    await pub.aclose()
    await admin.aclose()
    n = len(events)
    return {
        "mapping": mapping, "scope": scope, "workers": workers, "events": n,
        "publish_per_s": round(n / publish_s),
        "redis_cpu_us_per_event": round((redis_cpu(info1) - redis_cpu(info0)) / n * 1e6, 2),
        "messages_to_workers": sum(counts),
        "events_to_workers": sum(parsed),
        # includes the publisher's client CPU (same process), identical across mappings
        "client_cpu_us_per_event": round(worker_cpu / n * 1e6, 1),
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    async with private_redis(pin_cpu=0) as url:
        events = make_events(args.events, args.resources)
        results = []
        for workers in args.workers:
            for scope in ("broad", "narrow"):
                for mapping in ("one", "category", "resource"):
                    row = await run_case(url, mapping, scope, workers, events, args.resources)
                    results.append(row)
                    print(json.dumps(row), flush=True)
        return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--resources", type=int, default=1000)
    p.add_argument("--workers", default="2,8,32")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    results = asyncio.run(main_async(args))
    print("\n| workers | interest | mapping | Redis CPU µs/event | msgs to workers | events parsed "
          "by workers | client CPU µs/event | publish/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workers']} | {r['scope']} | {r['mapping']} | {r['redis_cpu_us_per_event']} | "
              f"{r['messages_to_workers']} | {r['events_to_workers']} | {r['client_cpu_us_per_event']} | "
              f"{r['publish_per_s']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cluster client queues commands past its connections per node instead of refusing them.

redis-py's `RedisCluster` raises `MaxConnectionsError` when a node has
`max_connections` commands in flight; the broker took that for an outage and
a gateway closed connections that opened together (each reads every
partition's head) with 1013. Found by benchmarks/bench_cluster.py at N=200.
"""

from __future__ import annotations

import asyncio

from autosdlc_ws.broker.partitioned_log import PartitionedEventLog
from tests.redis.cluster import LocalCluster
from tests.redis.conftest import TEST_PARTITIONS, make_cluster_broker


async def test_many_heads_at_once_all_answer(redis_cluster: LocalCluster, prefix: str) -> None:
    broker = make_cluster_broker(redis_cluster.url, prefix)
    await broker.start(lambda _: None)
    try:
        assert isinstance(broker.log, PartitionedEventLog)
        # 128 heads x 4 partitions = 512 scripts at once over 3 masters: past 64 connections per node
        heads = await asyncio.gather(*(broker.log.head() for _ in range(128)), return_exceptions=True)
        failed = [h for h in heads if isinstance(h, BaseException)]
        assert not failed, f"{len(failed)} of 128 failed, first {failed[0]!r}"
        assert all(len(h.parts) == TEST_PARTITIONS for h in heads if not isinstance(h, BaseException))
    finally:
        await broker.close()

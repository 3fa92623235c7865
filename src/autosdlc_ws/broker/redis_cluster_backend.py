"""The Redis Cluster backend (`redis-cluster://host:port[,host:port...]`, CONTRACT §12).

Registered in `broker.registry`. Built from the single-Redis pieces on a
`ClusterTarget` (commands through redis-py's `RedisCluster`, readers on the
node owning their channel's slot, sharded Pub/Sub):

    {<name>:p<i>}:...        partition i of the event log (`PartitionedEventLog`):
                             epoch, seq, log, ids, last values and its channel;
                             the hash tags are chosen so the partitions' slots
                             spread evenly over the slot space, hence over masters
    <name>:session:{<id>}    one session, in the slot of its own id
    {<name>}:slots:... rate:  shared limits (multi-key scripts: one slot)
    {<name>}:nodes ...        the control channel (registry, leases, commands)

`<name>` is `redis_prefix` without its braces and trailing colon
(`{autosdlc}:` -> `autosdlc`). Retention (`history_max_events`,
`snapshot_max_keys`) applies to each partition: a busy resource's partition
keeps as much history as one Redis would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from autosdlc_ws.broker.backend import Backend
from autosdlc_ws.broker.partitioned_log import PartitionedEventLog
from autosdlc_ws.broker.redis_control import RedisControlChannel
from autosdlc_ws.broker.redis_limits import RedisSharedLimits
from autosdlc_ws.broker.redis_link import RedisLink
from autosdlc_ws.broker.redis_log import RedisEventLog
from autosdlc_ws.broker.redis_sessions import RedisSessionStore
from autosdlc_ws.broker.redis_target import ClusterTarget

if TYPE_CHECKING:
    from autosdlc_ws.config import Settings


def base_name(prefix: str) -> str:
    """`{autosdlc}:` -> `autosdlc`: the name the cluster's key families are built from."""
    return prefix.replace("{", "").replace("}", "").rstrip(":") or "autosdlc"


def partition_tags(name: str, partitions: int) -> list[str]:
    """One hash tag per partition, partition i's slot in the i-th K-th of the slot
    space: Redis Cluster gives each master a contiguous slot range, so the
    partitions spread over the masters as evenly as the ranges allow."""
    tags = []
    for i in range(partitions):
        low = i * REDIS_CLUSTER_HASH_SLOTS // partitions
        high = (i + 1) * REDIS_CLUSTER_HASH_SLOTS // partitions
        suffix = 0
        while True:
            tag = f"{name}:p{i}" if suffix == 0 else f"{name}:p{i}.{suffix}"
            if low <= key_slot(tag.encode()) < high:
                break
            suffix += 1
        tags.append(tag)
    return tags


def redis_cluster_backend(
    url: str,
    *,
    prefix: str = "{autosdlc}:",
    partitions: int = 16,
    readers: str = "needed",
    linger_s: float = 30.0,
    max_events: int = 100_000,
    max_age_s: float = 3600.0,
    reconnect_min_s: float = 0.05,
    reconnect_max_s: float = 5.0,
    connect_timeout_s: float = 1.0,
    command_timeout_s: float = 5.0,
    catch_up_timeout_s: float = 5.0,
    idle_ping_s: float = 2.0,
    start_timeout_s: float = 5.0,
    alert_after_s: float = 1.0,
    slot_lease_s: float = 30.0,
    snapshot_max_keys: int = 100_000,
    snapshot_ttl_s: float = 86_400.0,
    recent_events: int = 10_000,
) -> Backend:
    name = base_name(prefix)
    shared = f"{{{name}}}:"
    link = RedisLink(url, prefix=shared, connect_timeout_s=connect_timeout_s,
                     command_timeout_s=command_timeout_s, target=ClusterTarget(url))
    logs = [
        RedisEventLog(link.view(f"{{{tag}}}:"), max_events=max_events, max_age_s=max_age_s,
                      reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s,
                      catch_up_timeout_s=catch_up_timeout_s, idle_ping_s=idle_ping_s,
                      start_timeout_s=start_timeout_s, alert_after_s=alert_after_s,
                      snapshot_max_keys=snapshot_max_keys, snapshot_ttl_s=snapshot_ttl_s, partition=i,
                      recent_events=-(-recent_events // partitions))  # the worker's total, shared out
        for i, tag in enumerate(partition_tags(name, partitions))
    ]
    return Backend(
        name="redis-cluster",
        log=PartitionedEventLog(logs, link, readers=readers, linger_s=linger_s),
        sessions=RedisSessionStore(link, key_of=lambda session_id: f"{name}:session:{{{session_id}}}"),
        limits=RedisSharedLimits(link, slot_lease_s=slot_lease_s),
        control=RedisControlChannel(url, prefix=shared, connect_timeout_s=connect_timeout_s,
                                    reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s,
                                    idle_ping_s=idle_ping_s, target=ClusterTarget(url)),
    )


def backend_from_settings(settings: Settings) -> Backend:
    """The `redis-cluster://` registration (`broker.registry`)."""
    return redis_cluster_backend(settings.broker, prefix=settings.redis_prefix, partitions=settings.redis_partitions,
                                 readers=settings.redis_partition_readers,
                                 max_events=settings.history_max_events, max_age_s=settings.history_max_age_s,
                                 reconnect_max_s=settings.redis_reconnect_max_s,
                                 slot_lease_s=settings.connection_slot_lease_s,
                                 snapshot_max_keys=settings.snapshot_max_keys,
                                 snapshot_ttl_s=settings.snapshot_ttl_s,
                                 recent_events=settings.history_cache_events)

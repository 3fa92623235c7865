"""Cluster size on paper: from measured costs to masters, partitions, workers and hosts.

Pure arithmetic, no I/O, so the estimate in docs/architecture.md ("Redis
Cluster: measured") can be redone and is tested. The costs come from
benchmarks/bench_cluster.py (Redis and subscriber CPU) and `autosdlc-ws
bench` (deliveries per gateway CPU-second). Each cost that depends on how
many events travel together is a fixed part per call or message plus a part
per event (`Split`), measured at 1 and at 50 events per call.

The model, per second, for `events_per_s` events arriving `events_per_call`
to a partition per script call (one Pub/Sub message per call):

- Redis: the publish script, plus one message sent to each worker that
  subscribes to the partition (`workers x interest` of them);
- a worker (one process per core): its share of the deliveries, plus
  receiving and parsing the `interest` share of all events, a cost that
  adding workers does not spread: it caps what `interest` can be;
- every core planned at `utilisation`, workers also bounded by the
  connections one process should hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Split:
    """A cost in µs: `per_call` for each call or message, `per_event` for each event in it."""

    per_call: float
    per_event: float

    def per_event_at(self, events_per_call: float) -> float:
        return self.per_call / events_per_call + self.per_event

    @classmethod
    def from_runs(cls, single_us: float, batch_us: float, batch: float) -> Split:
        """From µs per event measured at 1 event per call and at `batch` events per call."""
        if batch <= 1:
            raise ValueError("batch must be above 1")
        per_call = max(0.0, (single_us - batch_us) / (1 - 1 / batch))
        return cls(per_call, max(0.0, single_us - per_call))


@dataclass(frozen=True, slots=True)
class Load:
    connections: int
    events_per_s: float
    fanout: float  # connections that receive each event, on average
    interest: float = 1.0  # share of the partitions (so of all events) each worker subscribes to
    events_per_call: float = 1.0  # events of one partition per publish script call


@dataclass(frozen=True, slots=True)
class Costs:
    deliveries_per_core_s: float  # gateway, per server CPU-second
    worker_receive: Split  # gateway CPU to receive and parse events from Redis
    redis_publish: Split  # Redis CPU of the publish script
    redis_send: Split  # Redis CPU to send a message to one subscribed worker
    connections_per_worker: int = 20_000
    cores_per_host: int = 16
    utilisation: float = 0.5


@dataclass(frozen=True, slots=True)
class Plan:
    deliveries_per_s: float
    workers: int
    workers_for_cpu: int
    workers_for_connections: int
    receive_cores_per_worker: float
    hosts: int
    redis_cores: float  # Redis CPU needed, in cores (before utilisation)
    masters: int
    partitions: int
    partition_events_per_s: float  # events per second through one partition


def next_power_of_two(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def plan(load: Load, costs: Costs, *, min_partitions: int = 16, partitions_per_master: int = 4) -> Plan:
    """The smallest deployment that carries `load` at `costs`.

    Raises ValueError when no number of workers suffices: receiving its
    share of the events alone would fill a worker (narrow `interest`)."""
    if not 0 < costs.utilisation <= 1:
        raise ValueError("utilisation must be in (0, 1]")
    epc = load.events_per_call
    deliveries = load.events_per_s * load.fanout
    receive = load.events_per_s * load.interest * costs.worker_receive.per_event_at(epc) / 1e6
    spare = costs.utilisation - receive
    if spare <= 0:
        raise ValueError(f"receiving {load.interest:.0%} of {load.events_per_s:,.0f} events/s takes "
                         f"{receive:.2f} cores per worker")
    for_cpu = math.ceil(deliveries / costs.deliveries_per_core_s / spare)
    for_connections = math.ceil(load.connections / costs.connections_per_worker)
    workers = max(1, for_cpu, for_connections)
    subscribers = workers * load.interest  # per partition, on average
    redis = load.events_per_s * (costs.redis_publish.per_event_at(epc)
                                 + subscribers * costs.redis_send.per_event_at(epc)) / 1e6
    masters = max(1, math.ceil(redis / costs.utilisation))
    partitions = max(min_partitions, next_power_of_two(masters * partitions_per_master))
    return Plan(deliveries_per_s=deliveries, workers=workers, workers_for_cpu=for_cpu,
                workers_for_connections=for_connections, receive_cores_per_worker=receive,
                hosts=math.ceil(workers / costs.cores_per_host), redis_cores=redis, masters=masters,
                partitions=partitions, partition_events_per_s=load.events_per_s / partitions)

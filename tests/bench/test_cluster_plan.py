"""The paper estimate's arithmetic (`bench.cluster_plan`): splits, workers, masters, partitions."""

from __future__ import annotations

import pytest

from autosdlc_ws.bench.cluster_plan import Costs, Load, Split, next_power_of_two, plan


def test_a_split_recovers_its_parts_from_two_runs() -> None:
    split = Split(per_call=40.0, per_event=10.0)
    got = Split.from_runs(split.per_event_at(1), split.per_event_at(50), 50)
    assert got.per_call == pytest.approx(40.0)
    assert got.per_event == pytest.approx(10.0)
    assert Split.from_runs(5.0, 7.0, 50) == Split(0.0, 5.0)  # noise that makes a part negative: zero
    with pytest.raises(ValueError):
        Split.from_runs(5.0, 4.0, 1)


def test_next_power_of_two() -> None:
    assert [next_power_of_two(n) for n in (0, 1, 2, 3, 4, 5, 17)] == [1, 1, 2, 4, 4, 8, 32]


COSTS = Costs(deliveries_per_core_s=100_000, worker_receive=Split(60.0, 5.0), redis_publish=Split(40.0, 20.0),
              redis_send=Split(4.0, 1.0), connections_per_worker=20_000, cores_per_host=16, utilisation=0.5)


def test_workers_bound_by_connections_then_by_cpu() -> None:
    few = plan(Load(1_000_000, 1000.0, 10.0, interest=0.1), COSTS)
    # 10k deliveries/s are nothing; 1M connections at 20k per worker are 50 workers
    assert (few.workers, few.workers_for_connections, few.hosts) == (50, 50, 4)
    busy = plan(Load(1_000_000, 100_000.0, 100.0, interest=0.05, events_per_call=10.0), COSTS)
    # receive: 100k x 5 % x (60/10 + 5) µs = 0.055 cores; 10M deliveries / 100k / (0.5 - 0.055)
    assert busy.receive_cores_per_worker == pytest.approx(0.055)
    assert busy.workers_for_cpu == 225 and busy.workers == 225 and busy.hosts == 15
    # Redis: 100k x ((40/10 + 20) + 225 x 5 % x (4/10 + 1)) µs = 3.975 cores -> 8 masters at 50 %
    assert busy.redis_cores == pytest.approx(3.975)
    assert busy.masters == 8 and busy.partitions == 32
    assert busy.partition_events_per_s == pytest.approx(100_000 / 32)


def test_a_worker_that_cannot_even_receive_its_share_is_refused() -> None:
    with pytest.raises(ValueError, match="cores per worker"):
        plan(Load(1_000_000, 100_000.0, 10.0, interest=1.0), COSTS)  # 6.5 cores to receive everything
    with pytest.raises(ValueError):
        plan(Load(1, 1.0, 1.0), Costs(1.0, Split(0, 0), Split(0, 0), Split(0, 0), utilisation=0.0))

"""The soak run's verdict on plain values: sequence accounting, memory growth, log levels,
and its timeline of faults. No server, no clock."""

from __future__ import annotations

from typing import Any

import pytest

from autosdlc_ws.bench.soak_plan import FAULT_GAP_S, TAIL_S, SoakPlan, split, timeline
from autosdlc_ws.bench.soak_verdict import (
    SeqTracker,
    classify_log,
    delivery_totals,
    log_level,
    memory_growth,
    named_rss,
    survivors_rss,
    verdict,
)


def tracked(seqs: list[int], first: int | None = 0) -> SeqTracker:
    tracker = SeqTracker(first=first)
    for seq in seqs:
        tracker.add(seq)
    return tracker


def test_every_event_once_in_order_is_clean() -> None:
    t = tracked(list(range(10)))
    assert (t.received, t.lost, t.duplicated, t.tail_lost(9)) == (10, 0, 0, 0)


def test_a_gap_counts_each_skipped_event_as_lost() -> None:
    t = tracked([0, 1, 4, 5, 9])
    assert (t.lost, t.duplicated) == (2 + 3, 0)
    assert t.gaps == [[1, 4], [5, 9]]  # where they were, to line up with the run's faults


def test_a_repeated_or_late_event_counts_as_duplicated() -> None:
    t = tracked([0, 1, 2, 2, 1, 3])
    assert (t.lost, t.duplicated, t.last) == (0, 2, 3)


def test_a_missing_start_is_lost_when_the_first_number_is_known() -> None:
    assert tracked([3, 4]).lost == 3
    joined_late = tracked([3, 4], first=None)
    assert (joined_late.lost, joined_late.first) == (0, 3)


def test_the_tail_never_received_is_lost() -> None:
    assert tracked([0, 1, 2]).tail_lost(6) == 4
    assert SeqTracker(first=0).tail_lost(4) == 5  # nothing at all arrived
    assert SeqTracker(first=None).tail_lost(4) == 0  # a late joiner that saw nothing: nothing owed
    assert tracked([0, 1]).tail_lost(None) == 0  # its resource was never published


def test_delivery_totals_add_gaps_tails_and_duplicates_over_clients() -> None:
    clients = [
        {"resource": "a", "tracker": tracked([0, 1, 2]).to_json()},
        {"resource": "a", "tracker": tracked([0, 2, 2]).to_json()},  # 1 lost, 1 duplicated
        {"resource": "b", "tracker": tracked([0, 1]).to_json()},  # tail: 2, 3 never came
    ]
    totals = delivery_totals(clients, {"a": 2, "b": 3})
    assert totals == {"clients": 3, "received": 8, "lost": 3, "duplicated": 1, "tail_lost": 2,
                      "clients_with_loss": 2, "clients_with_duplicates": 1}


def test_memory_growth_compares_the_first_and_last_samples_after_warm_up() -> None:
    samples = [(0.0, 50.0), (5.0, 90.0)] + [(10.0 + i, 100.0 + i) for i in range(10)]
    result = memory_growth(samples, warmup_s=10.0, window=3)
    assert result["first_mean"] == pytest.approx(101.0)
    assert result["last_mean"] == pytest.approx(108.0)
    assert result["growth"] == pytest.approx(7 / 101)
    assert result["samples"] == 10


def test_memory_growth_is_unjudged_when_the_run_is_too_short() -> None:
    assert memory_growth([(10.0, 1.0)] * 5, warmup_s=0.0, window=3)["growth"] is None


def test_survivors_leave_out_a_process_that_was_replaced() -> None:
    def sample(t: float, per: dict[str, int]) -> dict[str, Any]:
        return {"t": t, "per_pid": {p: {"rss_bytes": b, "fds": 1} for p, b in per.items()}}

    samples = [sample(0, {"1": 5, "2": 5, "3": 5}), sample(10, {"1": 10, "2": 20, "3": 30}),
               sample(20, {"1": 11, "2": 21, "4": 3})]  # worker 3 killed, 4 replaced it
    assert survivors_rss(samples, warmup_s=10) == [(10, 30.0), (20, 32.0)]
    assert survivors_rss(samples, warmup_s=99) == []


def test_named_rss_counts_only_the_workers_whatever_runs_beside_them() -> None:
    def proc(name: str, rss: int) -> dict[str, Any]:
        return {"rss_bytes": rss, "fds": 1, "name": name}

    samples = [{"t": 0, "per_pid": {"1": proc("python", 50), "2": proc("python", 70),
                                    "3": proc("autosdlc-ws-w0", 100), "4": proc("autosdlc-ws-w1", 110)}},
               {"t": 10, "per_pid": {"1": proc("python", 50), "5": proc("autosdlc-ws-w0", 90),
                                     "4": proc("autosdlc-ws-w1", 120), "6": proc("gone", 0)}},
               {"t": 20, "per_pid": {"7": {"rss_bytes": 9, "fds": 1}}}]  # a sample from before names
    assert named_rss(samples, "autosdlc-ws-w") == [(0, 210.0), (10, 210.0), (20, 0.0)]


@pytest.mark.parametrize(("line", "level"), [
    ('ts=2026-12-03T09:32:42.846Z level=WARNING logger=autosdlc_ws.broker.redis msg="x level=ERROR"',
     "WARNING"),
    ("ts=2026-12-03T09:32:42.846Z level=ERROR logger=autosdlc_ws.ws msg=boom", "ERROR"),
    ('{"ts": 1.0, "level": "critical", "logger": "x", "msg": "y"}', "CRITICAL"),
    ("Traceback (most recent call last):", "TRACEBACK"),
    ("autosdlc-ws: worker 0 (pid 10501) exited with signal 9; restarting", None),
    ("   ", None),
])
def test_log_lines_are_classified_by_the_level_the_formatter_wrote(line: str, level: str | None) -> None:
    assert log_level(line) == level


def test_classify_log_counts_levels_and_keeps_the_error_lines() -> None:
    lines = ["level=INFO msg=a", "level=ERROR msg=b", "plain", "Traceback (most recent call last):",
             "level=WARNING msg=c"]
    result = classify_log(lines)
    assert result["levels"] == {"INFO": 1, "ERROR": 1, "PLAIN": 1, "TRACEBACK": 1, "WARNING": 1}
    assert result["error_lines"] == 2
    assert result["first_errors"] == ["level=ERROR msg=b", "Traceback (most recent call last):"]


CLEAN = {"clients": 5, "lost": 0, "duplicated": 0}


def test_verdict_passes_only_when_every_check_passes() -> None:
    ok = verdict({"growth": 0.01}, CLEAN, {"error_lines": 0})
    assert ok["pass"] and all(ok["checks"].values())
    assert not verdict({"growth": 0.05}, CLEAN, {"error_lines": 0})["checks"]["memory_flat"]
    assert not verdict({"growth": 0.01}, {**CLEAN, "lost": 1}, {"error_lines": 0})["checks"]["no_loss"]
    assert not verdict({"growth": 0.01}, {**CLEAN, "duplicated": 2}, {"error_lines": 0})["pass"]
    assert not verdict({"growth": 0.01}, CLEAN, {"error_lines": 1})["checks"]["no_error_logs"]


def test_a_check_that_could_not_be_judged_fails() -> None:
    assert not verdict({"growth": None}, CLEAN, {"error_lines": 0})["checks"]["memory_flat"]
    no_clients = verdict({"growth": 0.0}, {"clients": 0, "lost": 0, "duplicated": 0}, {"error_lines": 0})
    assert not no_clients["checks"]["no_loss"] and not no_clients["pass"]


def test_the_timeline_spaces_storms_from_the_other_faults_and_leaves_a_quiet_tail() -> None:
    plan = SoakPlan(duration=1800, storm_every=300)
    events = timeline(plan)
    assert (900.0, "redis_restart") in events and (1260.0, "worker_kill") in events
    storms = [t for t, kind in events if kind == "storm"]
    assert storms == [150.0, 450.0, 750.0, 1050.0, 1350.0, 1650.0]
    assert all(t <= plan.duration - TAIL_S for t, _ in events)
    faults = [t for t, kind in events if kind != "storm"]
    assert all(abs(s - f) >= FAULT_GAP_S for s in storms for f in faults)


def test_the_timeline_drops_a_storm_too_close_to_a_fault_and_faults_switched_off() -> None:
    close = timeline(SoakPlan(duration=100, storm_every=100))  # storm at 50 = the Redis restart
    assert [kind for _, kind in close] == ["redis_restart", "worker_kill"]
    quiet = timeline(SoakPlan(duration=100, storm_every=0, redis_restart=False, worker_kill=False))
    assert quiet == []


def test_split_spreads_a_total_evenly() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(5, 1) == [5]
    assert sum(split(4999, 2)) == 4999


def test_the_gateway_environment_is_part_of_the_plan() -> None:
    from autosdlc_ws.bench.soak import parse_args, plan_from

    plan = plan_from(parse_args(["--quick", "--server-env", "PYTHONMALLOC=malloc",
                                 "--server-env", "AUTOSDLC_WS_HISTORY_CACHE_EVENTS=0"]))
    assert plan.server_env == {"PYTHONMALLOC": "malloc", "AUTOSDLC_WS_HISTORY_CACHE_EVENTS": "0"}
    assert plan.to_json()["server_env"] == plan.server_env
    with pytest.raises(SystemExit):
        plan_from(parse_args(["--server-env", "NO_EQUALS_SIGN"]))

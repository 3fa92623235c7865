"""Subscription counts of one node: connections per resource and per type, plain values."""

from __future__ import annotations

import random

from autosdlc_ws.core.subscription_counts import (
    SubscriberCounts,
    SubscriptionShape,
    count_subscribers,
    resources_of,
    top_counts,
)


def shape(types: set[str], **filters: set[str]) -> SubscriptionShape:
    return SubscriptionShape(frozenset(types), {k: frozenset(v) for k, v in filters.items()})


def test_resources_of_names_each_filtered_resource_or_everything() -> None:
    assert resources_of(shape({"agent_status"}, agentId={"a1", "a2"})) == {"agent:a1", "agent:a2"}
    assert resources_of(shape({"github_pr_update"}, repository={"o/r"}, taskId={"t"})) == {"repo:o/r", "task:t"}
    assert resources_of(shape({"agent_status"})) == {"*"}
    assert resources_of(shape({"agent_status"}, unknownKey={"x"})) == {"*"}


def test_a_connection_counts_once_per_resource_and_type_however_many_subscriptions() -> None:
    alice = [shape({"agent_status", "agent_log"}, agentId={"a1"}), shape({"agent_status"}, agentId={"a1", "a2"})]
    bob = [shape({"agent_status"}, agentId={"a1"})]
    dashboard = [shape({"agent_status", "test_result"})]
    idle: list[SubscriptionShape] = []
    resources, types = count_subscribers([alice, bob, dashboard, idle])
    assert resources == {"agent:a1": 2, "agent:a2": 1, "*": 1}
    assert types == {"agent_status": 3, "agent_log": 1, "test_result": 1}


def test_top_counts_bounds_the_rows_and_folds_the_rest_into_other() -> None:
    counts = {"agent:a": 5, "agent:b": 3, "agent:c": 3, "agent:d": 1}
    assert top_counts(counts, 2) == {"agent:a": 5, "agent:b": 3, "other": 4}
    assert top_counts(counts, 10) == counts
    assert top_counts({}, 3) == {}


def test_running_counts_match_a_count_from_scratch_after_any_changes() -> None:
    rng = random.Random(7)
    shapes = [shape({"agent_status"}, agentId={"a1"}), shape({"agent_status", "agent_log"}, agentId={"a1", "a2"}),
              shape({"agent_log"}, taskId={"t1"}), shape({"agent_metric"})]
    counts = SubscriberCounts()
    held: dict[str, dict[str, SubscriptionShape]] = {}
    for step in range(2000):
        owner = f"conn{rng.randrange(6)}"
        action = rng.random()
        if action < 0.55:
            sub_id = f"s{rng.randrange(4)}"  # sometimes an id the owner holds: replaced
            chosen = rng.choice(shapes)
            counts.add(owner, sub_id, chosen)
            held.setdefault(owner, {})[sub_id] = chosen
        elif action < 0.9:
            sub_id = f"s{rng.randrange(4)}"
            counts.remove(owner, sub_id)
            held.get(owner, {}).pop(sub_id, None)
        else:
            counts.drop_owner(owner)
            held.pop(owner, None)
        if step % 50 == 0 or step == 1999:
            assert counts.counts() == count_subscribers(list(subs.values()) for subs in held.values())
    counts_after = SubscriberCounts()
    counts_after.add("c", "s", shapes[0])
    counts_after.drop_owner("c")
    assert counts_after.counts() == ({}, {})


def test_top_counts_keeps_ties_by_name_and_sums_the_rest() -> None:
    assert top_counts({"b": 2, "a": 2, "c": 1, "d": 1}, 2) == {"a": 2, "b": 2, "other": 2}
    assert top_counts({"a": 1}, 5) == {"a": 1}

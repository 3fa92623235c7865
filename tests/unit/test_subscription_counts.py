"""Subscription counts of one node: connections per resource and per type, plain values."""

from __future__ import annotations

from autosdlc_ws.core.subscription_counts import SubscriptionShape, count_subscribers, resources_of, top_counts


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

"""Which partition an event goes to, and which partitions a subscription listens to."""

from __future__ import annotations

from autosdlc_ws.core.partitions import (
    PartitionDemand,
    affected,
    partition_of,
    partition_of_key,
    partition_scope,
    resource_key,
)

K = 16


def test_an_event_goes_by_the_resource_its_type_requires() -> None:
    assert resource_key("agent_status", {"agentId": "a1", "workflowId": "w1"}) == 'agentId="a1"'
    # a workflow event that names an agent stays with its workflow, behind workflow_started
    assert resource_key("workflow_step_complete", {"workflowId": "w1", "agentId": "a9"}) == 'workflowId="w1"'
    assert resource_key("github_pr_update", {"repository": "o/r", "agentId": "a1"}) == 'repository="o/r"'
    assert resource_key("system_alert", {"agentId": "a1"}) == 'agentId="a1"'  # no required key: first present
    assert resource_key("system_notification", {"message": "m"}) == "type=system_notification"
    assert resource_key("agent_status", {"agentId": 7}) == "type=agent_status"  # not a string: by type


def test_partitions_are_stable_and_spread() -> None:
    assert partition_of_key('agentId="a1"', K) == partition_of_key('agentId="a1"', K)
    assert partition_of_key("anything", 1) == 0
    seen = {partition_of("agent_status", {"agentId": f"a{i}"}, K) for i in range(400)}
    assert seen == set(range(K))
    # the same resource, whatever the type, shares a partition: order holds per resource
    assert partition_of("agent_status", {"agentId": "a1"}, K) == \
        partition_of("tdd_phase_change", {"agentId": "a1", "taskId": "t1"}, K)


def test_a_subscription_on_the_required_key_listens_to_its_partitions_only() -> None:
    a1 = partition_of("agent_status", {"agentId": "a1"}, K)
    a2 = partition_of("agent_status", {"agentId": "a2"}, K)
    agent_types = ["agent_status", "agent_log"]
    assert partition_scope(agent_types, {"agentId": ["a1", "a2"]}, K) == frozenset({a1, a2})
    alert = partition_of("system_alert", {}, K)
    assert partition_scope(["system_alert"], {}, K) == frozenset({alert})
    # a filter on another key: events of agent a9 on workflow w1 live in a9's partition
    assert partition_scope(["agent_status"], {"workflowId": ["w1"]}, K) is None
    assert partition_scope(["agent_status"], {}, K) is None
    assert partition_scope(["agent_status"], {}, 1) == frozenset({0})


def test_a_lost_partition_affects_only_subscriptions_that_can_hear_it() -> None:
    assert affected(frozenset({1, 2}), frozenset({2}))
    assert not affected(frozenset({1}), frozenset({2}))
    assert affected(None, frozenset({2}))  # listens to every partition
    assert affected(frozenset({1}), None)  # every partition lost


def test_demand_counts_subscriptions_per_partition() -> None:
    demand = PartitionDemand(4)
    demand.add("c1", "s1", frozenset({1}))
    demand.add("c2", "s2", None)  # a dashboard: every partition
    assert demand.counts == [1, 2, 1, 1]
    assert demand.remove("c2", "s2") == frozenset({0, 2, 3})
    assert demand.remove("c2", "s2") == frozenset()  # twice is harmless
    demand.add("c1", "s3", frozenset({1, 2}))
    demand.add("c1", "s3", frozenset({3}))  # replaced, not added twice
    assert demand.counts == [0, 1, 0, 1]
    assert demand.drop_owner("c1") == frozenset({1, 3})
    assert demand.counts == [0, 0, 0, 0] and demand.drop_owner("c1") == frozenset()

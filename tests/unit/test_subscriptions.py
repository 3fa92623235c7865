"""The subscription index: patterns, filters, matching, and a brute-force oracle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autosdlc_ws.core import messages
from autosdlc_ws.core.subscriptions import (
    PatternError,
    Subscription,
    SubscriptionIndex,
    expand_patterns,
    normalise_filters,
)

EVENT_TYPES = messages.EVENT_TYPES
AGENT_TYPES = {"agent_status", "agent_task_update", "agent_log", "agent_metric", "agent_error"}


def sub(
    sub_id: str, owner: str, types: set[str] | list[str], filters: Mapping[str, Any] | None = None
) -> Subscription[str]:
    patterns = tuple(sorted(types))
    return Subscription(sub_id, owner, patterns, frozenset(types), normalise_filters(filters))


def assert_index_empty(index: SubscriptionIndex[Any]) -> None:
    assert len(index) == 0
    assert index._subs == {}
    assert index._by_owner == {}
    assert index._unfiltered == {}
    assert index._unfiltered_snapshot == {}
    assert index._filtered == {}
    assert index._filtered_keys_by_type == {}
    assert index._index_keys == {}


# ----------------------------------------------------------------------- expand_patterns


def test_expand_exact_names() -> None:
    assert expand_patterns(["agent_status"], EVENT_TYPES) == {"agent_status"}
    assert expand_patterns(["agent_status", "system_alert"], EVENT_TYPES) == {"agent_status", "system_alert"}


def test_expand_prefix_glob() -> None:
    assert expand_patterns(["agent_*"], EVENT_TYPES) == AGENT_TYPES
    assert expand_patterns(["workflow_*"], EVENT_TYPES) == {
        "workflow_started", "workflow_step_complete", "workflow_complete", "workflow_failed"}
    assert expand_patterns(["github_pr*"], EVENT_TYPES) == {"github_pr_update"}
    # a glob that names a whole type exactly still matches it
    assert expand_patterns(["agent_status*"], EVENT_TYPES) == {"agent_status"}


def test_expand_star_is_every_event_type_and_no_control_type() -> None:
    types = expand_patterns(["*"], EVENT_TYPES)
    assert types == set(EVENT_TYPES)
    assert not types & set(messages.CONTROL_TYPES)
    assert len(types) == 18


def test_expand_overlapping_patterns_are_a_union() -> None:
    assert expand_patterns(["agent_*", "agent_status", "tdd_phase_change"], EVENT_TYPES) == (
        AGENT_TYPES | {"tdd_phase_change"})


@pytest.mark.parametrize("pattern", ["agent", "nope", "agent_statu", "zzz*", "Agent_status", ""])
def test_expand_unknown_raises(pattern: str) -> None:
    with pytest.raises(PatternError):
        expand_patterns([pattern], EVENT_TYPES)


@pytest.mark.parametrize(
    "pattern", ["connect", "ping", "auth_request", "subscribe", "subscription_update", "error", "auth_*",
                "subscri*", "pon*"])
def test_control_types_are_not_subscribable(pattern: str) -> None:
    with pytest.raises(PatternError):
        expand_patterns([pattern], EVENT_TYPES)


def test_one_bad_pattern_refuses_the_whole_list() -> None:
    with pytest.raises(PatternError):
        expand_patterns(["agent_status", "connect"], EVENT_TYPES)


# --------------------------------------------------------------------- normalise_filters


def test_normalise_filters() -> None:
    assert normalise_filters(None) == {}
    assert normalise_filters({}) == {}
    assert normalise_filters({"agentId": "a"}) == {"agentId": frozenset({"a"})}
    assert normalise_filters({"agentId": ["a"]}) == {"agentId": frozenset({"a"})}
    assert normalise_filters({"agentId": ["a", "b", "a"], "repository": ("o/r",)}) == {
        "agentId": frozenset({"a", "b"}), "repository": frozenset({"o/r"})}


def test_describe_is_sorted_and_json_ready() -> None:
    s = sub("s", "o", ["agent_status", "agent_log"], {"taskId": ["t2", "t1"], "agentId": "a"})
    assert s.describe() == {
        "events": ["agent_log", "agent_status"],
        "filters": {"agentId": ["a"], "taskId": ["t1", "t2"]},
    }


# ------------------------------------------------------------------------------ index


def test_add_and_match_unfiltered() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s1", "alice", AGENT_TYPES))
    assert list(index.match("agent_status", {"agentId": "a1"})) == ["alice"]
    assert list(index.match("workflow_started", {"workflowId": "w"})) == []
    assert len(index) == 1
    assert index.get("s1") is not None and index.get("nope") is None


def test_duplicate_id_refused() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s1", "alice", {"agent_status"}))
    with pytest.raises(ValueError):
        index.add(sub("s1", "bob", {"agent_status"}))
    assert index.of_owner("bob") == []


def test_match_returns_each_owner_once() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("u1", "alice", {"agent_status"}))
    index.add(sub("u2", "alice", AGENT_TYPES))
    index.add(sub("f1", "alice", {"agent_status"}, {"agentId": "a1"}))
    index.add(sub("f2", "bob", {"agent_status"}, {"agentId": ["a1", "a2"]}))
    index.add(sub("f3", "bob", {"agent_status"}, {"taskId": "t1"}))
    index.add(sub("f4", "bob", {"agent_status"}, {"agentId": "a1", "taskId": "t1"}))
    owners = list(index.match("agent_status", {"agentId": "a1", "taskId": "t1"}))
    assert sorted(owners) == ["alice", "bob"]
    assert len(owners) == 2


def test_filters_with_several_keys_and_values() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s", "o", {"agent_log"}, {"agentId": ["a1", "a2"], "taskId": ["t1", "t2", "t3"]}))
    hits = {
        (a, t): bool(index.match("agent_log", {"agentId": a, "taskId": t}))
        for a in ("a1", "a2", "a3") for t in ("t1", "t3", "t4")
    }
    assert hits == {
        ("a1", "t1"): True, ("a1", "t3"): True, ("a1", "t4"): False,
        ("a2", "t1"): True, ("a2", "t3"): True, ("a2", "t4"): False,
        ("a3", "t1"): False, ("a3", "t3"): False, ("a3", "t4"): False,
    }


def test_event_missing_a_filtered_key_does_not_match() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s", "o", {"agent_log"}, {"agentId": "a1", "taskId": "t1"}))
    assert not index.match("agent_log", {"agentId": "a1"})
    assert not index.match("agent_log", {"taskId": "t1"})
    assert index.match("agent_log", {"agentId": "a1", "taskId": "t1"})
    assert not index.match("agent_status", {"agentId": "a1", "taskId": "t1"})  # other type


@pytest.mark.parametrize("bad", [5, None, ["a1"], {"id": "a1"}, True, 1.5])
def test_non_string_data_values_never_match_and_never_crash(bad: object) -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    # indexed by taskId (one value), agentId checked on the candidates only
    index.add(sub("s1", "o1", {"system_alert"}, {"taskId": "t1", "agentId": ["a1", "a2"]}))
    index.add(sub("s2", "o2", {"system_alert"}, {"agentId": "a1"}))
    index.add(sub("s3", "o3", {"system_alert"}))
    assert list(index.match("system_alert", {"taskId": "t1", "agentId": bad})) == ["o3"]
    assert sorted(index.match("system_alert", {"taskId": "t1", "agentId": "a1"})) == ["o1", "o2", "o3"]


def test_matches_does_not_crash_on_unhashable_values() -> None:
    s = sub("s", "o", {"system_alert"}, {"agentId": "a1"})
    assert not s.matches("system_alert", {"agentId": ["a1"]})
    assert not s.matches("system_alert", {"agentId": {"x": 1}})
    assert s.matches("system_alert", {"agentId": "a1"})


def test_index_key_is_the_most_selective_filter() -> None:
    assert sub("s", "o", {"agent_log"}, {"agentId": ["a", "b"], "taskId": "t"}).index_key() == "taskId"
    assert sub("s", "o", {"agent_log"}, {"agentId": "a", "taskId": "t"}).index_key() == "taskId"
    assert sub("s", "o", {"agent_log"}, {"agentId": "a", "repository": "o/r"}).index_key() == "agentId"
    assert sub("s", "o", {"agent_log"}).index_key() is None


def test_index_avoids_a_crowded_bucket_among_equally_selective_keys() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    # 100 watchers of one task, each for another agent: indexing all of them under
    # the task (the static preference) would make every event of the task test all 100
    for i in range(100):
        index.add(sub(f"s{i}", f"o{i}", {"agent_log"}, {"taskId": "t1", "agentId": f"a{i}"}))
    crowded = index._filtered.get(("agent_log", "taskId", "t1"), {})
    assert len(crowded) <= 1
    assert list(index.match("agent_log", {"taskId": "t1", "agentId": "a42"})) == ["o42"]
    # fewer values still wins over an emptier bucket
    index.add(sub("few", "ox", {"agent_log"}, {"taskId": "t1", "agentId": ["a1", "a2"]}))
    assert index._index_keys["few"] == "taskId"


def test_remove() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s1", "alice", {"agent_status"}))
    index.add(sub("s2", "alice", {"agent_status"}, {"agentId": "a1"}))
    removed = index.remove("s1")
    assert removed is not None and removed.id == "s1"
    assert index.remove("s1") is None
    assert list(index.match("agent_status", {"agentId": "a1"})) == ["alice"]  # s2 still there
    assert list(index.match("agent_status", {"agentId": "a2"})) == []
    index.remove("s2")
    assert list(index.match("agent_status", {"agentId": "a1"})) == []
    assert_index_empty(index)


def test_remove_one_of_two_unfiltered_subscriptions_of_an_owner_keeps_the_other() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s1", "alice", {"agent_status"}))
    index.add(sub("s2", "alice", AGENT_TYPES))
    assert list(index.match("agent_status", {})) == ["alice"]
    index.remove("s2")
    assert list(index.match("agent_status", {})) == ["alice"]
    assert list(index.match("agent_log", {})) == []
    index.remove("s1")
    assert list(index.match("agent_status", {})) == []


def test_remove_owner() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add(sub("s1", "alice", {"agent_status"}))
    index.add(sub("s2", "alice", {"agent_log"}, {"agentId": "a1"}))
    index.add(sub("s3", "bob", {"agent_status"}))
    assert index.count_of("alice") == 2
    gone = index.remove_owner("alice")
    assert sorted(s.id for s in gone) == ["s1", "s2"]
    assert index.count_of("alice") == 0 and index.of_owner("alice") == []
    assert list(index.match("agent_status", {})) == ["bob"]
    assert list(index.match("agent_log", {"agentId": "a1"})) == []
    assert index.remove_owner("alice") == []
    index.remove_owner("bob")
    assert_index_empty(index)


def test_snapshot_is_refreshed_after_changes() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    assert list(index.match("agent_status", {})) == []
    index.add(sub("s1", "alice", {"agent_status"}))
    assert list(index.match("agent_status", {})) == ["alice"]
    index.add(sub("s2", "bob", {"agent_status"}))
    assert sorted(index.match("agent_status", {})) == ["alice", "bob"]
    index.remove("s1")
    assert list(index.match("agent_status", {})) == ["bob"]


def test_no_leak_after_matching_and_removing_everything() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    for i in range(50):
        index.add(sub(f"u{i}", f"o{i % 7}", AGENT_TYPES))
        index.add(sub(f"f{i}", f"o{i % 5}", {"agent_log", "tdd_phase_change"},
                      {"agentId": [f"a{i}", "a0"], "taskId": f"t{i % 3}"}))
    for t in EVENT_TYPES:  # matching fills caches; they must not outlive the subscriptions
        index.match(t, {"agentId": "a0", "taskId": "t0"})
    for i in range(0, 50, 2):
        index.remove(f"u{i}")
        index.remove(f"f{i}")
    for o in range(7):
        index.remove_owner(f"o{o}")
    for t in EVENT_TYPES:
        assert not index.match(t, {"agentId": "a0", "taskId": "t0"})
    assert_index_empty(index)


# ------------------------------------------------------- property: index == brute force

OWNERS = ["o0", "o1", "o2", "o3"]
TYPES = ["agent_status", "agent_log", "tdd_phase_change", "system_alert"]
KEYS = ["agentId", "taskId", "workflowId", "repository"]
VALUES = ["v0", "v1", "v2"]

filter_values = st.one_of(st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), min_size=1, max_size=3))
sub_strategy = st.fixed_dictionaries({
    "owner": st.sampled_from(OWNERS),
    "types": st.sets(st.sampled_from(TYPES), min_size=1, max_size=3),
    "filters": st.dictionaries(st.sampled_from(KEYS), filter_values, max_size=3),
})
data_value = st.one_of(
    st.sampled_from(VALUES), st.integers(0, 2), st.none(), st.lists(st.sampled_from(VALUES), max_size=2),
)
event_strategy = st.tuples(
    st.sampled_from(TYPES), st.dictionaries(st.sampled_from(KEYS), data_value, max_size=4))
op_strategy = st.one_of(
    st.tuples(st.just("add"), sub_strategy),
    st.tuples(st.just("remove"), st.integers(0, 40)),
    st.tuples(st.just("remove_owner"), st.sampled_from(OWNERS)),
    st.tuples(st.just("match"), event_strategy),
)


def brute_force(subs: dict[str, dict[str, Any]], event_type: str, data: Mapping[str, Any]) -> set[str]:
    """Owners with a subscription whose types include the event's and whose every
    filter key is in `data` as a string equal to one of the listed values."""
    owners = set()
    for spec in subs.values():
        if event_type not in spec["types"]:
            continue
        ok = True
        for key, raw in spec["filters"].items():
            allowed = [raw] if isinstance(raw, str) else raw
            value = data.get(key)
            if not (isinstance(value, str) and value in allowed):
                ok = False
        if ok:
            owners.add(spec["owner"])
    return owners


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(op_strategy, max_size=60), probes=st.lists(event_strategy, min_size=1, max_size=15))
def test_index_matches_brute_force(
    ops: list[tuple[str, Any]], probes: list[tuple[str, dict[str, Any]]]
) -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    live: dict[str, dict[str, Any]] = {}
    counter = 0

    def check(event_type: str, data: dict[str, Any]) -> None:
        got = list(index.match(event_type, data))
        assert len(got) == len(set(got)), "an owner was returned twice"
        assert set(got) == brute_force(live, event_type, data)

    for op, arg in ops:
        if op == "add":
            sub_id = f"s{counter}"
            counter += 1
            index.add(sub(sub_id, arg["owner"], arg["types"], arg["filters"]))
            live[sub_id] = arg
        elif op == "remove":
            sub_id = f"s{arg}"
            removed = index.remove(sub_id)
            assert (removed is not None) == (sub_id in live)
            live.pop(sub_id, None)
        elif op == "remove_owner":
            removed_ids = {s.id for s in index.remove_owner(arg)}
            expected = {i for i, spec in live.items() if spec["owner"] == arg}
            assert removed_ids == expected
            for i in expected:
                del live[i]
        else:
            check(*arg)
        assert len(index) == len(live)
    for event_type, data in probes:
        check(event_type, data)
    for owner in OWNERS:
        assert index.count_of(owner) == sum(1 for s in live.values() if s["owner"] == owner)
        index.remove_owner(owner)
    assert_index_empty(index)

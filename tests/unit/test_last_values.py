"""The last-value store with plain values: keys, replacement, indexes, bounds, bounded lookups."""

from __future__ import annotations

from typing import Any

import pytest

from autosdlc_ws.core import last_values
from autosdlc_ws.core.last_values import LastValues, as_snapshot, index_tags, lookup_plan, store_key

ALL = frozenset({"agent_status", "agent_tdd_phase", "workflow_progress", "system_notification",
                 "deployment_status"})


def ev(n: int, type_: str = "agent_status", **data: Any) -> dict[str, Any]:
    return {"id": f"e{n}", "type": type_, "timestamp": n, "data": data}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ids(entries: list[last_values.LastValue]) -> list[str]:
    return [e.event["id"] for e in entries]


def test_resource_is_the_first_of_agent_workflow_task_repository_else_the_type() -> None:
    assert store_key("agent_tdd_phase", {"taskId": "t", "agentId": "a"}) == 'agent_tdd_phase|agentId="a"'
    assert store_key("workflow_progress", {"taskId": "t", "workflowId": "w"}) == (
        'workflow_progress|workflowId="w"')
    assert store_key("x", {"repository": "o/r", "taskId": "t"}) == 'x|taskId="t"'
    assert store_key("system_notification", {"level": "info"}) == "system_notification|"
    assert store_key("x", {"agentId": 7}) == "x|"  # only string values name a resource


def test_tags_cannot_be_confused_by_the_characters_of_an_id() -> None:
    assert index_tags({"agentId": 'a"|b'}) == ('agentId="a\\"|b"',)
    # one id's tag is never a prefix of another's, so a prefix lookup finds only its own
    assert not index_tags({"agentId": "a1x"})[0].startswith(index_tags({"agentId": "a1"})[0])


def test_newest_event_per_type_and_resource_oldest_first() -> None:
    store = LastValues()
    store.put(1, ev(1, agentId="a1", status="idle"))
    store.put(2, ev(2, agentId="a2", status="busy"))
    store.put(3, ev(3, "agent_tdd_phase", agentId="a1", taskId="t1"))
    store.put(4, ev(4, agentId="a1", status="busy"))  # replaces e1
    store.put(5, ev(5, "system_notification", level="info"))
    store.put(6, ev(6, "system_notification", level="warning"))  # replaces e5
    assert ids(store.lookup(ALL, {})) == ["e2", "e3", "e4", "e6"]
    assert len(store) == 4


def test_filters_and_types_select_like_live_delivery() -> None:
    store = LastValues()
    store.put(1, ev(1, agentId="a1", workflowId="w1"))
    store.put(2, ev(2, agentId="a2", workflowId="w2"))
    store.put(3, ev(3, "workflow_progress", workflowId="w1"))
    store.put(4, ev(4, "agent_tdd_phase", agentId="a1", taskId="t1"))
    # a filter on a key that is not the event's resource still finds it (indexed by every value)
    assert ids(store.lookup(ALL, {"workflowId": frozenset({"w1"})})) == ["e1", "e3"]
    assert ids(store.lookup(frozenset({"agent_status"}), {"workflowId": frozenset({"w1"})})) == ["e1"]
    assert ids(store.lookup(ALL, {"agentId": frozenset({"a1", "a2"}), "workflowId": frozenset({"w2"})})) == [
        "e2"]
    assert ids(store.lookup(ALL, {"taskId": frozenset({"t1"})})) == ["e4"]
    assert ids(store.lookup(frozenset({"workflow_progress"}), {})) == ["e3"]
    assert store.lookup(ALL, {"agentId": frozenset({"nobody"})}) == []


def test_a_replaced_event_leaves_the_indexes_of_its_old_values() -> None:
    store = LastValues()
    store.put(1, ev(1, agentId="a1", taskId="t1"))
    store.put(2, ev(2, agentId="a1", taskId="t2"))
    assert store.lookup(ALL, {"taskId": frozenset({"t1"})}) == []
    assert ids(store.lookup(ALL, {"taskId": frozenset({"t2"})})) == ["e2"]


def test_max_keys_evicts_the_oldest() -> None:
    store = LastValues(max_keys=2)
    store.put(1, ev(1, agentId="a1"))
    store.put(2, ev(2, agentId="a2"))
    store.put(3, ev(3, agentId="a1"))  # a1 is now the newest key
    store.put(4, ev(4, agentId="a3"))  # a2 goes
    assert ids(store.lookup(ALL, {})) == ["e3", "e4"]
    assert store.lookup(ALL, {"agentId": frozenset({"a2"})}) == []
    assert len(store) == 2


def test_ttl_drops_old_values() -> None:
    clock = Clock()
    store = LastValues(ttl_s=10, clock=clock)
    store.put(1, ev(1, agentId="a1"))
    clock.now += 6
    store.put(2, ev(2, agentId="a2"))
    clock.now += 5
    assert ids(store.lookup(ALL, {})) == ["e2"]
    clock.now += 6
    assert store.lookup(ALL, {}) == []
    assert len(store) == 0


def test_max_keys_zero_keeps_nothing() -> None:
    store = LastValues(max_keys=0)
    store.put(1, ev(1, agentId="a1"))
    assert store.lookup(ALL, {}) == [] and len(store) == 0


def test_lookups_touch_only_what_the_index_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """An absurd filter or a rare type costs its index entries, not a scan of the store."""
    store = LastValues()
    for n in range(10_000):
        store.put(n + 1, ev(n + 1, agentId=f"a{n}"))
    store.put(20_000, ev(20_000, "workflow_progress", workflowId="w"))
    checked: list[str] = []
    real = last_values.matches

    def counting(types: frozenset[str], filters: Any, event: dict[str, Any]) -> bool:
        checked.append(event["id"])
        return real(types, filters, event)

    monkeypatch.setattr(last_values, "matches", counting)
    absurd = frozenset(f"nobody-{i}" for i in range(1000)) | {"a5"}
    assert ids(store.lookup(ALL, {"agentId": absurd})) == ["e6"]
    assert checked == ["e6"]
    checked.clear()
    assert ids(store.lookup(frozenset({"workflow_progress"}), {})) == ["e20000"]
    assert checked == ["e20000"]


def test_lookup_plan_uses_the_filter_key_with_fewest_values() -> None:
    assert lookup_plan(ALL, {"agentId": frozenset({"a", "b"}), "taskId": frozenset({"t"})}) == (
        "tag", ['taskId="t"'])
    assert lookup_plan(frozenset({"b", "a"}), {}) == ("type", ["a", "b"])


def test_snapshot_copy_is_marked_and_leaves_the_stored_event_alone() -> None:
    stored = {"id": "e", "type": "agent_status", "data": {}, "metadata": {"source": "x"}}
    copy = as_snapshot(stored)
    assert copy["metadata"] == {"source": "x", "snapshot": True}
    assert stored["metadata"] == {"source": "x"}
    assert as_snapshot({"id": "e"})["metadata"] == {"snapshot": True}

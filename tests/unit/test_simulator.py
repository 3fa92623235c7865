"""The demo simulator: deterministic per seed, complete, and a story that makes sense.

The invariants checked here are the ones a dashboard relies on: task
lifecycles, monotonic progress, TDD phase order, workflow step order, alerts
that get resolved, and every event valid on the wire.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from autosdlc_ws.core.messages import validate_message
from autosdlc_ws.core.schema_versions import SCHEMA_VERSIONS
from autosdlc_ws.sources.simulator import (
    REPOSITORY,
    SIMULATED_TYPES,
    TDD_PHASES,
    WORKFLOW_STEPS,
    Simulator,
)

START_MS = 1_703_775_135_000
TICKS = 500
SEEDS = range(5)


def scripted_clock(step_ms: int = 1000) -> Callable[[], int]:
    ticks = itertools.count()
    return lambda: START_MS + step_ms * next(ticks)


def run(seed: int | None, ticks: int = TICKS, agents: int = 3) -> list[list[dict[str, Any]]]:
    sim = Simulator(agents=agents, seed=seed, clock_ms=scripted_clock())
    return [sim.step() for _ in range(ticks)]


def flat(ticks: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [event for tick in ticks for event in tick]


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def story(request: pytest.FixtureRequest) -> list[list[dict[str, Any]]]:
    seed: int = request.param
    return run(seed)


def of_type(ticks: list[list[dict[str, Any]]], type_: str) -> list[dict[str, Any]]:
    return [e["data"] for e in flat(ticks) if e["type"] == type_]


def test_deterministic_with_a_seed() -> None:
    assert run(7, 200) == run(7, 200)
    assert run(7, 200) != run(8, 200)


def test_unseeded_runs_and_agents_validated() -> None:
    assert all(run(None, 20))
    with pytest.raises(ValueError):
        Simulator(agents=0, clock_ms=scripted_clock())


def test_agent_names_cycle_types() -> None:
    sim = Simulator(agents=5, seed=1, clock_ms=scripted_clock())
    assert sim.agent_ids == ["coder-001", "tester-001", "reviewer-001", "coder-002", "tester-002"]
    first = sim.step()
    roster = {e["data"]["agentId"]: e["data"]["agentType"] for e in first
              if e["type"] == "agent_status"}
    assert roster == {"coder-001": "coder", "tester-001": "tester", "reviewer-001": "reviewer",
                      "coder-002": "coder", "tester-002": "tester"}


def test_every_tick_has_events_all_types_appear(story: list[list[dict[str, Any]]]) -> None:
    assert all(story), "a tick produced no event"
    seen = Counter(e["type"] for e in flat(story))
    assert set(seen) == SIMULATED_TYPES
    statuses = {d["status"] for d in of_type(story, "agent_status")}
    assert statuses == {"idle", "busy", "error"}
    task_states = {d["status"] for d in of_type(story, "agent_task_update")}
    assert task_states == {"queued", "running", "completed", "failed"}


def test_envelopes_are_valid_once_ids_are_assigned(story: list[list[dict[str, Any]]]) -> None:
    counter = itertools.count(1)
    for i, tick in enumerate(story):
        for event in tick:
            assert "id" not in event  # the publisher assigns ids
            assert event["timestamp"] == START_MS + 1000 * i
            assert event["metadata"] == {"version": SCHEMA_VERSIONS[event["type"]], "source": "simulator"}
            validate_message({**event, "id": f"sim-{next(counter)}"})


def test_one_step_is_a_single_lone_agent_tick() -> None:
    """Even one agent that is idle most of the time yields an event every tick."""
    for seed in range(3):
        assert all(run(seed, 200, agents=1))


def test_task_lifecycle_and_monotonic_progress(story: list[list[dict[str, Any]]]) -> None:
    updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for data in of_type(story, "agent_task_update"):
        updates[data["taskId"]].append(data)
    status_progress: dict[str, list[float]] = defaultdict(list)
    for data in of_type(story, "agent_status"):
        if "currentTask" in data:
            status_progress[data["currentTask"]["id"]].append(data["currentTask"]["progress"])

    finished = 0
    for task_id, seq in updates.items():
        states = [u["status"] for u in seq]
        assert states[0] == "queued", task_id
        assert len({u["agentId"] for u in seq}) == 1, task_id
        body = states[1:]
        if body:
            assert body[0] == "running", task_id
            terminal = [s for s in body if s in ("completed", "failed")]
            assert len(terminal) <= 1 and (not terminal or body[-1] == terminal[0]), task_id
            assert set(body[:-1]) <= {"running"}, task_id
        progress = [u["progress"] for u in seq]
        assert progress == sorted(progress), (task_id, progress)
        assert status_progress[task_id] == sorted(status_progress[task_id]), task_id
        assert max(status_progress[task_id], default=0) <= progress[-1]
        if states[-1] == "completed":
            finished += 1
            assert progress[-1] == 100
            assert all(p < 100 for p in progress[:-1]), task_id
        else:
            assert all(p < 100 for p in progress), task_id
    assert finished > 20


def test_agent_has_at_most_one_task_at_a_time(story: list[list[dict[str, Any]]]) -> None:
    current: dict[str, str | None] = {}
    for data in of_type(story, "agent_task_update"):
        agent = data["agentId"]
        if data["status"] == "queued":
            assert current.get(agent) is None, agent
            current[agent] = data["taskId"]
        else:
            assert current[agent] == data["taskId"]
            if data["status"] in ("completed", "failed"):
                current[agent] = None


def test_tasks_completed_counts_up(story: list[list[dict[str, Any]]]) -> None:
    completed = Counter(d["agentId"] for d in of_type(story, "agent_task_update")
                        if d["status"] == "completed")
    last: dict[str, int] = {}
    for data in of_type(story, "agent_metric"):
        assert data["tasksCompleted"] >= last.get(data["agentId"], 0)
        last[data["agentId"]] = data["tasksCompleted"]
    for agent, count in last.items():
        assert count <= completed[agent]


def test_tdd_phases_cycle_per_agent(story: list[list[dict[str, Any]]]) -> None:
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for data in of_type(story, "tdd_phase_change"):
        by_agent[data["agentId"]].append(data)
    assert by_agent, "no TDD phase changes"
    for agent, changes in by_agent.items():
        assert agent.startswith("coder-")
        assert changes[0]["currentPhase"] == "red"
        assert "previousPhase" not in changes[0]
        for before, after in itertools.pairwise(changes):
            expected = TDD_PHASES[(TDD_PHASES.index(before["currentPhase"]) + 1) % 3]
            assert after["currentPhase"] == expected, agent
            assert after["previousPhase"] == before["currentPhase"], agent
        assert len(changes) >= 9


def test_tdd_tests_and_coverage(story: list[list[dict[str, Any]]]) -> None:
    """Red has failing tests, green and refactor pass; coverage never drops."""
    coverage: dict[str, list[float]] = defaultdict(list)
    for tick in story:
        phase_of: dict[tuple[str, str], str] = {}
        for event in tick:
            data = event["data"]
            if event["type"] == "tdd_phase_change":
                counts = data["testResults"]
                assert counts["passing"] + counts["failing"] == counts["total"]
                assert (counts["failing"] > 0) == (data["currentPhase"] == "red")
                phase_of[(data["agentId"], data["taskId"])] = data["currentPhase"]
            elif event["type"] == "test_result":
                assert (data["passing"] + data["failing"] + data["skipped"]) == data["total"]
                phase = phase_of.get((data["agentId"], data["taskId"]))
                if phase is not None:
                    assert (data["failing"] > 0) == (phase == "red")
            elif event["type"] == "coverage_update":
                coverage[data["agentId"]].append(data["lines"])
                assert phase_of[(data["agentId"], data["taskId"])] in ("green", "refactor")
    assert coverage
    for agent, lines in coverage.items():
        assert lines == sorted(lines), agent


def test_workflows_run_their_steps_in_order(story: list[list[dict[str, Any]]]) -> None:
    events: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for event in flat(story):
        if event["type"].startswith("workflow_"):
            events[event["data"]["workflowId"]].append((event["type"], event["data"]))
    outcomes: Counter[str] = Counter()
    for wf, seq in events.items():
        assert wf.startswith("wf-")
        kind, started = seq[0]
        assert kind == "workflow_started" and started["steps"] == list(WORKFLOW_STEPS)
        steps = [d for k, d in seq if k == "workflow_step_complete"]
        assert [s["stepIndex"] for s in steps] == list(range(len(steps)))
        assert [s["step"] for s in steps] == list(WORKFLOW_STEPS[: len(steps)])
        ends = [k for k, _ in seq if k in ("workflow_complete", "workflow_failed")]
        assert len(ends) <= 1
        if ends:
            assert seq[-1][0] == ends[0]
            outcomes[ends[0]] += 1
        if ends == ["workflow_complete"]:
            assert len(steps) == len(WORKFLOW_STEPS)
            assert all(s["status"] != "failure" for s in steps)
            assert seq[-1][1]["name"] == started["name"]
        elif ends == ["workflow_failed"]:
            assert steps[-1]["status"] == "failure"
            assert seq[-1][1]["step"] == steps[-1]["step"]
        else:  # still running at the end of the story
            assert all(s["status"] != "failure" for s in steps)
    assert outcomes["workflow_complete"] > outcomes["workflow_failed"] > 0


def test_alerts_are_raised_then_resolved(story: list[list[dict[str, Any]]]) -> None:
    alerts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for data in of_type(story, "system_alert"):
        alerts[data["alertId"]].append(data)
    assert alerts
    for alert_id, seq in alerts.items():
        assert [a["resolved"] for a in seq] in ([False], [False, True]), alert_id
        assert seq[0]["severity"] in ("warning", "critical")
        assert len({a["severity"] for a in seq}) == 1


def test_github_events_on_the_demo_repository(story: list[list[dict[str, Any]]]) -> None:
    prs = of_type(story, "github_pr_update")
    issues = of_type(story, "github_issue_update")
    assert {d["repository"] for d in prs + issues} == {REPOSITORY}
    closed: set[int] = set()
    for data in prs:
        assert data["number"] not in closed
        if data["action"] == "closed":
            closed.add(data["number"])
            assert data["state"] == "closed"
        else:
            assert data["state"] == "open" and data["merged"] is False
    numbers = [d["number"] for d in prs if d["action"] == "opened"]
    numbers += [d["number"] for d in issues if d["action"] == "opened"]
    assert len(numbers) == len(set(numbers))  # issues and PRs share GitHub's numbering

"""The demo story: agents doing TDD tasks, workflows, alerts and GitHub activity.

Pure and deterministic: all randomness comes from one `random.Random(seed)`
and all time from the injected `clock_ms`, so a seed (and a scripted clock)
replays the same story, which is what the tests and `autosdlc-ws simulate
--seed` rely on. `step()` returns one tick's envelopes without ids; the
publisher assigns those, as it does for any event source.

The story keeps the invariants a dashboard relies on: a task goes queued ->
running -> completed (progress ends at 100) or failed, progress never goes
back within a task, and each coder's TDD phases cycle red -> green ->
refactor -> red (a coder task only fails at the end of a cycle, so a failure
never breaks the order).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autosdlc_ws.core.schema_versions import schema_version

__all__ = [
    "AGENT_TYPES",
    "REPOSITORY",
    "SIMULATED_TYPES",
    "TDD_PHASES",
    "WORKFLOW_NAMES",
    "WORKFLOW_STEPS",
    "Simulator",
]

AGENT_TYPES = ("coder", "tester", "reviewer")
TASK_TYPES = {"coder": "implement_feature", "tester": "run_tests", "reviewer": "review_code"}
TDD_PHASES = ("red", "green", "refactor")
WORKFLOW_NAMES = ("feature-delivery", "bugfix-pipeline", "release-train", "dependency-update")
WORKFLOW_STEPS = ("plan", "implement", "test", "review", "deploy")
REPOSITORY = "autosdlc/demo"

#: Every message type the story produces (over a few hundred ticks).
SIMULATED_TYPES = frozenset(
    {
        "agent_status",
        "agent_task_update",
        "agent_log",
        "agent_metric",
        "tdd_phase_change",
        "test_result",
        "coverage_update",
        "workflow_started",
        "workflow_step_complete",
        "workflow_complete",
        "workflow_failed",
        "system_notification",
        "system_alert",
        "github_pr_update",
        "github_issue_update",
    }
)

# Odds per tick (or per task / step), tuned so 500 ticks with 3 agents show
# every type several times while failures stay the exception.
_TASK_FAIL = 0.07
_WORKFLOW_START = 0.08
_STEP_FAIL = 0.05
_STEP_SKIP = 0.1
_NOTIFICATION = 0.03
_ALERT = 0.02
_GITHUB = 0.05
_METRIC_EVERY = 5
_STATUS_EVERY = 3
_MAX_WORKFLOWS = 2

_MIB = 1024 * 1024

_NOTIFICATIONS = (
    ("info", "Deployment window open", "Production deployments are allowed until 18:00 UTC."),
    ("info", "New agent image", "Agent image v2.4.1 is rolling out to the pool."),
    ("info", "Nightly build green", "All nightly jobs passed."),
    ("warning", "Queue backlog", "More than 20 tasks are waiting for an agent."),
    ("warning", "Flaky test quarantined", "test_payment_retry was quarantined after 3 flakes."),
)
_ALERTS = (
    ("High CPU usage", "Agent pool CPU above 90% for 5 minutes."),
    ("Broker latency", "Event broker p99 latency above 250 ms."),
    ("Disk space low", "Build cache volume is 92% full."),
    ("Error rate", "Task failure rate above 10% in the last 10 minutes."),
)
_FEATURES = (
    "user login", "password reset", "order history", "CSV export", "rate limiting",
    "search filters", "audit log", "dark mode", "webhook retries", "invoice PDFs",
)
_ISSUES = (
    "Crash when the cart is empty", "Typo on the settings page", "Slow dashboard load",
    "Timezone bug in reports", "Flaky integration test",
)
_FAILURES = (
    "integration tests failed against the staging database",
    "dependency resolution failed",
    "timed out waiting for the build cache",
    "lint errors in generated code",
)


@dataclass
class _Task:
    id: str
    type: str
    total_ticks: int
    fail_tick: int | None  # the work tick (0-based) at which the task fails, if it does
    schedule: list[str] = field(default_factory=list)  # coders: the TDD phase of each tick
    ticks_done: int = 0
    progress: int = 0
    running: bool = False


@dataclass
class _Agent:
    id: str
    type: str
    index: int
    status: str = "idle"
    task: _Task | None = None
    wait_ticks: int = 0  # ticks left idle (or in error) before the next transition
    tasks_completed: int = 0
    cpu: float = 10.0
    memory: int = 512 * _MIB
    # TDD state (coders): the phase order and rising counts span tasks.
    phase: str | None = None
    tests_total: int = 0
    coverage: list[float] = field(default_factory=list)  # lines, branches, functions


@dataclass
class _Workflow:
    id: str
    name: str
    start_ms: int
    step_index: int = 0
    step_start_ms: int = 0
    ticks_left: int = 0


@dataclass
class _Alert:
    id: str
    severity: str
    title: str
    message: str
    ticks_left: int


class Simulator:
    """Generates the demo story one tick at a time; see the module docstring."""

    def __init__(
        self, *, agents: int = 3, seed: int | None = None, clock_ms: Callable[[], int]
    ) -> None:
        if agents < 1:
            raise ValueError(f"agents must be at least 1, got {agents}")
        self._rng = random.Random(seed)
        self._clock_ms = clock_ms
        self._tick = 0
        self._next_task = 1
        self._next_workflow = 1
        self._next_alert = 1
        self._next_number = self._rng.randint(10, 99)
        self._agents: list[_Agent] = []
        per_type: dict[str, int] = {}
        for i in range(agents):
            agent_type = AGENT_TYPES[i % len(AGENT_TYPES)]
            per_type[agent_type] = per_type.get(agent_type, 0) + 1
            agent = _Agent(
                id=f"{agent_type}-{per_type[agent_type]:03d}",
                type=agent_type,
                index=i,
                wait_ticks=self._rng.randint(0, 2),
                memory=self._rng.randint(400, 900) * _MIB,
            )
            if agent_type == "coder":
                agent.tests_total = self._rng.randint(20, 60)
                agent.coverage = [
                    round(self._rng.uniform(60, 70), 1),
                    round(self._rng.uniform(50, 60), 1),
                    round(self._rng.uniform(65, 75), 1),
                ]
            self._agents.append(agent)
        self._workflows: list[_Workflow] = []
        self._alert: _Alert | None = None
        self._open_prs: list[tuple[int, str, str]] = []  # number, title, head branch
        self._open_issues: list[tuple[int, str]] = []

    @property
    def agent_ids(self) -> list[str]:
        return [agent.id for agent in self._agents]

    def step(self) -> list[dict[str, Any]]:
        """One tick of the story: at least one envelope, all sharing one timestamp."""
        now = self._clock_ms()
        out: list[tuple[str, dict[str, Any]]] = []
        for agent in self._agents:
            self._step_agent(agent, out)
        self._step_workflows(now, out)
        self._step_system(out)
        if self._rng.random() < _GITHUB:
            self._github(out)
        if not out:
            # A quiet tick still shows the dashboard the pool is alive.
            agent = self._agents[self._tick % len(self._agents)]
            out.append(("agent_metric", self._metric_data(agent)))
        self._tick += 1
        return [
            {
                "type": type_,
                "timestamp": now,
                "data": data,
                "metadata": {"version": schema_version(type_), "source": "simulator"},
            }
            for type_, data in out
        ]

    # --- agents

    def _step_agent(self, agent: _Agent, out: list[tuple[str, dict[str, Any]]]) -> None:
        rng = self._rng
        busy = agent.task is not None and agent.task.running
        target = rng.uniform(45, 95) if busy else rng.uniform(3, 15)
        agent.cpu = round(min(100.0, max(0.0, agent.cpu + (target - agent.cpu) * 0.5)), 1)
        agent.memory = max(256 * _MIB, min(4096 * _MIB, agent.memory + rng.randint(-40, 48) * _MIB))

        if self._tick == 0:
            out.append(("agent_status", self._status_data(agent)))

        if agent.status == "error":
            agent.wait_ticks -= 1
            if agent.wait_ticks <= 0:
                agent.status = "idle"
                agent.wait_ticks = rng.randint(1, 3)
                out.append(("agent_status", self._status_data(agent)))
                out.append(("agent_log", self._log(agent, "info", "Recovered, waiting for work")))
        elif agent.task is None:
            agent.wait_ticks -= 1
            if agent.wait_ticks <= 0:
                self._start_task(agent, out)
            elif rng.random() < 0.15:
                out.append(("agent_log", self._log(agent, "debug", "Polling the task queue")))
        else:
            self._work(agent, agent.task, out)

        if (self._tick + agent.index) % _METRIC_EVERY == 0:
            out.append(("agent_metric", self._metric_data(agent)))

    def _start_task(self, agent: _Agent, out: list[tuple[str, dict[str, Any]]]) -> None:
        rng = self._rng
        task_id = f"task-{self._next_task}"
        self._next_task += 1
        fails = rng.random() < _TASK_FAIL
        if agent.type == "coder":
            schedule: list[str] = []
            cycle_ends: list[int] = []
            for _ in range(rng.randint(1, 2)):
                for phase in TDD_PHASES:
                    schedule.extend([phase] * rng.randint(1, 3))
                cycle_ends.append(len(schedule) - 1)
            task = _Task(
                task_id, TASK_TYPES[agent.type], len(schedule),
                rng.choice(cycle_ends) if fails else None, schedule,
            )
        else:
            total = rng.randint(3, 8)
            task = _Task(
                task_id, TASK_TYPES[agent.type], total,
                rng.randint(1, total - 1) if fails else None,
            )
        agent.task = task
        agent.status = "busy"
        what = rng.choice(_FEATURES)
        out.append(("agent_task_update", self._task_data(agent, task, "queued", f"Queued: {what}")))
        out.append(("agent_status", self._status_data(agent)))
        out.append(("agent_log", self._log(agent, "info", f"Picked up {task_id} ({what})", task)))

    def _work(self, agent: _Agent, task: _Task, out: list[tuple[str, dict[str, Any]]]) -> None:
        rng = self._rng
        task.running = True
        i = task.ticks_done
        task.ticks_done += 1
        if agent.type == "coder":
            self._tdd_tick(agent, task, task.schedule[i], out)
        elif agent.type == "tester" and rng.random() < 0.4:
            total = rng.randint(80, 400)
            failing = rng.choice((0, 0, 0, 1, 2))
            skipped = rng.choice((0, 0, 3))
            out.append(("test_result", self._test_result(agent, task, total, failing, skipped)))
        elif agent.type == "reviewer" and rng.random() < 0.3:
            level, line = rng.choice(
                (("info", "Left 2 review comments"), ("warning", "Function exceeds 80 lines"),
                 ("debug", "Diff parsed: 14 files, +312/-97"))
            )
            out.append(("agent_log", self._log(agent, level, line, task)))

        if task.fail_tick == i:
            reason = rng.choice(_FAILURES)
            out.append(("agent_task_update", self._task_data(agent, task, "failed", reason)))
            out.append(("agent_log", self._log(agent, "error", f"{task.id} failed: {reason}", task)))
            agent.status = "error"
            agent.wait_ticks = rng.randint(1, 3)
            out.append(("agent_status", self._status_data(agent)))
            agent.task = None
            return
        if task.ticks_done == task.total_ticks:
            task.progress = 100
            agent.tasks_completed += 1
            out.append(("agent_task_update", self._task_data(agent, task, "completed", "Done")))
            out.append(("agent_log", self._log(agent, "info", f"Completed {task.id}", task)))
            agent.task = None
            agent.status = "idle"
            agent.wait_ticks = rng.randint(1, 4)
            out.append(("agent_status", self._status_data(agent)))
            return
        # Integer floor of a rising fraction: never decreases, reaches 100 only on completion.
        task.progress = 100 * task.ticks_done // task.total_ticks
        message = f"{task.schedule[i]} phase" if task.schedule else "in progress"
        out.append(("agent_task_update", self._task_data(agent, task, "running", message)))
        if task.ticks_done % _STATUS_EVERY == 0:
            out.append(("agent_status", self._status_data(agent)))

    def _tdd_tick(
        self, agent: _Agent, task: _Task, phase: str, out: list[tuple[str, dict[str, Any]]]
    ) -> None:
        if phase == agent.phase:
            return
        rng = self._rng
        previous, agent.phase = agent.phase, phase
        if phase == "red":
            failing = rng.randint(1, 3)
            agent.tests_total += failing
        else:
            failing = 0
            gain = rng.uniform(0.5, 2.5) if phase == "green" else rng.uniform(0.0, 0.8)
            agent.coverage = [
                round(min(99.5, agent.coverage[0] + gain), 1),
                round(min(99.0, agent.coverage[1] + gain * rng.uniform(0.6, 1.2)), 1),
                round(min(100.0, agent.coverage[2] + gain * rng.uniform(0.8, 1.5)), 1),
            ]
        total = agent.tests_total
        change: dict[str, Any] = {"agentId": agent.id, "taskId": task.id}
        if previous is not None:  # optional, not nullable: absent on an agent's first phase
            change["previousPhase"] = previous
        change["currentPhase"] = phase
        change["testResults"] = {"total": total, "passing": total - failing, "failing": failing}
        change["coverage"] = self._coverage(agent)
        out.append(("tdd_phase_change", change))
        out.append(("test_result", self._test_result(agent, task, total, failing)))
        if phase == "red":
            line = f"RED: wrote {failing} failing test(s)"
        else:
            out.append(("coverage_update", {"agentId": agent.id, "taskId": task.id,
                                            **self._coverage(agent)}))
            line = "GREEN: all tests pass" if phase == "green" else "REFACTOR: tests still green"
        out.append(("agent_log", self._log(agent, "info", line, task)))

    # --- data builders

    def _status_data(self, agent: _Agent) -> dict[str, Any]:
        data: dict[str, Any] = {
            "agentId": agent.id,
            "agentType": agent.type,
            "status": agent.status,
            "metrics": {
                "cpuUsage": agent.cpu,
                "memoryUsage": agent.memory,
                "tasksCompleted": agent.tasks_completed,
            },
        }
        if agent.task is not None:
            data["currentTask"] = {
                "id": agent.task.id, "type": agent.task.type, "progress": agent.task.progress,
            }
        return data

    def _metric_data(self, agent: _Agent) -> dict[str, Any]:
        return {
            "agentId": agent.id,
            "cpuUsage": agent.cpu,
            "memoryUsage": agent.memory,
            "tasksCompleted": agent.tasks_completed,
        }

    def _task_data(self, agent: _Agent, task: _Task, status: str, message: str) -> dict[str, Any]:
        return {
            "agentId": agent.id,
            "taskId": task.id,
            "status": status,
            "progress": task.progress,
            "taskType": task.type,
            "message": message,
        }

    def _log(
        self, agent: _Agent, level: str, message: str, task: _Task | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"agentId": agent.id, "level": level, "message": message}
        if task is not None:
            data["taskId"] = task.id
        return data

    def _test_result(
        self, agent: _Agent, task: _Task, total: int, failing: int, skipped: int = 0
    ) -> dict[str, Any]:
        return {
            "agentId": agent.id,
            "taskId": task.id,
            "total": total,
            "passing": total - failing - skipped,
            "failing": failing,
            "skipped": skipped,
            "durationMs": self._rng.randint(300, 20 * total + 500),
        }

    def _coverage(self, agent: _Agent) -> dict[str, float]:
        lines, branches, functions = agent.coverage
        return {"lines": lines, "branches": branches, "functions": functions}

    # --- workflows

    def _step_workflows(self, now: int, out: list[tuple[str, dict[str, Any]]]) -> None:
        rng = self._rng
        for wf in list(self._workflows):
            wf.ticks_left -= 1
            if wf.ticks_left > 0:
                continue
            step = WORKFLOW_STEPS[wf.step_index]
            roll = rng.random()
            status = "failure" if roll < _STEP_FAIL else "success"
            if status == "success" and step == "review" and roll < _STEP_FAIL + _STEP_SKIP:
                status = "skipped"
            out.append(
                (
                    "workflow_step_complete",
                    {
                        "workflowId": wf.id,
                        "step": step,
                        "stepIndex": wf.step_index,
                        "status": status,
                        "durationMs": max(0, now - wf.step_start_ms),
                    },
                )
            )
            if status == "failure":
                out.append(
                    ("workflow_failed",
                     {"workflowId": wf.id, "error": f"{step} failed: {rng.choice(_FAILURES)}",
                      "step": step})
                )
                self._workflows.remove(wf)
            elif wf.step_index + 1 == len(WORKFLOW_STEPS):
                out.append(
                    ("workflow_complete",
                     {"workflowId": wf.id, "durationMs": max(0, now - wf.start_ms),
                      "name": wf.name})
                )
                self._workflows.remove(wf)
            else:
                wf.step_index += 1
                wf.step_start_ms = now
                wf.ticks_left = rng.randint(2, 5)
        if len(self._workflows) < _MAX_WORKFLOWS and rng.random() < _WORKFLOW_START:
            wf = _Workflow(
                id=f"wf-{self._next_workflow}",
                name=rng.choice(WORKFLOW_NAMES),
                start_ms=now,
                step_start_ms=now,
                ticks_left=rng.randint(2, 5),
            )
            self._next_workflow += 1
            self._workflows.append(wf)
            out.append(
                ("workflow_started",
                 {"workflowId": wf.id, "name": wf.name, "steps": list(WORKFLOW_STEPS)})
            )

    # --- system

    def _step_system(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        rng = self._rng
        if rng.random() < _NOTIFICATION:
            level, title, message = rng.choice(_NOTIFICATIONS)
            out.append(("system_notification", {"message": message, "title": title, "level": level}))
        alert = self._alert
        if alert is not None:
            alert.ticks_left -= 1
            if alert.ticks_left <= 0:
                out.append(("system_alert", self._alert_data(alert, resolved=True)))
                self._alert = None
        elif rng.random() < _ALERT:
            title, message = rng.choice(_ALERTS)
            alert = _Alert(
                id=f"alert-{self._next_alert}",
                severity="critical" if rng.random() < 0.3 else "warning",
                title=title,
                message=message,
                ticks_left=rng.randint(3, 8),
            )
            self._next_alert += 1
            self._alert = alert
            out.append(("system_alert", self._alert_data(alert, resolved=False)))

    def _alert_data(self, alert: _Alert, *, resolved: bool) -> dict[str, Any]:
        return {
            "severity": alert.severity,
            "message": f"Resolved: {alert.message}" if resolved else alert.message,
            "title": alert.title,
            "alertId": alert.id,
            "source": "monitor",
            "resolved": resolved,
        }

    # --- GitHub

    def _github(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        rng = self._rng
        actor = rng.choice(self._agents).id
        roll = rng.random()
        if roll < 0.6:
            if not self._open_prs or (len(self._open_prs) < 3 and rng.random() < 0.5):
                number = self._take_number()
                feature = rng.choice(_FEATURES)
                pr = (number, f"Add {feature}", f"feature/{feature.replace(' ', '-')}-{number}")
                self._open_prs.append(pr)
                action, state, merged = "opened", "open", False
            else:
                pr = rng.choice(self._open_prs)
                if rng.random() < 0.5:
                    action, state, merged = "synchronize", "open", False
                else:
                    self._open_prs.remove(pr)
                    merged = rng.random() < 0.8
                    action, state = "closed", "closed"
            number, title, head = pr
            out.append(
                (
                    "github_pr_update",
                    {
                        "repository": REPOSITORY,
                        "action": action,
                        "number": number,
                        "title": title,
                        "state": state,
                        "merged": merged,
                        "url": f"https://github.com/{REPOSITORY}/pull/{number}",
                        "actor": actor,
                        "labels": ["autosdlc"],
                        "head": head,
                        "base": "main",
                        "draft": False,
                    },
                )
            )
        else:
            labels = ["bug"]
            if not self._open_issues or rng.random() < 0.5:
                issue = (self._take_number(), rng.choice(_ISSUES))
                self._open_issues.append(issue)
                action, state = "opened", "open"
            else:
                issue = rng.choice(self._open_issues)
                self._open_issues.remove(issue)
                action, state = "closed", "closed"
            number, title = issue
            out.append(
                (
                    "github_issue_update",
                    {
                        "repository": REPOSITORY,
                        "action": action,
                        "number": number,
                        "title": title,
                        "state": state,
                        "url": f"https://github.com/{REPOSITORY}/issues/{number}",
                        "actor": actor,
                        "labels": labels,
                    },
                )
            )

    def _take_number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

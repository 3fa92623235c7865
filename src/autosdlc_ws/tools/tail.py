"""`autosdlc-ws tail`: live events in the terminal, built on the Python SDK.

One line per event: time, type (coloured by category, alerts by severity),
the resource it concerns and a short summary. `--json` prints each envelope
as one JSON line for piping. Text from events is stripped of control
characters before it reaches the terminal, so an event cannot move the cursor
or change colours. The SDK reconnects and resumes by itself; a reset (events
may have been missed) is printed as its own line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from autosdlc_ws.client import AutoSDLCWebSocket, ResetEvent, to_dict

RESET = "\033[0m"
COLOURS = {
    "agent": "\033[36m", "tdd": "\033[35m", "workflow": "\033[34m", "system": "\033[37m",
    "github": "\033[32m", "deployment": "\033[33m",
}
SEVERITY = {"info": "\033[37m", "warning": "\033[33m", "error": "\033[31m", "critical": "\033[1;31m"}
PHASES = {"red": "\033[31m", "green": "\033[32m", "refactor": "\033[34m"}
_CONTROL = {c: None for c in range(32) if c not in (9,)} | {127: None}


def clean(value: object, limit: int = 120) -> str:
    """Printable text: control characters (escape sequences, newlines) removed."""
    text = str(value).translate(_CONTROL)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_filters(items: Sequence[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"--filter takes key=value, not {item!r}")
        filters.setdefault(key, []).append(value)
    return filters


def summary(event: Mapping[str, Any]) -> str:
    type_ = str(event.get("type"))
    d = event.get("data") or {}
    if type_ == "agent_status":
        task = d.get("currentTask") or {}
        progress = f" {task.get('id')} {task.get('progress', 0):.0f}%" if task else ""
        return f"{d.get('status')}{progress}"
    if type_ == "agent_task_update":
        return f"{d.get('taskId')} {d.get('status')} {d.get('progress', '')}"
    if type_ == "tdd_phase_change":
        tests = d.get("testResults") or {}
        return (f"{d.get('previousPhase', '?')} -> {d.get('currentPhase')} "
                f"({tests.get('passing', '?')}/{tests.get('total', '?')} passing)")
    if type_ == "test_result":
        return f"{d.get('passing')}/{d.get('total')} passing, {d.get('failing')} failing"
    if type_ == "coverage_update":
        return f"lines {d.get('lines')}%"
    if type_.startswith("workflow_"):
        return str(d.get("name") or d.get("step") or d.get("error") or "")
    if type_ in ("system_alert", "system_notification"):
        resolved = " (resolved)" if d.get("resolved") else ""
        return f"{d.get('severity') or d.get('level') or ''} {d.get('title') or ''}: {d.get('message')}{resolved}"
    if type_.startswith("github_"):
        number = f"#{d['number']} " if d.get("number") else ""
        return f"{d.get('action')} {number}{d.get('title') or d.get('name') or ''}"
    if type_ == "deployment_status":
        return f"{d.get('environment')} {d.get('status')}"
    if type_ in ("agent_log", "agent_error"):
        return f"{d.get('level', 'error')}: {d.get('message')}"
    return ", ".join(f"{k}={v}" for k, v in list(d.items())[:4])


def resource(event: Mapping[str, Any]) -> str:
    d = event.get("data") or {}
    for key in ("agentId", "workflowId", "repository", "taskId"):
        if d.get(key):
            return str(d[key])
    return "system"


def format_line(event: Mapping[str, Any], *, colour: bool) -> str:
    type_ = str(event.get("type"))
    stamp = time.strftime("%H:%M:%S", time.localtime(int(event.get("timestamp") or 0) / 1000))
    text = f"{stamp}  {clean(type_, 24):<24} {clean(resource(event), 24):<24} {clean(summary(event))}"
    if not colour:
        return text
    data = event.get("data") or {}
    code = COLOURS.get(type_.split("_", 1)[0], "")
    if type_ == "system_alert":
        code = SEVERITY.get(str(data.get("severity")), code)
    elif type_ == "tdd_phase_change":
        code = PHASES.get(str(data.get("currentPhase")), code)
    return f"{code}{text}{RESET}" if code else text


async def run_tail(
    url: str, *, token: str | None, api_key: str | None, events: Sequence[str],
    filters: Mapping[str, list[str]], as_json: bool, colour: bool, count: int | None,
    out: TextIO = sys.stdout,
) -> int:
    seen = 0
    async with AutoSDLCWebSocket(url, token=token, api_key=api_key, typed=False) as ws:
        await ws.subscribe(list(events), {k: v if len(v) > 1 else v[0] for k, v in filters.items()} or None)
        async for event in ws:
            if isinstance(event, ResetEvent):
                line = json.dumps(event.to_dict()) if as_json else (
                    f"-- reset: events may have been missed ({clean(event.data.reason)})")
                print(line, file=out, flush=True)
                continue
            envelope = event if isinstance(event, dict) else to_dict(event)
            print(json.dumps(envelope) if as_json else format_line(envelope, colour=colour), file=out, flush=True)
            seen += 1
            if count is not None and seen >= count:
                break
    return 0

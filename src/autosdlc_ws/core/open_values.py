"""Open values: status-, level- and severity-like event fields that accept any
string up to `MAX_OPEN_VALUE` characters beside their documented values.

A producer that adds a status ("in_progress", "paused") must not lose its
events at a gateway that does not know it yet (CONTRACT §11): the models
accept any short string, the schemas still list the documented values (the
generated TypeScript types read `KnownAgentStatus | (string & {})`), and
`unknown_values` names the fields of an event whose value is not documented,
so operators see new values arriving (`autosdlc_ws_unknown_values_total`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Longest value an open field accepts; longer is `invalid_message`.
MAX_OPEN_VALUE = 64


@dataclass(frozen=True, slots=True)
class OpenField:
    """An open field: where it is in an event, its documented values, and the
    name of the TypeScript type of those (`title` in the schema)."""

    event_type: str
    path: tuple[str, ...]  # keys from the envelope; "[]" steps into every item of a list
    title: str
    known: tuple[str, ...]

    @property
    def label(self) -> str:
        """The metric label: `<type>.<path>`, e.g. `agent_status.data.status` (bounded)."""
        return f"{self.event_type}." + ".".join(self.path).replace(".[]", "[]")


AGENT_STATUS = ("idle", "busy", "error", "offline")
TASK_STATUS = ("queued", "running", "completed", "failed", "cancelled")
LOG_LEVEL = ("debug", "info", "warning", "error")
STEP_STATUS = ("success", "failure", "skipped")
NOTIFICATION_LEVEL = ("info", "warning", "error")
ALERT_SEVERITY = ("info", "warning", "error", "critical")
DEPLOYMENT_STATUS = ("pending", "queued", "in_progress", "success", "failure", "error", "inactive",
                     "draining", "started")
COMPONENT_HEALTH = ("healthy", "degraded", "unhealthy", "unknown")

#: Every open field of the protocol (docs/protocol.md lists them).
OPEN_FIELDS: tuple[OpenField, ...] = (
    OpenField("agent_status", ("data", "status"), "KnownAgentStatus", AGENT_STATUS),
    OpenField("agent_task_update", ("data", "status"), "KnownTaskStatus", TASK_STATUS),
    OpenField("agent_log", ("data", "level"), "KnownLogLevel", LOG_LEVEL),
    OpenField("workflow_step_complete", ("data", "status"), "KnownStepStatus", STEP_STATUS),
    OpenField("system_notification", ("data", "level"), "KnownNotificationLevel", NOTIFICATION_LEVEL),
    OpenField("system_alert", ("data", "severity"), "KnownAlertSeverity", ALERT_SEVERITY),
    OpenField("deployment_status", ("data", "status"), "KnownDeploymentStatus", DEPLOYMENT_STATUS),
    OpenField("deployment_status", ("data", "components", "[]", "health"), "KnownComponentHealth",
              COMPONENT_HEALTH),
)
_BY_TYPE: dict[str, tuple[OpenField, ...]] = {}
for _field in OPEN_FIELDS:
    _BY_TYPE[_field.event_type] = (*_BY_TYPE.get(_field.event_type, ()), _field)
_KNOWN: dict[OpenField, frozenset[str]] = {f: frozenset(f.known) for f in OPEN_FIELDS}


def open_value_schema(title: str, known: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema of an open field: the documented values, or any short string.

    `anyOf` rather than `examples`: validators accept the same strings either
    way, but code generators (json-schema-to-typescript, quicktype) keep a
    titled `enum` as a named type of the known values."""
    return {"anyOf": [{"title": title, "type": "string", "enum": list(known)},
                      {"type": "string", "maxLength": MAX_OPEN_VALUE}]}


def _values_at(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        if isinstance(node, list):
            for item in node:
                yield from _values_at(item, rest)
    elif isinstance(node, dict) and head in node:
        yield from _values_at(node[head], rest)


def unknown_values(event: dict[str, Any]) -> list[str]:
    """Labels of the open fields of a (valid) `event` holding an undocumented value,
    one per value (two unknown component healths: the label twice)."""
    fields = _BY_TYPE.get(event.get("type", ""))
    if not fields:
        return []
    return [f.label for f in fields for value in _values_at(event, f.path)
            if isinstance(value, str) and value not in _KNOWN[f]]


def open_field_schema(event_type: str, *path: str) -> dict[str, Any]:
    """The schema of the registered open field `path` (under `data`) of `event_type`."""
    for f in _BY_TYPE.get(event_type, ()):
        if f.path == ("data", *path):
            return open_value_schema(f.title, f.known)
    raise KeyError(f"{event_type}: no open field data.{'.'.join(path)}")

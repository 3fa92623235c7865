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


@dataclass(frozen=True, slots=True)
class _Check:
    """An open field as `unknown_values` reads it: `data[key]`, or with `item_key`
    `data[key][i][item_key]` for every item of the list."""

    label: str
    key: str
    item_key: str | None
    known: frozenset[str]


def _check(f: OpenField) -> _Check:
    match f.path:
        case ("data", key):
            return _Check(f.label, key, None, frozenset(f.known))
        case ("data", key, "[]", item_key):
            return _Check(f.label, key, item_key, frozenset(f.known))
    raise ValueError(f"{f.label}: unsupported open field path")  # pragma: no cover - guards OPEN_FIELDS


_CHECKS: dict[str, tuple[_Check, ...]] = {t: tuple(map(_check, fs)) for t, fs in _BY_TYPE.items()}


def open_value_schema(title: str, known: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema of an open field: the documented values, or any short string.

    `anyOf` rather than `examples`: validators accept the same strings either
    way, but code generators (json-schema-to-typescript, quicktype) keep a
    titled `enum` as a named type of the known values."""
    return {"anyOf": [{"title": title, "type": "string", "enum": list(known)},
                      {"type": "string", "maxLength": MAX_OPEN_VALUE}]}


def unknown_values(event: dict[str, Any]) -> list[str]:
    """Labels of the open fields of a (valid) `event` holding an undocumented value,
    one per value (two unknown component healths: the label twice). Runs once
    per published event, so it does dictionary lookups and nothing more."""
    checks = _CHECKS.get(event.get("type", ""))
    if checks is None:
        return []
    data = event.get("data")
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    for check in checks:
        value = data.get(check.key)
        if check.item_key is None:
            if isinstance(value, str) and value not in check.known:
                found.append(check.label)
        elif isinstance(value, list):
            for item in value:
                inner = item.get(check.item_key) if isinstance(item, dict) else None
                if isinstance(inner, str) and inner not in check.known:
                    found.append(check.label)
    return found


def open_field_schema(event_type: str, *path: str) -> dict[str, Any]:
    """The schema of the registered open field `path` (under `data`) of `event_type`."""
    for f in _BY_TYPE.get(event_type, ()):
        if f.path == ("data", *path):
            return open_value_schema(f.title, f.known)
    raise KeyError(f"{event_type}: no open field data.{'.'.join(path)}")

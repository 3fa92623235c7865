"""The version of each message type's schema, and stamping it on events.

Each schema at `/schemas/<type>.json` names its version in a top-level
`version`; every delivered event carries `metadata.version`, the publisher's
when it set one, else its type's schema version (CONTRACT §11). A type's
version moves when its schema does: a minor step (1.0 -> 1.1) for additive
changes (a new optional field, a new documented value of an open field), a
major step for anything a 1.x reader could misread (docs/protocol.md,
"Versioning").
"""

from __future__ import annotations

from typing import Any

from autosdlc_ws.core.messages import MESSAGE_TYPES

#: The version of a schema no release has changed since protocol 1.0.
BASE_VERSION = "1.0"
#: Types whose `data` schemas protocol 1.1 changed (snapshot on subscribe, open
#: status/level/severity values, fields the design document names), with what
#: changed: see docs/protocol.md. Envelope additions (`metadata.snapshot`) are
#: the protocol's own and move `protocolVersion`, not every type's version.
CHANGED: dict[str, str] = {
    "subscribe": "1.1",  # snapshot
    "connect": "1.1",  # limits.maxBatchBytes
    "auth_request": "1.1",  # batch
    "agent_status": "1.1",  # status open
    "agent_task_update": "1.1",  # status open
    "agent_log": "1.1",  # level open
    "workflow_started": "1.1",  # progress
    "workflow_step_complete": "1.1",  # status open, progress
    "workflow_complete": "1.1",  # outputs, artifacts
    "system_notification": "1.1",  # level open, documented "error"
    "system_alert": "1.1",  # severity open
    "deployment_status": "1.1",  # status open, components with their health
}
if not set(CHANGED) <= set(MESSAGE_TYPES):  # pragma: no cover - guards edits to this file
    raise RuntimeError("CHANGED names a type that does not exist")

#: Message type -> the version of its schema.
SCHEMA_VERSIONS: dict[str, str] = {t: CHANGED.get(t, BASE_VERSION) for t in MESSAGE_TYPES}


def schema_version(type_: str) -> str:
    """The version of `type_`'s schema (`BASE_VERSION` for a type without one)."""
    return SCHEMA_VERSIONS.get(type_, BASE_VERSION)


def stamp_version(event: dict[str, Any]) -> None:
    """Give `event` its type's schema version unless the publisher set one.

    Done once per event at publish, before the broker, so every delivery (and
    every replay) carries it without fan-out paying anything. The metadata
    object is replaced, not changed: the caller's copy stays as it was sent."""
    metadata = event.get("metadata")
    if isinstance(metadata, dict):
        if metadata.get("version") is not None:
            return
        event["metadata"] = {**metadata, "version": schema_version(event["type"])}
    else:
        event["metadata"] = {"version": schema_version(event["type"])}

"""Schema versions (CONTRACT §11): every schema names one, and an event without
`metadata.version` is given its type's at publish."""

from __future__ import annotations

import json
from typing import Any

from autosdlc_ws.core.messages import MESSAGE_TYPES
from autosdlc_ws.core.schema_export import build_schema
from autosdlc_ws.core.schema_versions import CHANGED, SCHEMA_VERSIONS, schema_version, stamp_version
from tests.conftest import FIXTURES


def test_every_schema_names_its_version() -> None:
    for type_ in MESSAGE_TYPES:
        assert build_schema(type_)["version"] == SCHEMA_VERSIONS[type_]
    assert schema_version("agent_status") == "1.1"  # changed by protocol 1.1
    assert schema_version("github_pr_update") == "1.0"  # unchanged
    assert set(CHANGED.values()) == {"1.1"}


def test_an_event_without_a_version_gets_its_schemas() -> None:
    event: dict[str, Any] = {"type": "agent_log", "data": {}}
    stamp_version(event)
    assert event["metadata"] == {"version": "1.1"}


def test_other_metadata_is_kept_and_the_senders_object_not_changed() -> None:
    sent = {"source": "agent-7", "traceId": "t1"}
    event: dict[str, Any] = {"type": "coverage_update", "data": {}, "metadata": sent}
    stamp_version(event)
    assert event["metadata"] == {"source": "agent-7", "traceId": "t1", "version": "1.0"}
    assert sent == {"source": "agent-7", "traceId": "t1"}


def test_the_publishers_version_wins() -> None:
    event: dict[str, Any] = {"type": "agent_status", "data": {}, "metadata": {"version": "0.9-beta"}}
    stamp_version(event)
    assert event["metadata"] == {"version": "0.9-beta"}


def test_the_design_documents_examples_keep_their_version() -> None:
    for path in sorted((FIXTURES / "events").glob("*.json")):
        example = json.loads(path.read_text())
        before = example.get("metadata", {}).get("version")
        stamp_version(example)
        assert example["metadata"]["version"] == (before or SCHEMA_VERSIONS[example["type"]])

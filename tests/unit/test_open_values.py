"""Open values (CONTRACT §11): status-, level- and severity-like fields accept any
string up to 64 characters, in the models and the JSON Schemas alike; the
documented values stay listed; `unknown_values` names the fields that hold a new one;
and the fields protocol 1.1 adds (workflow progress, outputs and artifacts,
deployment components' health) validate both ways."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from autosdlc_ws.core import messages as m
from autosdlc_ws.core.open_values import OPEN_FIELDS, OpenField, open_value_schema, unknown_values
from autosdlc_ws.core.schema_export import build_schema
from autosdlc_ws.errors import InvalidMessage
from tests.unit.test_messages import EXAMPLES, envelope, validator


def with_value(f: OpenField, value: Any) -> dict[str, Any]:
    """A valid frame of `f.event_type` with `value` at the open field."""
    data = copy.deepcopy(EXAMPLES[f.event_type])
    if f.path == ("data", "components", "[]", "health"):
        data["components"] = [{"name": "api", "health": value}]
    else:
        data[f.path[-1]] = value
    return envelope(f.event_type, data)


def both_accept(frame: dict[str, Any]) -> bool:
    schema_ok = not list(validator(frame["type"]).iter_errors(frame))
    try:
        m.validate_message(frame)
        model_ok = True
    except InvalidMessage:
        model_ok = False
    assert schema_ok == model_ok, (frame, schema_ok, model_ok)
    return model_ok


@pytest.mark.parametrize("f", OPEN_FIELDS, ids=lambda f: f.label)
def test_documented_new_and_too_long_values(f: OpenField) -> None:
    for value in (*f.known, "in_progress", "", "x" * 64):
        assert both_accept(with_value(f, value)), value
    for value in ("x" * 65, 3, None, True, ["busy"], {"v": "busy"}):
        assert not both_accept(with_value(f, value)), value


@pytest.mark.parametrize("f", OPEN_FIELDS, ids=lambda f: f.label)
def test_the_schema_still_lists_the_documented_values(f: OpenField) -> None:
    schema = build_schema(f.event_type)
    assert open_value_schema(f.title, f.known) in _all_subschemas(schema)


def _all_subschemas(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _all_subschemas(value)
    elif isinstance(node, list):
        for value in node:
            found += _all_subschemas(value)
    return found


def test_a_task_update_in_progress_is_accepted_with_its_path_on_error() -> None:
    frame = envelope("agent_task_update", {"agentId": "a1", "taskId": "t1", "status": "in_progress"})
    m.validate_message(frame)
    frame["data"]["status"] = 7
    with pytest.raises(InvalidMessage) as info:
        m.validate_message(frame)
    assert info.value.path == "data.status"


def test_unknown_values_names_each_field_with_a_new_value() -> None:
    assert unknown_values(envelope("agent_status", {"agentId": "a1", "status": "busy"})) == []
    assert unknown_values(envelope("agent_status", {"agentId": "a1", "status": "paused"})) == [
        "agent_status.data.status"]
    deployment = envelope("deployment_status", {
        "environment": "prod", "status": "rolling_back",
        "components": [{"name": "api", "health": "healthy"}, {"name": "db", "health": "flaky"},
                       {"name": "queue", "health": "lagging"}]})
    assert unknown_values(deployment) == [
        "deployment_status.data.status", "deployment_status.data.components[].health",
        "deployment_status.data.components[].health"]
    assert unknown_values(envelope("coverage_update", {"agentId": "a1", "lines": 1})) == []
    assert unknown_values(envelope("system_notification", {"message": "no level"})) == []


def test_metric_labels_are_a_fixed_set() -> None:
    labels = {f.label for f in OPEN_FIELDS}
    assert len(labels) == len(OPEN_FIELDS) == 8
    assert "deployment_status.data.components[].health" in labels


def test_system_notification_documents_level_error() -> None:
    (f,) = [f for f in OPEN_FIELDS if f.event_type == "system_notification"]
    assert f.known == ("info", "warning", "error")
    assert unknown_values(envelope("system_notification", {"message": "m", "level": "error"})) == []


@pytest.mark.parametrize(("type_", "data"), [
    ("workflow_started", {"workflowId": "w1", "name": "build",
                          "progress": {"currentStep": 0, "totalSteps": 5, "estimatedCompletion": 1703775735000}}),
    ("workflow_step_complete", {"workflowId": "w1", "step": "test", "stepIndex": 2, "status": "success",
                                "progress": {"currentStep": 3, "totalSteps": 5}}),
    ("workflow_complete", {"workflowId": "w1", "outputs": {"image": "reg/app:1.2", "tests": 412},
                           "artifacts": [{"name": "app.tar.gz", "url": "https://ci/a/1", "type": "archive",
                                          "sizeBytes": 1048576}, {"name": "report.html"}]}),
    ("deployment_status", {"environment": "production", "status": "success",
                           "components": [{"name": "api", "health": "healthy"},
                                          {"name": "worker", "health": "degraded", "message": "1 of 3 down"}]}),
])
def test_the_fields_protocol_1_1_adds_validate(type_: str, data: dict[str, Any]) -> None:
    assert both_accept(envelope(type_, data))


@pytest.mark.parametrize(("type_", "data", "path"), [
    ("workflow_started", {"workflowId": "w1", "name": "b", "progress": {"totalSteps": -1}},
     "data.progress.totalSteps"),
    ("workflow_step_complete", {"workflowId": "w1", "step": "t", "status": "success",
                                "progress": {"estimatedCompletion": "soon"}}, "data.progress.estimatedCompletion"),
    ("workflow_complete", {"workflowId": "w1", "artifacts": [{"url": "https://x"}]}, "data.artifacts[0].name"),
    ("workflow_complete", {"workflowId": "w1", "outputs": ["a"]}, "data.outputs"),
    ("deployment_status", {"environment": "p", "status": "success", "components": [{"name": "api"}]},
     "data.components[0].health"),
])
def test_the_new_fields_refuse_wrong_values(type_: str, data: dict[str, Any], path: str) -> None:
    frame = envelope(type_, data)
    assert not both_accept(frame)
    with pytest.raises(InvalidMessage) as info:
        m.validate_message(frame)
    assert info.value.path == path

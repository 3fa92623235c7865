"""Message models and the committed JSON Schemas agree on what is valid, and where not."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema

import autosdlc_ws
from autosdlc_ws.core import messages as m
from autosdlc_ws.core.resources import KIND_OF_KEY, RESOURCE_KEYS
from autosdlc_ws.core.schema_export import build_asyncapi
from autosdlc_ws.errors import InvalidMessage, UnknownType
from tests.conftest import FIXTURES as REPO_FIXTURES

SCHEMA_DIR = Path(autosdlc_ws.__file__).parent / "schemas"
EVENT_FIXTURES = REPO_FIXTURES / "events"

# The design document's two examples, unchanged (see test_fixture_copies_match_the_files).
FIXTURES: dict[str, dict[str, Any]] = {
    "agent_status": {
        "id": "evt-123",
        "type": "agent_status",
        "timestamp": 1703775135000,
        "data": {
            "agentId": "coder-001",
            "agentType": "coder",
            "status": "busy",
            "currentTask": {"id": "task-789", "type": "implement_feature", "progress": 65},
            "metrics": {"cpuUsage": 45.2, "memoryUsage": 1024000000, "tasksCompleted": 12},
        },
    },
    "tdd_phase_change": {
        "id": "evt-234",
        "type": "tdd_phase_change",
        "timestamp": 1703775200000,
        "data": {
            "agentId": "coder-001",
            "taskId": "task-789",
            "previousPhase": "red",
            "currentPhase": "green",
            "testResults": {"total": 45, "passing": 45, "failing": 0},
            "coverage": {"lines": 98.5, "branches": 95.2, "functions": 100},
        },
    },
}

_ISSUE = {
    "repository": "octo/repo",
    "action": "opened",
    "number": 7,
    "title": "Bug",
    "state": "open",
    "url": "https://github.com/octo/repo/issues/7",
    "actor": "octocat",
    "labels": [],
}

#: Minimal valid ``data`` per type.
EXAMPLES: dict[str, dict[str, Any]] = {
    "connect": {
        "connectionId": "c-1",
        "sessionId": "s-1",
        "heartbeatInterval": 25000,
        "protocolVersion": "1.0",
        "resumed": False,
        "limits": {"maxFrameBytes": 65536},
    },
    "disconnect": {"reason": "shutdown", "reconnect": True},
    "ping": {},
    "pong": {},
    "error": {"code": "forbidden", "message": "no read permission on agent:a1"},
    "auth_request": {"token": "jwt"},
    "auth_success": {"subject": "u1", "permissions": ["read:*"], "expiresAt": None},
    "auth_failure": {"code": "invalid_credentials", "message": "bad token"},
    "subscribe": {"events": ["agent_*"]},
    "unsubscribe": {"subscriptionId": "sub-1"},
    "subscription_update": {"subscriptionId": "sub-1", "status": "active"},
    "agent_status": {"agentId": "a1", "status": "idle"},
    "agent_task_update": {"agentId": "a1", "taskId": "t1", "status": "running"},
    "agent_log": {"agentId": "a1", "level": "info", "message": "hello"},
    "agent_metric": {"agentId": "a1"},
    "agent_error": {"agentId": "a1", "message": "boom"},
    "tdd_phase_change": {"agentId": "a1", "currentPhase": "red"},
    "test_result": {"agentId": "a1", "total": 3, "passing": 2, "failing": 1},
    "coverage_update": {"agentId": "a1", "lines": 80.5},
    "workflow_started": {"workflowId": "w1", "name": "build"},
    "workflow_step_complete": {"workflowId": "w1", "step": "test", "status": "success"},
    "workflow_complete": {"workflowId": "w1"},
    "workflow_failed": {"workflowId": "w1", "error": "tests failed"},
    "system_notification": {"message": "maintenance at noon"},
    "system_alert": {"severity": "critical", "message": "disk full"},
    "deployment_status": {"environment": "production", "status": "success"},
    "github_issue_update": dict(_ISSUE),
    "github_pr_update": {**_ISSUE, "merged": False, "head": "feature", "base": "main"},
    "github_workflow_update": {
        "repository": "octo/repo",
        "kind": "workflow_run",
        "action": "completed",
        "name": "CI",
        "status": "completed",
        "conclusion": None,
        "url": None,
        "actor": None,
    },
}

_DROP = object()

#: type -> (changes to the example's data, expected error path). _DROP removes a key.
BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "connect": ({"limits": {}}, "data.limits.maxFrameBytes"),
    "disconnect": ({"reconnect": "yes"}, "data.reconnect"),
    "ping": ({"__data__": []}, "data"),
    "pong": ({"__data__": None}, "data"),
    "error": ({"code": "bogus"}, "data.code"),
    "auth_request": ({"token": _DROP, "sessionId": "s-1"}, "data"),
    "auth_success": ({"expiresAt": _DROP}, "data.expiresAt"),
    "auth_failure": ({"message": 5}, "data.message"),
    "subscribe": ({"filters": {"agentID": "a1"}}, "data.filters.agentID"),
    "unsubscribe": ({"subscriptionId": _DROP}, "data.subscriptionId"),
    "subscription_update": ({"status": "paused"}, "data.status"),
    "agent_status": (
        {"currentTask": {"id": "t1", "progress": 101}},
        "data.currentTask.progress",
    ),
    "agent_task_update": ({"taskId": ""}, "data.taskId"),
    "agent_log": ({"level": 3}, "data.level"),  # open value (1.1): any short string, never a number
    "agent_metric": ({"cpuUsage": -1}, "data.cpuUsage"),
    "agent_error": ({"recoverable": None}, "data.recoverable"),
    "tdd_phase_change": (
        {"testResults": {"total": 1, "passing": 1, "failing": -1}},
        "data.testResults.failing",
    ),
    "test_result": ({"failures": [{"name": "a"}, {"message": "x"}]}, "data.failures[1].name"),
    "coverage_update": ({"lines": "80"}, "data.lines"),
    "workflow_started": ({"steps": ["build", 1]}, "data.steps[1]"),
    "workflow_step_complete": ({"stepIndex": -1}, "data.stepIndex"),
    "workflow_complete": ({"workflowId": "w" * 129}, "data.workflowId"),
    "workflow_failed": ({"error": _DROP}, "data.error"),
    "system_notification": ({"level": "e" * 65}, "data.level"),
    "system_alert": ({"severity": ["critical"]}, "data.severity"),
    "deployment_status": ({"repository": "no-slash"}, "data.repository"),
    "github_issue_update": ({"number": "7"}, "data.number"),
    "github_pr_update": ({"merged": _DROP}, "data.merged"),
    "github_workflow_update": ({"kind": "deployment"}, "data.kind"),
}


def envelope(type_name: str, data: Any, **extra: Any) -> dict[str, Any]:
    return {"id": f"evt-{type_name}", "type": type_name, "timestamp": 1703775135000,
            "data": data, **extra}


def broken_frame(type_name: str) -> dict[str, Any]:
    changes, _ = BROKEN[type_name]
    data: Any = copy.deepcopy(EXAMPLES[type_name])
    for key, value in changes.items():
        if key == "__data__":
            data = value
        elif value is _DROP:
            del data[key]
        else:
            data[key] = value
    return envelope(type_name, data)


@functools.cache
def validator(type_name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{type_name}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _fmt(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_error_paths(errors: Any) -> set[str]:
    """Paths of every schema error, including inside anyOf/oneOf and missing properties."""
    paths: set[str] = set()
    for err in errors:
        parts = list(err.absolute_path)
        if err.validator == "required":
            for prop in err.validator_value:
                if isinstance(err.instance, dict) and prop not in err.instance:
                    paths.add(_fmt([*parts, prop]))
        elif err.validator == "additionalProperties":
            for prop in err.instance:
                if prop not in err.schema.get("properties", {}):
                    paths.add(_fmt([*parts, prop]))
        else:
            paths.add(_fmt(parts))
        paths |= schema_error_paths(err.context or [])
    return paths


def model_error(frame: Any) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        m.validate_message(frame)
    assert type(info.value) is InvalidMessage
    return info.value


# ------------------------------------------------------------------------- constants


def test_type_lists() -> None:
    assert len(m.MESSAGE_TYPES) == 29 == len(set(m.MESSAGE_TYPES))
    assert m.MESSAGE_TYPES[:3] == ("connect", "disconnect", "ping")
    assert m.MESSAGE_TYPES[-1] == "github_workflow_update"
    assert set(m.CONTROL_TYPES) | set(m.EVENT_TYPES) == set(m.MESSAGE_TYPES)
    assert not set(m.CONTROL_TYPES) & set(m.EVENT_TYPES)
    assert len(m.CONTROL_TYPES) == 11
    assert m.CLIENT_CONTROL_TYPES < set(m.CONTROL_TYPES)
    assert set(m.CATEGORY) == set(m.MESSAGE_TYPES)
    assert m.CATEGORY["tdd_phase_change"] == "tdd"
    assert m.CATEGORY["subscribe"] == "subscription"
    assert m.CATEGORY["deployment_status"] == "system"
    assert set(m.REQUIRED_RESOURCE_KEY) == set(m.EVENT_TYPES)
    assert m.REQUIRED_RESOURCE_KEY["coverage_update"] == "agentId"
    assert m.REQUIRED_RESOURCE_KEY["workflow_failed"] == "workflowId"
    assert m.REQUIRED_RESOURCE_KEY["github_pr_update"] == "repository"
    assert m.REQUIRED_RESOURCE_KEY["deployment_status"] is None
    assert set(KIND_OF_KEY) == set(RESOURCE_KEYS)
    assert {k for k in m.REQUIRED_RESOURCE_KEY.values() if k} <= set(RESOURCE_KEYS)


def test_model_tables_follow_naming() -> None:
    assert list(m.MESSAGE_MODELS) == list(m.MESSAGE_TYPES) == list(m.DATA_MODELS)
    for t in m.MESSAGE_TYPES:
        pascal = "".join(part.capitalize() for part in t.split("_"))
        assert m.MESSAGE_MODELS[t].__name__ == f"{pascal}Message"
        assert m.DATA_MODELS[t].__name__ == f"{pascal}Data"
        assert getattr(m, f"{pascal}Message") is m.MESSAGE_MODELS[t]


def test_every_type_has_example_and_broken_variant() -> None:
    assert set(EXAMPLES) == set(BROKEN) == set(m.MESSAGE_TYPES)


def test_required_resource_key_is_required_by_model() -> None:
    for t, key in m.REQUIRED_RESOURCE_KEY.items():
        if key is None:
            continue
        data = dict(EXAMPLES[t])
        del data[key]
        assert model_error(envelope(t, data)).path == f"data.{key}"


# -------------------------------------------------------------------------- fixtures


def test_fixture_copies_match_the_files() -> None:
    assert EVENT_FIXTURES.is_dir(), f"fixtures missing at {EVENT_FIXTURES}"
    for name, fixture in FIXTURES.items():
        on_disk = json.loads((EVENT_FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
        assert on_disk == fixture


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_validates_both_ways(name: str) -> None:
    fixture = FIXTURES[name]
    m.validate_message(fixture)
    assert list(validator(name).iter_errors(fixture)) == []


def test_snake_case_access() -> None:
    event = m.AgentStatusMessage.model_validate(FIXTURES["agent_status"])
    assert event.data.current_task is not None
    assert event.data.current_task.progress == 65
    assert event.data.agent_id == "coder-001"
    assert event.data.metrics is not None and event.data.metrics.tasks_completed == 12
    tdd = m.TddPhaseChangeMessage.model_validate(FIXTURES["tdd_phase_change"])
    assert tdd.data.test_results is not None and tdd.data.test_results.passing == 45
    assert tdd.data.previous_phase == "red"


def test_parse_message_returns_typed_model() -> None:
    event = m.parse_message(FIXTURES["tdd_phase_change"])
    assert isinstance(event, m.TddPhaseChangeMessage)
    assert event.data.current_phase == "green"


def test_fixture_round_trips_unchanged() -> None:
    for name, fixture in FIXTURES.items():
        dumped = m.MESSAGE_MODELS[name].model_validate(fixture).model_dump(by_alias=True)
        assert dumped == fixture


# -------------------------------------------------------------------- per-type cases


@pytest.mark.parametrize("type_name", m.MESSAGE_TYPES)
def test_minimal_example_validates_both_ways(type_name: str) -> None:
    frame = envelope(type_name, copy.deepcopy(EXAMPLES[type_name]))
    m.validate_message(frame)
    assert list(validator(type_name).iter_errors(frame)) == []


@pytest.mark.parametrize("type_name", m.MESSAGE_TYPES)
def test_broken_variant_fails_both_ways(type_name: str) -> None:
    frame = broken_frame(type_name)
    expected = BROKEN[type_name][1]
    err = model_error(frame)
    assert err.path == expected
    assert err.message
    schema_errors = list(validator(type_name).iter_errors(frame))
    assert schema_errors, "schema accepted a frame the model refuses"
    assert expected in schema_error_paths(schema_errors)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"id": ""}, "id"),
        ({"id": 5}, "id"),
        ({"timestamp": -1}, "timestamp"),
        ({"timestamp": "1703775135000"}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"data": _DROP}, "data"),
        ({"id": _DROP}, "id"),
        ({"metadata": {"compressed": "no"}}, "metadata.compressed"),
        ({"metadata": None}, "metadata"),
    ],
)
def test_envelope_errors(change: dict[str, Any], path: str) -> None:
    frame = copy.deepcopy(FIXTURES["agent_status"])
    for key, value in change.items():
        if value is _DROP:
            del frame[key]
        else:
            frame[key] = value
    assert model_error(frame).path == path
    assert path in schema_error_paths(validator("agent_status").iter_errors(frame))


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"events": []}, "data.events"),
        ({"events": ["agent_*", "Agent*"]}, "data.events[1]"),
        ({"events": ["agent_**"]}, "data.events[0]"),
        ({"events": ["*"], "filters": {"agentId": ["a1", ""]}}, "data.filters.agentId[1]"),
        ({"events": ["*"], "filters": {"agentId": []}}, "data.filters.agentId"),
        ({"events": ["*"], "filters": {"agentId": 5}}, "data.filters.agentId"),
        ({"events": ["*"], "filters": {"repository": ["o/r", "o"]}}, "data.filters.repository[1]"),
        ({"events": ["*"], "filters": {"workflowId": ["w"] * 101}}, "data.filters.workflowId"),
    ],
)
def test_subscribe_errors(data: dict[str, Any], path: str) -> None:
    frame = envelope("subscribe", data)
    assert model_error(frame).path == path
    assert path in schema_error_paths(validator("subscribe").iter_errors(frame))


def test_subscribe_filter_forms_accepted() -> None:
    data = {
        "events": ["*", "agent_*", "tdd_phase_change"],
        "filters": {"agentId": "a1", "taskId": ["t1", "t2"], "repository": "octo/repo"},
    }
    frame = envelope("subscribe", data)
    m.validate_message(frame)
    assert list(validator("subscribe").iter_errors(frame)) == []


def test_auth_request_accepts_api_key_alone() -> None:
    frame = envelope("auth_request", {"apiKey": "k", "compression": "gzip"})
    m.validate_message(frame)
    assert list(validator("auth_request").iter_errors(frame)) == []


def test_nullable_fields_accept_null_but_optional_ones_do_not() -> None:
    ok = envelope("deployment_status", {"environment": "p", "status": "queued", "url": None})
    m.validate_message(ok)
    assert list(validator("deployment_status").iter_errors(ok)) == []
    bad = envelope("deployment_status", {"environment": "p", "status": "queued", "ref": None})
    assert model_error(bad).path == "data.ref"
    assert "data.ref" in schema_error_paths(validator("deployment_status").iter_errors(bad))


# ------------------------------------------------------------------- generic failures


def test_unknown_type() -> None:
    with pytest.raises(UnknownType) as info:
        m.validate_message(envelope("agent_dance", {}))
    assert info.value.path == "type"


@pytest.mark.parametrize("frame", [[], "agent_status", None, 5, [FIXTURES["agent_status"]]])
def test_non_object_is_invalid(frame: Any) -> None:
    model_error(frame)


def test_missing_or_non_string_type() -> None:
    frame = dict(FIXTURES["agent_status"])
    del frame["type"]
    assert model_error(frame).path == "type"
    assert model_error({**frame, "type": 5}).path == "type"
    assert model_error({**frame, "type": None}).path == "type"


def test_error_maps_to_wire_error_data() -> None:
    err = model_error(broken_frame("agent_status"))
    assert err.to_data() == {
        "code": "invalid_message",
        "message": err.message,
        "path": "data.currentTask.progress",
    }


# -------------------------------------------------------- forward compatibility, dumps


def test_extra_fields_are_kept() -> None:
    frame = copy.deepcopy(FIXTURES["agent_status"])
    frame["data"]["extraField"] = {"nested": [1, 2]}
    frame["data"]["currentTask"]["eta"] = 30
    frame["routing"] = "x"
    frame["metadata"] = {"version": "1.0", "traceId": "abc"}
    m.validate_message(frame)
    assert list(validator("agent_status").iter_errors(frame)) == []
    dumped = m.AgentStatusMessage.model_validate(frame).model_dump(by_alias=True)
    assert dumped["data"]["extraField"] == {"nested": [1, 2]}
    assert dumped["data"]["currentTask"]["eta"] == 30
    assert dumped["routing"] == "x"
    assert dumped["metadata"] == {"version": "1.0", "traceId": "abc"}
    assert dumped == frame


def test_models_built_in_python_dump_valid_frames() -> None:
    msg = m.ErrorMessage(
        id="err-1",
        type="error",
        timestamp=1,
        data=m.ErrorData(code="rate_limited", message="slow down", retry_after_ms=250),
        metadata=m.Metadata(correlation_id="req-1"),
    )
    dumped = msg.model_dump(by_alias=True)
    assert dumped == {
        "id": "err-1",
        "type": "error",
        "timestamp": 1,
        "data": {"code": "rate_limited", "message": "slow down", "retryAfterMs": 250},
        "metadata": {"correlationId": "req-1"},
    }
    m.validate_message(dumped)
    assert list(validator("error").iter_errors(dumped)) == []
    # Nullable fields keep their null: it is meaningful (expiresAt null = never expires).
    success = m.AuthSuccessData(subject="u", permissions=[], expires_at=None)
    assert success.model_dump(by_alias=True) == {
        "subject": "u", "permissions": [], "expiresAt": None,
    }


def test_validation_is_strict() -> None:
    frame = envelope("agent_error", {"agentId": "a1", "message": "m", "recoverable": 1})
    assert model_error(frame).path == "data.recoverable"


# ------------------------------------------------------------------ AsyncAPI payloads


@functools.cache
def _asyncapi_registry() -> referencing.Registry[Any]:
    resource = referencing.Resource.from_contents(
        build_asyncapi(), default_specification=referencing.jsonschema.DRAFT202012
    )
    return referencing.Registry().with_resource("urn:asyncapi", resource)


def _asyncapi_validator(type_name: str) -> jsonschema.Draft202012Validator:
    ref = build_asyncapi()["components"]["messages"][type_name]["payload"]["$ref"]
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:asyncapi{ref}"}, registry=_asyncapi_registry()
    )


@pytest.mark.parametrize("type_name", m.MESSAGE_TYPES)
def test_asyncapi_payloads_agree(type_name: str) -> None:
    check = _asyncapi_validator(type_name)
    assert list(check.iter_errors(envelope(type_name, EXAMPLES[type_name]))) == []
    assert list(check.iter_errors(broken_frame(type_name)))
    wrong_type = envelope(type_name, EXAMPLES[type_name])
    wrong_type["type"] = "ping" if type_name != "ping" else "pong"
    assert list(check.iter_errors(wrong_type))

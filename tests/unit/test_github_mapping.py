"""GitHub webhook signature, mapping and dedup, driven by real octokit payloads.

Every file in tests/fixtures/github-webhooks is signed, verified and mapped; the
expected values below were read from those files by hand, so a mapping that
reads the wrong field fails here rather than on a dashboard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from autosdlc_ws.core.messages import validate_message
from autosdlc_ws.sources.github import (
    MAPPED_EVENTS,
    DeliveryDeduplicator,
    map_webhook,
    verify_signature,
)
from tests.conftest import FIXTURES as REPO_FIXTURES

FIXTURES = REPO_FIXTURES / "github-webhooks"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
SECRET = b"test-webhook-secret"
NOW = 1_703_775_135_000


def event_name(path: Path) -> str:
    return path.name.split(".", 1)[0]


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return data


def map_file(name: str, delivery_id: str = "d-1") -> dict[str, Any] | None:
    return map_webhook(name.split(".", 1)[0], load(name), delivery_id=delivery_id, now_ms=NOW)


ISSUE = {
    "repository": "Codertocat/Hello-World",
    "number": 1,
    "title": "Spelling error in the README file",
    "state": "open",
    "url": "https://github.com/Codertocat/Hello-World/issues/1",
    "actor": "Codertocat",
    "labels": ["bug"],
}
ISSUE_BODY = "It looks like you accidently spelled 'commit' with two 't's."
PR = {
    "repository": "Codertocat/Hello-World",
    "number": 2,
    "title": "Update the README with new information.",
    "merged": False,
    "url": "https://github.com/Codertocat/Hello-World/pull/2",
    "actor": "Codertocat",
    "labels": ["bug"],
    "head": "changes",
    "base": "master",
    "draft": False,
}
RUN = {
    "repository": "octo-org/octo-repo",
    "kind": "workflow_run",
    "name": "test",  # workflow_run.name is "" in this payload: the workflow's name is used
    "url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
    "actor": "Codertocat",
    "headBranch": "master",
    "runId": 289782451,
}

#: file -> (our type, fields the envelope's data must hold, exactly)
EXPECTED: dict[str, tuple[str, dict[str, Any]]] = {
    "issues.opened.json": ("github_issue_update", {**ISSUE, "action": "opened", "body": ISSUE_BODY}),
    "issues.labeled.json": ("github_issue_update", {**ISSUE, "action": "labeled", "body": ISSUE_BODY}),
    "issues.reopened.json": ("github_issue_update", {**ISSUE, "action": "reopened", "body": ""}),
    "issues.opened.with-empty-body.json": (
        "github_issue_update", {**ISSUE, "action": "opened", "body": None},
    ),
    "pull_request.opened.json": ("github_pr_update", {**PR, "action": "opened", "state": "open"}),
    "pull_request.opened.with-null-body.json": (
        "github_pr_update", {**PR, "action": "opened", "state": "open"},
    ),
    "pull_request.synchronize.json": (
        "github_pr_update", {**PR, "action": "synchronize", "state": "open"},
    ),
    "pull_request.closed.json": ("github_pr_update", {**PR, "action": "closed", "state": "closed"}),
    "workflow_run.completed.json": (
        "github_workflow_update",
        {**RUN, "action": "completed", "status": "completed", "conclusion": "success"},
    ),
    "workflow_run.requested.json": (
        "github_workflow_update",
        {**RUN, "action": "requested", "status": "queued", "conclusion": None},
    ),
    "workflow_job.completed.failure.json": (
        "github_workflow_update",
        {
            "repository": "Codertocat/Hello-World",
            "kind": "workflow_job",
            "action": "completed",
            "name": "linters",
            "status": "completed",
            "conclusion": "failure",
            "url": "https://github.com/octo-org/octo-repo/runs/1291536064",
            "actor": "Codertocat",
            "headBranch": "main",
            "runId": 289782451,
        },
    ),
    "check_run.completed.json": (
        "github_workflow_update",
        {
            "repository": "Codertocat/Hello-World",
            "kind": "check_run",
            "action": "completed",
            "name": "Octocoders-linter",
            "status": "completed",
            "conclusion": "success",
            "url": "https://github.com/Codertocat/Hello-World/runs/128620228",
            "actor": "Codertocat",
            "headBranch": "changes",  # from check_run.check_suite.head_branch
            "runId": 128620228,
        },
    ),
    "deployment_status.payload.json": (
        "deployment_status",
        {
            "environment": "production",
            "status": "success",
            "repository": "Codertocat/Hello-World",
            "url": None,  # target_url is "" and environment_url absent
            "description": "",
            "ref": "master",
            "actor": "Codertocat",
        },
    ),
}
UNMAPPED = {"push.payload.json", "ping.payload.json"}


def test_every_fixture_is_covered() -> None:
    names = {p.name for p in FIXTURE_FILES}
    assert len(names) >= 15, f"fixtures not found under {FIXTURES}"
    assert names == set(EXPECTED) | UNMAPPED


# --- signatures


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_signature_of_every_fixture(path: Path) -> None:
    body = path.read_bytes()
    header = sign(body)
    assert verify_signature(SECRET, body, header)
    assert verify_signature(SECRET, body, header.upper().replace("SHA256=", "sha256="))
    tampered = body.replace(b"Codertocat", b"Codertocas", 1)
    assert tampered != body
    assert not verify_signature(SECRET, tampered, header)
    assert not verify_signature(SECRET, body + b" ", header)
    assert not verify_signature(b"wrong-secret", body, header)
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, sign(body, b"wrong-secret"))


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256:" + "0" * 64,
        "sha256=" + "0" * 63,
        "sha256=" + "0" * 65,
        "sha256=" + "g" * 64,
        "sha256=" + "é" * 64,
        "SHA256=" + "0" * 64,
    ],
)
def test_malformed_headers_are_false(header: str) -> None:
    assert not verify_signature(SECRET, b"{}", header)


def test_signature_header_is_whitespace_tolerant_and_secret_must_be_set() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    assert verify_signature(SECRET, body, f"  {sign(body)} ")
    # An empty secret would let anyone sign: never verifies.
    assert not verify_signature(b"", body, sign(body, b""))


# --- mapping


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mapped_fixture(name: str) -> None:
    event_type, fields = EXPECTED[name]
    env = map_file(name, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert env is not None
    assert env["id"] == "gh-72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert env["type"] == event_type
    assert env["timestamp"] == NOW
    assert env["metadata"] == {
        "version": "1.0", "source": "github", "githubEvent": name.split(".", 1)[0],
    }
    data = env["data"]
    for key, value in fields.items():
        assert data[key] == value, key
    assert "comment" not in data
    assert "review" not in data
    validate_message(env)


@pytest.mark.parametrize("name", sorted(UNMAPPED))
def test_unmapped_fixture_is_none(name: str) -> None:
    assert map_file(name) is None


def test_unknown_events_are_none_and_mapped_set() -> None:
    assert map_webhook("star", {"action": "created"}, delivery_id="x", now_ms=NOW) is None
    assert map_webhook("ping", load("ping.payload.json"), delivery_id="x", now_ms=NOW) is None
    assert {event_name(Path(n)) for n in EXPECTED} <= MAPPED_EVENTS
    assert MAPPED_EVENTS == {
        "issues", "issue_comment", "pull_request", "pull_request_review",
        "pull_request_review_comment", "workflow_run", "workflow_job", "check_run",
        "check_suite", "deployment_status",
    }


def test_same_delivery_same_id_and_envelopes_are_fresh() -> None:
    a = map_file("pull_request.opened.json", delivery_id="abc")
    b = map_file("pull_request.opened.json", delivery_id="abc")
    c = map_file("pull_request.opened.json", delivery_id="abd")
    assert a is not None and b is not None and c is not None
    assert a == b and a["id"] == "gh-abc" and c["id"] == "gh-abd"


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": 1}


def test_issue_comment() -> None:
    payload = load("issues.opened.json")
    payload["action"] = "created"
    payload["comment"] = {
        "id": 492700400,
        "html_url": "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400",
        "body": "You are totally right! I'll get this fixed right away.",
        "user": _user("Codertocat"),
    }
    env = map_webhook("issue_comment", payload, delivery_id="c1", now_ms=NOW)
    assert env is not None and env["type"] == "github_issue_update"
    assert env["data"]["action"] == "created"
    assert env["data"]["number"] == 1
    assert env["data"]["comment"] == {
        "id": 492700400,
        "body": "You are totally right! I'll get this fixed right away.",
        "url": "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400",
        "author": "Codertocat",
    }
    validate_message(env)


def test_pull_request_review_and_review_comment() -> None:
    payload = load("pull_request.opened.json")
    payload["action"] = "submitted"
    payload["review"] = {"id": 237895671, "state": "commented", "body": None,
                         "user": _user("Octocat")}
    env = map_webhook("pull_request_review", payload, delivery_id="r1", now_ms=NOW)
    assert env is not None and env["type"] == "github_pr_update"
    assert env["data"]["number"] == 2
    assert env["data"]["review"] == {
        "id": 237895671, "state": "commented", "body": None, "author": "Octocat",
    }
    assert "comment" not in env["data"]
    validate_message(env)

    payload["action"] = "created"
    payload["comment"] = {"id": 7, "body": "nit", "html_url": "https://x/7", "user": None}
    env = map_webhook("pull_request_review_comment", payload, delivery_id="r2", now_ms=NOW)
    assert env is not None and env["type"] == "github_pr_update"
    assert env["data"]["comment"] == {"id": 7, "body": "nit", "url": "https://x/7", "author": None}
    assert "review" not in env["data"]
    validate_message(env)


def test_merged_pull_request() -> None:
    payload = load("pull_request.closed.json")
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["draft"] = None
    env = map_webhook("pull_request", payload, delivery_id="m", now_ms=NOW)
    assert env is not None
    assert env["data"]["merged"] is True and env["data"]["draft"] is False


def test_check_suite() -> None:
    payload = {
        "action": "completed",
        "check_suite": {"id": 118578147, "head_branch": "changes", "status": "completed",
                        "conclusion": "success", "app": {"name": "Super CI"}},
        "repository": {"full_name": "Codertocat/Hello-World"},
        "sender": None,
    }
    env = map_webhook("check_suite", payload, delivery_id="s", now_ms=NOW)
    assert env is not None
    assert env["data"] == {
        "repository": "Codertocat/Hello-World", "kind": "check_suite", "action": "completed",
        "name": "Super CI", "status": "completed", "conclusion": "success", "url": None,
        "actor": None, "headBranch": "changes", "runId": 118578147,
    }
    validate_message(env)


@pytest.mark.parametrize(
    ("state", "expected"),
    [("success", "success"), ("failure", "failure"), ("error", "error"),
     ("in_progress", "in_progress"), ("queued", "queued"), ("inactive", "inactive"),
     ("pending", "pending"), ("waiting", "pending"), (None, "pending")],
)
def test_deployment_states(state: str | None, expected: str) -> None:
    payload = load("deployment_status.payload.json")
    payload["deployment_status"]["state"] = state
    payload["deployment_status"]["environment_url"] = "https://prod.example.com"
    env = map_webhook("deployment_status", payload, delivery_id="d", now_ms=NOW)
    assert env is not None
    assert env["data"]["status"] == expected
    assert env["data"]["url"] == "https://prod.example.com"
    validate_message(env)


def test_deployment_target_url_wins() -> None:
    payload = load("deployment_status.payload.json")
    payload["deployment_status"]["target_url"] = "https://ci.example.com/logs/1"
    payload["deployment_status"]["environment_url"] = "https://prod.example.com"
    env = map_webhook("deployment_status", payload, delivery_id="d", now_ms=NOW)
    assert env is not None and env["data"]["url"] == "https://ci.example.com/logs/1"


def test_nullable_issue_and_pr_fields() -> None:
    payload = load("issues.opened.json")
    payload["issue"]["labels"] = None
    payload.pop("installation", None)
    env = map_webhook("issues", payload, delivery_id="n", now_ms=NOW)
    assert env is not None and env["data"]["labels"] == [] and env["data"]["number"] == 1

    payload = load("pull_request.opened.with-null-body.json")
    for key in ("labels", "draft", "merged", "body"):
        payload["pull_request"][key] = None
    env = map_webhook("pull_request", payload, delivery_id="n", now_ms=NOW)
    assert env is not None
    assert env["data"]["labels"] == [] and env["data"]["merged"] is False
    assert env["data"]["draft"] is False


def test_nullable_workflow_fields() -> None:
    payload = load("workflow_run.completed.json")
    payload["sender"] = None
    payload.pop("workflow")
    for key in ("conclusion", "html_url", "head_branch"):
        payload["workflow_run"][key] = None
    env = map_webhook("workflow_run", payload, delivery_id="n", now_ms=NOW)
    assert env is not None
    data = env["data"]
    assert data["actor"] is None and data["url"] is None and data["headBranch"] is None
    assert data["conclusion"] is None
    assert data["name"] == "workflow_run"  # no name anywhere: the event name, not a 422


def test_deployment_without_deployment_or_sender() -> None:
    payload = load("deployment_status.payload.json")
    payload.pop("deployment")
    payload["sender"] = None
    payload["deployment_status"]["description"] = None
    payload["deployment_status"]["target_url"] = None
    env = map_webhook("deployment_status", payload, delivery_id="n", now_ms=NOW)
    assert env is not None
    data = env["data"]
    assert data["actor"] == "Codertocat"  # deployment_status.creator
    assert "ref" not in data  # optional, not nullable: left out
    assert data["description"] is None and data["url"] is None
    assert data["environment"] == "production"


def _mutations(payload: dict[str, Any], main_key: str) -> list[dict[str, Any]]:
    """The payload with each top-level or main-object field nulled, and removed."""
    out: list[dict[str, Any]] = []
    for key in payload:
        for mode in ("null", "drop"):
            p = json.loads(json.dumps(payload))
            if mode == "null":
                p[key] = None
            else:
                del p[key]
            out.append(p)
    for key in payload.get(main_key) or {}:
        for mode in ("null", "drop"):
            p = json.loads(json.dumps(payload))
            if mode == "null":
                p[main_key][key] = None
            else:
                del p[main_key][key]
            out.append(p)
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_any_field_nulled_or_missing_is_envelope_or_valueerror(name: str) -> None:
    """Never a KeyError/TypeError: either a valid event or a ValueError (422)."""
    event = name.split(".", 1)[0]
    payload = load(name)
    main_key = {"issues": "issue"}.get(event, event)
    results = {"ok": 0, "refused": 0}
    for mutated in _mutations(payload, main_key):
        try:
            env = map_webhook(event, mutated, delivery_id="f", now_ms=NOW)
        except ValueError:
            results["refused"] += 1
            continue
        assert env is not None
        validate_message(env)
        results["ok"] += 1
    assert results["ok"] > results["refused"] > 0


@pytest.mark.parametrize("event", sorted(MAPPED_EVENTS))
@pytest.mark.parametrize(
    "payload",
    [{}, {"repository": None}, {"repository": {}}, {"repository": {"full_name": ""}},
     {"repository": {"full_name": 5}}],
    ids=["empty", "null", "no-full-name", "blank", "not-a-string"],
)
def test_missing_repository_is_valueerror(event: str, payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"repository\.full_name"):
        map_webhook(event, payload, delivery_id="x", now_ms=NOW)


@pytest.mark.parametrize("event", sorted(MAPPED_EVENTS))
def test_missing_main_object_is_valueerror(event: str) -> None:
    key = {"issues": "issue", "issue_comment": "issue", "pull_request": "pull_request",
           "pull_request_review": "pull_request",
           "pull_request_review_comment": "pull_request"}.get(event, event)
    payload = {"action": "x", "repository": {"full_name": "o/r"}, key: None}
    with pytest.raises(ValueError, match=key):
        map_webhook(event, payload, delivery_id="x", now_ms=NOW)


def test_non_object_payload_is_valueerror() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        map_webhook("issues", [1, 2], delivery_id="x", now_ms=NOW)  # type: ignore[arg-type]


# --- dedup


def test_dedup_records_and_detects() -> None:
    dedup = DeliveryDeduplicator()
    assert dedup.max_size == 10_000
    assert dedup.seen("a") is False
    assert dedup.seen("a") is True
    assert dedup.seen("b") is False
    assert "a" in dedup and "c" not in dedup and len(dedup) == 2


def test_dedup_evicts_oldest_first() -> None:
    dedup = DeliveryDeduplicator(max_size=3)
    for d in ("a", "b", "c"):
        assert not dedup.seen(d)
    assert dedup.seen("a")  # a hit does not refresh: eviction is FIFO
    assert not dedup.seen("d")  # evicts a
    assert len(dedup) == 3
    assert "a" not in dedup
    assert dedup.seen("b") and dedup.seen("c") and dedup.seen("d")
    assert not dedup.seen("a")  # forgotten, so recorded again (evicting b)
    assert "b" not in dedup and len(dedup) == 3


def test_dedup_stays_bounded() -> None:
    dedup = DeliveryDeduplicator(max_size=100)
    for i in range(10_000):
        assert not dedup.seen(f"d-{i}")
    assert len(dedup) == 100
    assert dedup.seen("d-9999") and not dedup.seen("d-0")


def test_dedup_forget_lets_a_redelivery_in() -> None:
    dedup = DeliveryDeduplicator(max_size=2)
    assert not dedup.seen("a")
    dedup.forget("a")
    dedup.forget("never-seen")  # no error
    assert "a" not in dedup and len(dedup) == 0
    assert not dedup.seen("a") and dedup.seen("a")


def test_dedup_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DeliveryDeduplicator(max_size=0)

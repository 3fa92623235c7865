"""GitHub webhooks as gateway events: signature check, mapping and dedup, no I/O.

The HTTP layer reads the body and the `X-GitHub-Event`, `X-GitHub-Delivery`
and `X-Hub-Signature-256` headers, then calls, in order:

1. `verify_signature` (401 when False; nothing else is looked at),
2. `map_webhook` on the parsed JSON (None: 200 for `ping`, 202 for other
   unmapped events; `ValueError`: 422; an envelope: go on),
3. `DeliveryDeduplicator.seen` (200 `{"duplicate": true}` when True), then
   publish (202; on failure `forget` the id so GitHub's redelivery gets in).

The envelope id is derived from the delivery id, so a redelivery that slips
past the bounded deduplicator (evicted, or another worker) still dedupes by id
downstream. The mapping is documented in `docs/github-webhooks.md`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from autosdlc_ws.core.messages import validate_message
from autosdlc_ws.errors import ProtocolError

__all__ = [
    "DEFAULT_DEDUP_SIZE",
    "DEPLOYMENT_STATES",
    "ISSUE_EVENTS",
    "MAPPED_EVENTS",
    "PR_EVENTS",
    "SIGNATURE_PREFIX",
    "WORKFLOW_EVENTS",
    "DeliveryDeduplicator",
    "map_webhook",
    "verify_signature",
]

SIGNATURE_PREFIX = "sha256="
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

ISSUE_EVENTS = frozenset({"issues", "issue_comment"})
PR_EVENTS = frozenset({"pull_request", "pull_request_review", "pull_request_review_comment"})
WORKFLOW_EVENTS = frozenset({"workflow_run", "workflow_job", "check_run", "check_suite"})
#: Every `X-GitHub-Event` that `map_webhook` turns into an envelope.
MAPPED_EVENTS: frozenset[str] = ISSUE_EVENTS | PR_EVENTS | WORKFLOW_EVENTS | {"deployment_status"}

#: The `deployment_status.status` values we publish; GitHub's other states map to "pending".
DEPLOYMENT_STATES = frozenset(
    {"pending", "queued", "in_progress", "success", "failure", "error", "inactive"}
)

DEFAULT_DEDUP_SIZE = 10_000


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `header` is GitHub's `sha256=<hex>` HMAC of `body` under `secret`.

    An empty secret never verifies: anyone could compute that signature, so an
    unconfigured secret must not open the endpoint. Comparison is constant time.
    """
    if not secret or header is None:
        return False
    header = header.strip()
    if not header.startswith(SIGNATURE_PREFIX):
        return False
    given = header[len(SIGNATURE_PREFIX):]
    # Checked before compare_digest, which refuses non-ASCII str arguments.
    if len(given) != hashlib.sha256().digest_size * 2 or not set(given) <= _HEX_DIGITS:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given.lower())


class DeliveryDeduplicator:
    """The last `max_size` delivery ids, to drop GitHub redeliveries.

    FIFO eviction, not LRU: a redelivery is a retry of the same delivery,
    usually minutes later, so refreshing on a hit buys nothing. Bounded so a
    flood of deliveries cannot grow memory; no clock, so it stays pure.
    """

    def __init__(self, max_size: int = DEFAULT_DEDUP_SIZE) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self.max_size = max_size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, delivery_id: str) -> bool:
        """True if `delivery_id` was already recorded; otherwise record it."""
        if delivery_id in self._ids:
            return True
        self._ids[delivery_id] = None
        while len(self._ids) > self.max_size:
            self._ids.popitem(last=False)
        return False

    def forget(self, delivery_id: str) -> None:
        """Drop a recorded id, so GitHub's redelivery of a delivery we failed to publish
        (broker down: 503) is accepted instead of answered as a duplicate."""
        self._ids.pop(delivery_id, None)

    def __contains__(self, delivery_id: object) -> bool:
        return delivery_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


def map_webhook(
    event_name: str, payload: Mapping[str, Any], *, delivery_id: str, now_ms: int
) -> dict[str, Any] | None:
    """One gateway envelope for a GitHub webhook, or None when we do not map it.

    The envelope is valid for `validate_message`. Raises `ValueError` when a
    mapped event lacks what its envelope needs (`repository.full_name`, the
    event's main object, or a field the message type requires), so the HTTP
    layer can answer 422 instead of publishing a half-empty event.
    """
    if event_name not in MAPPED_EVENTS:
        return None
    if not isinstance(payload, Mapping):
        # ValueError, not TypeError: bad input the HTTP layer answers with 422.
        raise ValueError(f"GitHub {event_name!r} payload must be a JSON object")
    repository = _repository(event_name, payload)
    if event_name in ISSUE_EVENTS:
        event_type, data = "github_issue_update", _issue_data(event_name, payload, repository)
    elif event_name in PR_EVENTS:
        event_type, data = "github_pr_update", _pr_data(event_name, payload, repository)
    elif event_name in WORKFLOW_EVENTS:
        event_type, data = "github_workflow_update", _workflow_data(event_name, payload, repository)
    else:
        event_type, data = "deployment_status", _deployment_data(payload, repository)
    envelope: dict[str, Any] = {
        "id": f"gh-{delivery_id}",
        "type": event_type,
        "timestamp": now_ms,
        "data": data,
        "metadata": {"version": "1.0", "source": "github", "githubEvent": event_name},
    }
    # Checked here so the caller gets one failure mode (ValueError -> 422) for a
    # payload that lacks what the event needs (say, a null title), never a bad event.
    try:
        validate_message(envelope)
    except ProtocolError as exc:
        where = f" at {exc.path}" if exc.path else ""
        raise ValueError(
            f"GitHub {event_name!r} payload does not make a valid {event_type}{where}: "
            f"{exc.message}"
        ) from None
    return envelope


# --- helpers: GitHub sends null for absent objects, so every read tolerates None.


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _login(user: Any) -> str | None:
    return _str_or_none(_obj(user).get("login"))


def _labels(value: Any) -> list[str]:
    """Label names: issue/PR labels are objects, workflow_job labels plain strings."""
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for label in value:
        name = label.get("name") if isinstance(label, Mapping) else label
        if isinstance(name, str):
            names.append(name)
    return names


def _repository(event_name: str, payload: Mapping[str, Any]) -> str:
    full_name = _obj(payload.get("repository")).get("full_name")
    if not isinstance(full_name, str) or not full_name:
        raise ValueError(f"GitHub {event_name!r} payload has no repository.full_name")
    return full_name


def _main_object(event_name: str, payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if not isinstance(value, Mapping):
        raise ValueError(f"GitHub {event_name!r} payload has no {key!r} object")
    return value


def _action(payload: Mapping[str, Any]) -> str | None:
    return _str_or_none(payload.get("action"))


def _issue_data(event_name: str, payload: Mapping[str, Any], repository: str) -> dict[str, Any]:
    issue = _main_object(event_name, payload, "issue")
    data: dict[str, Any] = {
        "repository": repository,
        "action": _action(payload),
        "number": issue.get("number"),
        "title": _str_or_none(issue.get("title")),
        "state": _str_or_none(issue.get("state")),
        "url": _str_or_none(issue.get("html_url")),
        "actor": _login(payload.get("sender")),
        "labels": _labels(issue.get("labels")),
        "body": _str_or_none(issue.get("body")),
    }
    if event_name == "issue_comment":
        data["comment"] = _comment(payload.get("comment"))
    return data


def _comment(value: Any) -> dict[str, Any]:
    comment = _obj(value)
    return {
        "id": comment.get("id"),
        "body": _str_or_none(comment.get("body")),
        "url": _str_or_none(comment.get("html_url")),
        "author": _login(comment.get("user")),
    }


def _pr_data(event_name: str, payload: Mapping[str, Any], repository: str) -> dict[str, Any]:
    pr = _main_object(event_name, payload, "pull_request")
    data: dict[str, Any] = {
        "repository": repository,
        "action": _action(payload),
        "number": pr.get("number", payload.get("number")),
        "title": _str_or_none(pr.get("title")),
        "state": _str_or_none(pr.get("state")),
        "merged": bool(pr.get("merged")),
        "url": _str_or_none(pr.get("html_url")),
        "actor": _login(payload.get("sender")),
        "labels": _labels(pr.get("labels")),
        "head": _str_or_none(_obj(pr.get("head")).get("ref")),
        "base": _str_or_none(_obj(pr.get("base")).get("ref")),
        "draft": bool(pr.get("draft")),
    }
    if event_name == "pull_request_review":
        review = _obj(payload.get("review"))
        data["review"] = {
            "id": review.get("id"),
            "state": _str_or_none(review.get("state")),
            "body": _str_or_none(review.get("body")),
            "author": _login(review.get("user")),
        }
    elif event_name == "pull_request_review_comment":
        data["comment"] = _comment(payload.get("comment"))
    return data


def _workflow_data(event_name: str, payload: Mapping[str, Any], repository: str) -> dict[str, Any]:
    obj = _main_object(event_name, payload, event_name)
    # workflow_run.name may be "" in real payloads; the workflow's own name is then
    # the useful one (workflow_job carries it as workflow_name, a check suite has its
    # app's). The event name is the last resort: `name` is required downstream.
    name = (
        _str_or_none(obj.get("name"))
        or _str_or_none(_obj(payload.get("workflow")).get("name"))
        or _str_or_none(obj.get("workflow_name"))
        or _str_or_none(_obj(obj.get("app")).get("name"))
        or event_name
    )
    head_branch = _str_or_none(obj.get("head_branch"))
    if head_branch is None and event_name == "check_run":
        head_branch = _str_or_none(_obj(obj.get("check_suite")).get("head_branch"))
    data: dict[str, Any] = {
        "repository": repository,
        "kind": event_name,
        "action": _action(payload),
        "name": name,
        "status": _str_or_none(obj.get("status")),
        "conclusion": _str_or_none(obj.get("conclusion")),
        "url": _str_or_none(obj.get("html_url")),
        "actor": _login(payload.get("sender")),
        "headBranch": head_branch,
    }
    run_id = obj.get("id")
    if run_id is not None:
        data["runId"] = run_id
    return data


def _deployment_data(payload: Mapping[str, Any], repository: str) -> dict[str, Any]:
    status = _main_object("deployment_status", payload, "deployment_status")
    deployment = _obj(payload.get("deployment"))
    state = status.get("state")
    environment = _str_or_none(status.get("environment")) or _str_or_none(
        deployment.get("environment")
    )
    data: dict[str, Any] = {
        "environment": environment,
        "status": state if state in DEPLOYMENT_STATES else "pending",
        "repository": repository,
        # GitHub sends "" for an unset target_url; an empty link is no link.
        "url": _str_or_none(status.get("target_url"))
        or _str_or_none(status.get("environment_url"))
        or None,
        "description": _str_or_none(status.get("description")),
    }
    # Optional, not nullable, in the deployment_status model: left out when unknown.
    ref = _str_or_none(deployment.get("ref"))
    if ref is not None:
        data["ref"] = ref
    actor = _login(payload.get("sender")) or _login(status.get("creator"))
    if actor is not None:
        data["actor"] = actor
    return data

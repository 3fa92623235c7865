"""Permissions: the `<action>:<resource>` grammar, the read/publish checks, may_subscribe.

The exactness of `may_subscribe` (it refuses a subscription exactly when some
event it could match is unreadable) is checked against a brute force over a
small universe of events; the argument that makes a finite universe enough is
in `test_may_subscribe_is_exact_against_brute_force`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autosdlc_ws.core import messages
from autosdlc_ws.core.permissions import (
    SYSTEM,
    SYSTEM_TYPES,
    Grants,
    Permission,
    PermissionSyntaxError,
    Resource,
    event_resources,
    may_access_event,
    may_subscribe,
    parse_permissions,
)

# --------------------------------------------------------------------------- grammar

VALID = [
    ("read:*", Permission("read", "*", "")),
    ("publish:*", Permission("publish", "*", "")),
    ("admin:*", Permission("admin", "*", "")),
    ("read:system", Permission("read", "system", "")),
    ("read:agent:*", Permission("read", "agent", "*")),
    ("read:agent:coder-001", Permission("read", "agent", "coder-001")),
    ("publish:task:task-789", Permission("publish", "task", "task-789")),
    ("admin:workflow:w1", Permission("admin", "workflow", "w1")),
    ("read:workflow:*", Permission("read", "workflow", "*")),
    ("read:repo:*", Permission("read", "repo", "*")),
    ("read:repo:octo/hello-world", Permission("read", "repo", "octo/hello-world")),
]

INVALID = [
    "",
    "read",
    "read:",
    "*:*",
    "write:*",
    "READ:*",
    "subscribe:agent:a1",
    "read:agent",  # kind without id
    "read:agent:",  # empty id
    "read:user:u1",  # unknown kind
    "read:system:x",  # system has no id
    "read:*:x",
    "read:repo:octo",  # repo needs owner/name
    "read:repo:a/b/c",
    "read:repo:octo/",  # empty name
    "read:repo:/repo",  # empty owner
    "read:repo:/",
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_permissions_parse_and_round_trip(text: str, expected: Permission) -> None:
    perm = Permission.parse(text)
    assert perm == expected
    assert str(perm) == text


@pytest.mark.parametrize("text", INVALID)
def test_invalid_permissions_are_refused(text: str) -> None:
    with pytest.raises(PermissionSyntaxError):
        Permission.parse(text)


def test_parse_permissions_refuses_the_list_when_one_is_bad() -> None:
    assert len(parse_permissions(["read:*", "publish:agent:a1"])) == 2
    with pytest.raises(PermissionSyntaxError):
        parse_permissions(["read:*", "read:repo:octo"])


def test_grants_strings_are_the_normalised_permissions() -> None:
    assert Grants.from_strings(["read:agent:a1", "admin:*"]).strings() == ["read:agent:a1", "admin:*"]


# ----------------------------------------------------------------------------- admin


@pytest.mark.parametrize("action", ["read", "publish", "admin"])
def test_admin_implies_read_and_publish_on_the_same_resource_only(action: str) -> None:
    grants = Grants.from_strings(["admin:agent:a1"])
    assert grants.allows(action, Resource("agent", "a1"))
    assert not grants.allows(action, Resource("agent", "a2"))
    assert not grants.allows(action, SYSTEM)
    assert grants.has_any(action)


def test_read_and_publish_do_not_imply_admin() -> None:
    grants = Grants.from_strings(["read:*", "publish:*"])
    assert not grants.allows("admin", Resource("agent", "a1"))
    assert not grants.has_any("admin")


# ------------------------------------------------------------- the permission matrix

RESOURCES = [
    Resource("agent", "a1"),
    Resource("agent", "a2"),
    Resource("task", "t1"),
    Resource("workflow", "w1"),
    Resource("repo", "o/r"),
    Resource("repo", "o/x"),
    SYSTEM,
]

# One row per subject; one cell per resource above, in that order.
# A cell lists the actions allowed: r = read, p = publish, a = admin, - = none.
#                        agent:a1 agent:a2 task:t1 wf:w1 repo:o/r repo:o/x system
MATRIX: dict[str, str] = {
    "read:*":           "r        r        r       r     r        r        r",
    "read:agent:*":     "r        r        -       -     -        -        -",
    "read:agent:a1":    "r        -        -       -     -        -        -",
    "read:task:t1":     "-        -        r       -     -        -        -",
    "read:workflow:*":  "-        -        -       r     -        -        -",
    "read:repo:o/r":    "-        -        -       -     r        -        -",
    "read:system":      "-        -        -       -     -        -        r",
    "publish:*":        "p        p        p       p     p        p        p",
    "publish:repo:*":   "-        -        -       -     p        p        -",
    "admin:*":          "rpa      rpa      rpa     rpa   rpa      rpa      rpa",
    "admin:agent:a2":   "-        rpa      -       -     -        -        -",
}


def _matrix_cases() -> list[tuple[str, Resource, str, bool]]:
    cases = []
    for subject, row in MATRIX.items():
        cells = row.split()
        assert len(cells) == len(RESOURCES), subject
        for resource, cell in zip(RESOURCES, cells, strict=True):
            for action, letter in (("read", "r"), ("publish", "p"), ("admin", "a")):
                cases.append((subject, resource, action, letter in cell))
    return cases


@pytest.mark.parametrize(
    ("subject", "resource", "action", "expected"),
    _matrix_cases(),
    ids=lambda v: str(v),
)
def test_permission_matrix(subject: str, resource: Resource, action: str, expected: bool) -> None:
    assert Grants.from_strings([subject]).allows(action, resource) is expected


def test_matrix_grants_combine_as_a_union() -> None:
    grants = Grants.from_strings(["read:agent:a1", "read:system", "publish:task:t1"])
    allowed = {(a, str(r)) for a in ("read", "publish") for r in RESOURCES if grants.allows(a, r)}
    assert allowed == {("read", "agent:a1"), ("read", "system"), ("publish", "task:t1")}


def test_allows_kind_needs_the_wildcard_of_the_kind() -> None:
    assert Grants.from_strings(["read:agent:*"]).allows_kind("read", "agent")
    assert not Grants.from_strings(["read:agent:a1"]).allows_kind("read", "agent")
    assert not Grants.from_strings(["read:agent:*"]).allows_kind("read", "task")
    assert Grants.from_strings(["read:*"]).allows_kind("read", "repo")
    assert Grants.from_strings(["read:system"]).allows_kind("read", "system")
    assert not Grants.from_strings(["read:agent:*"]).allows_kind("publish", "agent")


def test_no_permissions_allow_nothing() -> None:
    grants = Grants.from_strings([])
    assert not any(grants.allows(a, r) for a in ("read", "publish", "admin") for r in RESOURCES)
    assert not grants.has_any("read")


# --------------------------------------------------------------------- event resources


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        ("agent_status", {"agentId": "a1", "status": "idle"}, ["agent:a1"]),
        ("agent_log", {"agentId": "a1", "taskId": "t1"}, ["agent:a1", "task:t1"]),
        ("tdd_phase_change", {"agentId": "a1", "taskId": "t1"}, ["agent:a1", "task:t1"]),
        ("coverage_update", {"agentId": "a1", "lines": 3}, ["agent:a1"]),
        ("workflow_started", {"workflowId": "w1"}, ["workflow:w1"]),
        ("github_pr_update", {"repository": "o/r"}, ["repo:o/r"]),
        ("system_alert", {"severity": "info"}, ["system"]),
        ("system_notification", {"message": "m"}, ["system"]),
        # system types always include `system`, also when they name a resource
        ("deployment_status", {"repository": "o/r"}, ["repo:o/r", "system"]),
        ("system_alert", {"agentId": "a1"}, ["agent:a1", "system"]),
        # non-string values name no resource; an event naming none is a system event
        ("agent_status", {"agentId": 5}, ["system"]),
        ("agent_status", {"agentId": ["a1"], "taskId": "t1"}, ["task:t1"]),
    ],
)
def test_event_resources(event_type: str, data: dict[str, object], expected: list[str]) -> None:
    assert [str(r) for r in event_resources(event_type, data)] == expected


def test_event_is_readable_when_any_resource_is() -> None:
    data = {"agentId": "a1", "taskId": "t9"}
    assert may_access_event(Grants.from_strings(["read:agent:a1"]), "read", "tdd_phase_change", data)
    assert may_access_event(Grants.from_strings(["read:task:t9"]), "read", "tdd_phase_change", data)
    assert not may_access_event(Grants.from_strings(["read:agent:a2"]), "read", "tdd_phase_change", data)
    assert not may_access_event(Grants.from_strings(["read:agent:a1"]), "publish", "tdd_phase_change", data)
    assert not may_access_event(Grants.from_strings(["publish:agent:*"]), "publish", "tdd_phase_change", data)


def test_publishing_needs_every_resource() -> None:
    agent_only = Grants.from_strings(["publish:agent:a1"])
    assert may_access_event(agent_only, "publish", "agent_status", {"agentId": "a1"})
    # naming a task, a workflow or (for system types) `system` needs those too
    assert not may_access_event(agent_only, "publish", "tdd_phase_change", {"agentId": "a1", "taskId": "t9"})
    assert not may_access_event(agent_only, "publish", "system_alert", {"agentId": "a1"})
    assert not may_access_event(agent_only, "publish", "agent_status", {"agentId": "a1", "workflowId": "w"})
    agent_and_tasks = Grants.from_strings(["publish:agent:a1", "publish:task:*"])
    assert may_access_event(agent_and_tasks, "publish", "tdd_phase_change", {"agentId": "a1", "taskId": "t9"})
    assert may_access_event(Grants.from_strings(["publish:*"]), "publish", "system_alert", {"agentId": "a1"})


def test_system_event_needs_system_or_a_named_resource() -> None:
    alert = {"severity": "critical", "message": "disk"}
    assert may_access_event(Grants.from_strings(["read:system"]), "read", "system_alert", alert)
    assert not may_access_event(Grants.from_strings(["read:agent:*"]), "read", "system_alert", alert)
    deploy = {"repository": "o/r", "environment": "prod"}
    assert may_access_event(Grants.from_strings(["read:repo:o/r"]), "read", "deployment_status", deploy)
    assert not may_access_event(Grants.from_strings(["read:repo:o/x"]), "read", "deployment_status", deploy)


# ------------------------------------------------------------------------ may_subscribe

REQUIRED = messages.REQUIRED_RESOURCE_KEY
AGENT_TYPES = sorted(t for t in messages.EVENT_TYPES if t.startswith("agent_"))


def _sub(perms: list[str], types: list[str], filters: Mapping[str, set[str]] | None = None) -> str | None:
    fs = {k: frozenset(v) for k, v in (filters or {}).items()}
    return may_subscribe(Grants.from_strings(perms), types, fs, REQUIRED)


def test_unfiltered_needs_the_whole_kind() -> None:
    assert _sub(["read:agent:*"], AGENT_TYPES) is None
    reason = _sub(["read:agent:a1"], ["agent_status"])
    assert reason is not None and "read:agent:*" in reason
    assert _sub(["read:workflow:*"], ["agent_status"]) is not None
    assert _sub(["read:workflow:*"], ["workflow_started", "workflow_failed"]) is None
    assert _sub(["read:repo:*"], ["github_pr_update"]) is None
    assert _sub(["read:repo:o/r"], ["github_pr_update"]) is not None


def test_every_type_of_the_subscription_is_checked() -> None:
    # agent types are fine, the workflow type is not
    assert _sub(["read:agent:*"], ["agent_status", "workflow_started"]) is not None
    all_types = list(messages.EVENT_TYPES)
    assert _sub(["read:*"], all_types) is None
    assert _sub(["read:agent:*", "read:task:*", "read:workflow:*", "read:repo:*"], all_types) is not None
    assert _sub(["read:agent:*", "read:workflow:*", "read:repo:*", "read:system"], all_types) is None


def test_filtered_by_readable_values() -> None:
    assert _sub(["read:agent:a1"], ["agent_status"], {"agentId": {"a1"}}) is None
    assert _sub(["read:agent:a1"], AGENT_TYPES, {"agentId": {"a1"}}) is None
    assert _sub(["read:agent:a1"], ["agent_status"], {"agentId": {"a1", "a2"}}) is not None
    assert _sub(["read:agent:a1", "read:agent:a2"], ["agent_status"], {"agentId": {"a1", "a2"}}) is None
    # a filter on another key than the type's own: the event names it, so it is readable
    assert _sub(["read:task:t1"], ["agent_status"], {"taskId": {"t1"}}) is None
    assert _sub(["read:task:t1"], ["agent_status"], {"agentId": {"a1"}}) is not None


def test_filter_that_does_not_help_falls_back_to_the_type_rule() -> None:
    # the filter's values are not readable, but the whole kind of the type's key is
    assert _sub(["read:agent:*"], ["agent_status"], {"repository": {"o/r"}}) is None
    reason = _sub(["read:agent:a1"], ["agent_status"], {"repository": {"o/r"}})
    assert reason is not None and "filters" in reason


def test_multiple_filter_keys() -> None:
    """Filters {K1: V1, ..., Kn: Vn} match events carrying (v1, ..., vn) in V1 x ... x Vn.

    Every such event is readable iff some Ki has *all* of Vi readable: if none
    has, pick an unreadable vi from every Vi, and the event (v1, ..., vn) matches
    and names no readable resource (with no type-wide grant to save it).
    """
    both = {"agentId": {"a1", "a2"}, "taskId": {"t1"}}
    assert _sub(["read:agent:a1", "read:task:t1"], ["agent_log"], both) is None
    # (a2, t1) matches and neither agent:a2 nor task:t1 is readable
    assert _sub(["read:agent:a1", "read:task:t2"], ["agent_log"], both) is not None
    # a1 and a2 readable: enough, whatever the task
    assert _sub(["read:agent:a1", "read:agent:a2"], ["agent_log"], both) is None
    # each key partly readable is not enough: (a2, t2) is unreadable
    mixed = {"agentId": {"a1", "a2"}, "taskId": {"t1", "t2"}}
    assert _sub(["read:agent:a1", "read:task:t1"], ["agent_log"], mixed) is not None


def test_system_types() -> None:
    system = sorted(SYSTEM_TYPES)
    assert _sub(["read:system"], system) is None
    assert _sub(["read:agent:*"], ["system_alert"]) is not None
    assert _sub(["read:repo:*"], ["deployment_status"]) is not None  # deployments without a repo
    assert _sub(["read:repo:o/r"], ["deployment_status"], {"repository": {"o/r"}}) is None
    assert _sub(["read:system"], ["system_alert"], {"agentId": {"a9"}}) is None
    assert _sub(["read:agent:a1"], ["system_alert"], {"agentId": {"a1"}}) is None
    reason = _sub(["read:agent:*"], ["system_notification"])
    assert reason is not None and "read:system" in reason


def test_publish_permission_does_not_allow_subscribing() -> None:
    assert _sub(["publish:*"], ["agent_status"]) is not None
    assert _sub(["publish:agent:a1"], ["agent_status"], {"agentId": {"a1"}}) is not None


# --- exactness against a brute force ------------------------------------------------

POOL = [
    "read:*", "read:system", "read:agent:*", "read:agent:x1", "read:agent:x2", "read:task:*",
    "read:task:x1", "read:workflow:*", "read:workflow:x1", "read:repo:*", "read:repo:o/x1",
    "read:repo:o/x2", "publish:*", "admin:agent:x2", "admin:task:x2",
]
IDS = {"agentId": ["x1", "x2"], "taskId": ["x1", "x2"], "workflowId": ["x1", "x2"],
       "repository": ["o/x1", "o/x2"]}
FRESH = {"agentId": "fresh", "taskId": "fresh", "workflowId": "fresh", "repository": "o/fresh"}

filters_strategy = st.dictionaries(
    st.sampled_from(sorted(IDS)),
    st.just(None),
    max_size=4,
).flatmap(
    lambda keys: st.fixed_dictionaries(
        {k: st.frozensets(st.sampled_from(IDS[k] + [FRESH[k]]), min_size=1) for k in keys}
    )
)


def _brute_force_allowed(grants: Grants, types: list[str], filters: dict[str, frozenset[str]]) -> bool:
    """Every event the subscription can match is readable, by enumeration.

    A matching event of type T carries every filtered key with a listed value
    and T's required key with any value; it may carry more resource keys, but
    an extra resource only makes the event easier to read (the ANY rule; a
    system type always names `system`), so the minimal events decide. Any
    value outside the grants behaves like `fresh`, so {x1, x2, fresh} covers
    every case.
    """
    for event_type in types:
        keys = set(filters)
        required = REQUIRED[event_type]
        if required is not None:
            keys.add(required)
        ordered = sorted(keys)
        choices = [sorted(filters[k]) if k in filters else IDS[k] + [FRESH[k]] for k in ordered]
        for values in itertools.product(*choices):
            data = dict(zip(ordered, values, strict=True))
            if not may_access_event(grants, "read", event_type, data):
                return False
    return True


@settings(max_examples=600, deadline=None)
@given(
    perms=st.lists(st.sampled_from(POOL), max_size=4, unique=True),
    types=st.lists(st.sampled_from(messages.EVENT_TYPES), min_size=1, max_size=4, unique=True),
    filters=filters_strategy,
)
def test_may_subscribe_is_exact_against_brute_force(
    perms: list[str], types: list[str], filters: dict[str, frozenset[str]]
) -> None:
    grants = Grants.from_strings(perms)
    expected = _brute_force_allowed(grants, types, filters)
    assert (may_subscribe(grants, types, filters, REQUIRED) is None) is expected


def test_agent_task_update_is_judged_by_its_agent_only() -> None:
    """Known conservative gap: agent_task_update always carries a taskId too, so
    read:task:* could read every one of them, but `REQUIRED_RESOURCE_KEY` names
    one key per type and the subscription is refused. Refusing is the safe side."""
    assert _sub(["read:task:*"], ["agent_task_update"]) is not None
    assert _sub(["read:task:*"], ["agent_task_update"], {"taskId": {"t1", "t2"}}) is None

"""Pydantic models of every message type of the wire protocol (CONTRACT.md section 3).

Python attributes are snake_case, JSON is camelCase (``alias_generator``); unknown
fields are kept everywhere (``extra="allow"``) so newer publishers pass through
older gateways unchanged. Two deliberate choices keep the models and the
exported JSON Schemas in step:

* validation is *strict*: ``"65"`` is not a number and ``1`` is not a boolean,
  exactly as the JSON Schema says (an integer is still accepted for a number);
* an optional field (``Opt[...]``) may be omitted but not sent as ``null``; only
  fields the contract calls nullable accept ``null``. Dumps leave unset optional
  fields out, so ``model_dump(by_alias=True)`` of a model is itself a valid frame.

No I/O here; ``validate_message`` is the one entry point the gateway needs.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from autosdlc_ws.core.open_values import MAX_OPEN_VALUE, open_field_schema
from autosdlc_ws.errors import InvalidMessage, UnknownType

__all__ = [
    "CATEGORY",
    "CLIENT_CONTROL_TYPES",
    "CONTROL_TYPES",
    "DATA_MODELS",
    "EVENT_TYPES",
    "MESSAGE_MODELS",
    "MESSAGE_TYPES",
    "REQUIRED_RESOURCE_KEY",
    "Envelope",
    "Metadata",
    "WireModel",
    "parse_message",
    "validate_message",
]

# --------------------------------------------------------------------------- types

_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("connection", ("connect", "disconnect", "ping", "pong", "error")),
    ("authentication", ("auth_request", "auth_success", "auth_failure")),
    ("subscription", ("subscribe", "unsubscribe", "subscription_update")),
    ("agent", ("agent_status", "agent_task_update", "agent_log", "agent_metric", "agent_error")),
    ("tdd", ("tdd_phase_change", "test_result", "coverage_update")),
    (
        "workflow",
        ("workflow_started", "workflow_step_complete", "workflow_complete", "workflow_failed"),
    ),
    ("system", ("system_notification", "system_alert", "deployment_status")),
    ("github", ("github_issue_update", "github_pr_update", "github_workflow_update")),
)
_CONTROL_CATEGORIES = frozenset({"connection", "authentication", "subscription"})

#: Every message type, in contract order.
MESSAGE_TYPES: tuple[str, ...] = tuple(t for _, types in _CATEGORIES for t in types)
#: Protocol (non-event) types: connection, authentication and subscription.
CONTROL_TYPES: tuple[str, ...] = tuple(
    t for cat, types in _CATEGORIES if cat in _CONTROL_CATEGORIES for t in types
)
#: Event types: what publishers send and subscribers receive.
EVENT_TYPES: tuple[str, ...] = tuple(
    t for cat, types in _CATEGORIES if cat not in _CONTROL_CATEGORIES for t in types
)
#: Control types a client may send; every other control type is server-only.
CLIENT_CONTROL_TYPES = frozenset({"ping", "auth_request", "subscribe", "unsubscribe"})
#: Message type -> category name.
CATEGORY: dict[str, str] = {t: cat for cat, types in _CATEGORIES for t in types}

#: Event type -> the resource key its ``data`` must carry (None: a system-wide event).
REQUIRED_RESOURCE_KEY: dict[str, str | None] = {
    **{t: "agentId" for t in EVENT_TYPES if CATEGORY[t] in ("agent", "tdd")},
    **{t: "workflowId" for t in EVENT_TYPES if CATEGORY[t] == "workflow"},
    **{t: "repository" for t in EVENT_TYPES if CATEGORY[t] == "github"},
    **{t: None for t in EVENT_TYPES if CATEGORY[t] == "system"},
}

# ---------------------------------------------------------------- field building blocks

_T = TypeVar("_T")


def _reject_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "Field may be omitted but must not be null")
    return value


def _drop_null_from_schema(schema: dict[str, Any]) -> None:
    """JSON Schema side of ``Opt``: the field is optional, not nullable."""
    any_of = schema.get("anyOf")
    if isinstance(any_of, list):
        rest = [s for s in any_of if s != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
    if "default" in schema and schema["default"] is None:
        del schema["default"]


_NOT_NULL = BeforeValidator(_reject_null)

#: An optional field that may be omitted but not sent as ``null`` (Python value None = absent).
Opt = Annotated[_T | None, _NOT_NULL, Field(json_schema_extra=_drop_null_from_schema)]

ResourceId = Annotated[str, Field(min_length=1, max_length=128)]
Repository = Annotated[str, Field(pattern=r"^[^/\s]+/[^/\s]+$")]
NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
EventPattern = Annotated[str, Field(pattern=r"^(\*|[a-z][a-z_]*\*?)$")]
#: Epoch milliseconds.
EpochMs = NonNegInt


def _open(event_type: str, *path: str) -> WithJsonSchema:
    """Schema of an open field (`core.open_values`): its documented values, or any short string."""
    return WithJsonSchema(open_field_schema(event_type, *path))


_Short = Field(max_length=MAX_OPEN_VALUE)
# Open values (protocol 1.1): any string up to 64 characters, documented ones listed.
AgentStatusValue = Annotated[str, _Short, _open("agent_status", "status")]
TaskStatusValue = Annotated[str, _Short, _open("agent_task_update", "status")]
LogLevelValue = Annotated[str, _Short, _open("agent_log", "level")]
StepStatusValue = Annotated[str, _Short, _open("workflow_step_complete", "status")]
NotificationLevelValue = Annotated[str, _Short, _open("system_notification", "level")]
AlertSeverityValue = Annotated[str, _Short, _open("system_alert", "severity")]
DeploymentStatusValue = Annotated[str, _Short, _open("deployment_status", "status")]
ComponentHealthValue = Annotated[str, _Short, _open("deployment_status", "components", "[]", "health")]

# Union tags: chosen so they cannot be mistaken for JSON keys in error paths.
_ONE, _MANY = "<one>", "<many>"
_UNION_TAGS = frozenset({_ONE, _MANY})


def _one_or_many(value: Any) -> str:
    return _MANY if isinstance(value, list) else _ONE


# A filter value is a single key or a list of 1..100 keys; the discriminator keeps
# the error of the branch the input was meant for (not both branches' errors).
IdFilter = Annotated[
    Annotated[ResourceId, Tag(_ONE)]
    | Annotated[list[ResourceId], Field(min_length=1, max_length=100), Tag(_MANY)],
    Discriminator(_one_or_many),
]
RepoFilter = Annotated[
    Annotated[Repository, Tag(_ONE)]
    | Annotated[list[Repository], Field(min_length=1, max_length=100), Tag(_MANY)],
    Discriminator(_one_or_many),
]

# ------------------------------------------------------------------------ base models

_CONFIG = ConfigDict(
    extra="allow",
    populate_by_name=True,
    alias_generator=to_camel,
    strict=True,
)


class WireModel(BaseModel):
    """Base of every protocol model: camelCase JSON, snake_case Python, extras kept."""

    model_config = _CONFIG

    #: Names and aliases of ``Opt`` fields, left out of dumps while None.
    _omit_when_none: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        keys: set[str] = set()
        for name, field in cls.model_fields.items():
            if any(m is _NOT_NULL for m in field.metadata):
                keys.add(name)
                if field.alias:
                    keys.add(field.alias)
        cls._omit_when_none = frozenset(keys)

    @model_serializer(mode="wrap")
    def _drop_unset_optionals(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict) and self._omit_when_none:
            return {
                k: v for k, v in out.items() if not (v is None and k in self._omit_when_none)
            }
        return out


class Metadata(WireModel):
    """Envelope metadata; correlationId carries the id of the request a reply answers."""

    version: Opt[str] = None
    source: Opt[str] = None
    correlation_id: Opt[str] = None
    compressed: Opt[bool] = None
    #: Set by the server on events sent as a subscription's snapshot (current state, not news).
    snapshot: Opt[bool] = None


class Envelope(WireModel):
    """Common envelope; each message type narrows ``type`` and ``data``."""

    id: Annotated[str, Field(min_length=1, max_length=128)]
    type: str
    timestamp: NonNegInt
    data: WireModel
    metadata: Opt[Metadata] = None


# ------------------------------------------------------------------------ connection


class Limits(WireModel):
    """Limits the server applies to this connection."""

    max_frame_bytes: Annotated[int, Field(ge=1)]
    max_decompressed_bytes: Opt[NonNegInt] = None
    max_subscriptions: Opt[NonNegInt] = None
    gzip_threshold_bytes: Opt[NonNegInt] = None
    max_batch_bytes: Opt[NonNegInt] = None  # protocol 1.1: the largest batched frame (batch clients)


class ConnectData(WireModel):
    connection_id: str
    session_id: str
    heartbeat_interval: NonNegInt
    protocol_version: str
    resumed: bool
    limits: Limits


class DisconnectData(WireModel):
    reason: str
    reconnect: bool


class PingData(WireModel):
    pass


class PongData(WireModel):
    pass


class ErrorData(WireModel):
    code: Literal[
        "invalid_json",
        "invalid_message",
        "unknown_type",
        "unauthorized",
        "forbidden",
        "rate_limited",
        "too_large",
        "not_found",
        "internal",
    ]
    message: str
    path: Opt[str] = None
    retry_after_ms: Opt[NonNegInt] = None


# -------------------------------------------------------------------- authentication


class AuthRequestData(WireModel):
    """In-band credentials: a token (JWT) or an apiKey, plus optional resume info."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["token"]}, {"required": ["apiKey"]}]}
    )

    token: Opt[str] = None
    api_key: Opt[str] = None
    session_id: Opt[str] = None
    last_event_id: Opt[str] = None
    compression: Opt[Literal["gzip", "none"]] = None
    batch: Opt[bool] = None  # protocol 1.1: several events per frame, as a JSON array (first auth only)

    @model_validator(mode="after")
    def _needs_credential(self) -> AuthRequestData:
        if self.token is None and self.api_key is None:
            raise PydanticCustomError(
                "missing_credential", "auth_request needs a token or an apiKey"
            )
        return self


class AuthSuccessData(WireModel):
    subject: str
    permissions: list[str]
    expires_at: NonNegInt | None


class AuthFailureData(WireModel):
    code: str
    message: str


# ---------------------------------------------------------------------- subscriptions


class SubscriptionFilters(WireModel):
    """Resource filters; unknown keys are refused so a typo is reported, not ignored."""

    model_config = ConfigDict(extra="forbid")

    agent_id: Opt[IdFilter] = None
    task_id: Opt[IdFilter] = None
    workflow_id: Opt[IdFilter] = None
    repository: Opt[RepoFilter] = None


class SubscribeData(WireModel):
    events: Annotated[list[EventPattern], Field(min_length=1, max_length=64)]
    filters: Opt[SubscriptionFilters] = None
    #: Protocol 1.1: first send the latest retained event of each (type, resource) matched.
    snapshot: bool = False


class UnsubscribeData(WireModel):
    subscription_id: str


class SubscriptionUpdateData(WireModel):
    subscription_id: str
    status: Literal["active", "removed", "resumed", "reset"]
    events: Opt[list[str]] = None
    filters: Opt[dict[str, Any]] = None
    replayed: Opt[NonNegInt] = None
    reason: Opt[str] = None


# ----------------------------------------------------------------------------- agent


class CurrentTask(WireModel):
    id: ResourceId
    type: Opt[str] = None
    progress: Opt[Percent] = None


class AgentMetrics(WireModel):
    cpu_usage: Opt[NonNegFloat] = None
    memory_usage: Opt[NonNegFloat] = None
    tasks_completed: Opt[NonNegInt] = None


class AgentStatusData(WireModel):
    agent_id: ResourceId
    agent_type: Opt[str] = None
    status: AgentStatusValue
    current_task: Opt[CurrentTask] = None
    metrics: Opt[AgentMetrics] = None


class AgentTaskUpdateData(WireModel):
    agent_id: ResourceId
    task_id: ResourceId
    status: TaskStatusValue
    progress: Opt[Percent] = None
    task_type: Opt[str] = None
    message: Opt[str] = None


class AgentLogData(WireModel):
    agent_id: ResourceId
    level: LogLevelValue
    message: str
    task_id: Opt[ResourceId] = None


class AgentMetricData(WireModel):
    agent_id: ResourceId
    cpu_usage: Opt[NonNegFloat] = None
    memory_usage: Opt[NonNegFloat] = None
    tasks_completed: Opt[NonNegInt] = None


class AgentErrorData(WireModel):
    agent_id: ResourceId
    message: str
    code: Opt[str] = None
    task_id: Opt[ResourceId] = None
    recoverable: Opt[bool] = None


# ------------------------------------------------------------------------------- TDD

TddPhase = Literal["red", "green", "refactor"]


class TestCounts(WireModel):
    __test__ = False  # not a pytest test class

    total: NonNegInt
    passing: NonNegInt
    failing: NonNegInt


class CoverageFigures(WireModel):
    lines: Opt[Percent] = None
    branches: Opt[Percent] = None
    functions: Opt[Percent] = None


class TddPhaseChangeData(WireModel):
    agent_id: ResourceId
    task_id: Opt[ResourceId] = None
    previous_phase: Opt[TddPhase] = None
    current_phase: TddPhase
    test_results: Opt[TestCounts] = None
    coverage: Opt[CoverageFigures] = None


class TestFailure(WireModel):
    __test__ = False

    name: str
    message: Opt[str] = None


class TestResultData(WireModel):
    __test__ = False

    agent_id: ResourceId
    task_id: Opt[ResourceId] = None
    total: NonNegInt
    passing: NonNegInt
    failing: NonNegInt
    skipped: Opt[NonNegInt] = None
    duration_ms: Opt[NonNegFloat] = None
    failures: Opt[list[TestFailure]] = None


class CoverageUpdateData(WireModel):
    agent_id: ResourceId
    task_id: Opt[ResourceId] = None
    lines: Percent
    branches: Opt[Percent] = None
    functions: Opt[Percent] = None


# -------------------------------------------------------------------------- workflow


class WorkflowProgress(WireModel):
    """How far a workflow run is: step `currentStep` (from 1) of `totalSteps`,
    expected to finish at `estimatedCompletion` (epoch ms)."""

    current_step: Opt[NonNegInt] = None
    total_steps: Opt[NonNegInt] = None
    estimated_completion: Opt[EpochMs] = None


class WorkflowArtifact(WireModel):
    """Something a workflow run produced (a build, a report), and where to get it."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    url: Opt[str] = None
    type: Opt[str] = None
    size_bytes: Opt[NonNegInt] = None


class WorkflowStartedData(WireModel):
    workflow_id: ResourceId
    name: str
    steps: Opt[list[str]] = None
    progress: Opt[WorkflowProgress] = None


class WorkflowStepCompleteData(WireModel):
    workflow_id: ResourceId
    step: str
    step_index: Opt[NonNegInt] = None
    status: StepStatusValue
    duration_ms: Opt[NonNegFloat] = None
    progress: Opt[WorkflowProgress] = None


class WorkflowCompleteData(WireModel):
    workflow_id: ResourceId
    duration_ms: Opt[NonNegFloat] = None
    name: Opt[str] = None
    outputs: Opt[dict[str, Any]] = None
    artifacts: Opt[list[WorkflowArtifact]] = None


class WorkflowFailedData(WireModel):
    workflow_id: ResourceId
    error: str
    step: Opt[str] = None


# ---------------------------------------------------------------------------- system


class SystemNotificationData(WireModel):
    message: str
    title: Opt[str] = None
    level: Opt[NotificationLevelValue] = None


class SystemAlertData(WireModel):
    severity: AlertSeverityValue
    message: str
    title: Opt[str] = None
    alert_id: Opt[str] = None
    source: Opt[str] = None
    resolved: Opt[bool] = None


class ComponentHealth(WireModel):
    """One component of a deployment and how it is doing."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    health: ComponentHealthValue
    message: Opt[str] = None


class DeploymentStatusData(WireModel):
    environment: str
    status: DeploymentStatusValue
    repository: Opt[Repository] = None
    url: str | None = None
    description: str | None = None
    ref: Opt[str] = None
    actor: Opt[str] = None
    components: Opt[list[ComponentHealth]] = None


# ---------------------------------------------------------------------------- github


class GithubIssueUpdateData(WireModel):
    repository: Repository
    action: str
    number: Annotated[int, Field(ge=1)]
    title: str
    state: str
    url: str
    actor: str
    labels: list[str]
    body: str | None = None
    comment: dict[str, Any] | None = None


class GithubPrUpdateData(WireModel):
    repository: Repository
    action: str
    number: Annotated[int, Field(ge=1)]
    title: str
    state: str
    merged: bool
    url: str
    actor: str
    labels: list[str]
    head: str
    base: str
    draft: Opt[bool] = None
    review: dict[str, Any] | None = None


class GithubWorkflowUpdateData(WireModel):
    repository: Repository
    kind: Literal["workflow_run", "workflow_job", "check_run", "check_suite"]
    action: str
    name: str
    status: str | None
    conclusion: str | None
    url: str | None
    actor: str | None
    head_branch: str | None = None
    run_id: Opt[NonNegInt] = None


# ------------------------------------------------------------------------- envelopes
# The class docstrings become the schema descriptions (schema_export).


class ConnectMessage(Envelope):
    """Server's first frame: connection and session ids, heartbeat, protocol version, limits."""

    type: Literal["connect"]
    data: ConnectData


class DisconnectMessage(Envelope):
    """Server is closing the connection (e.g. shutdown); says whether to reconnect."""

    type: Literal["disconnect"]
    data: DisconnectData


class PingMessage(Envelope):
    """Client liveness probe; answered by a correlated pong."""

    type: Literal["ping"]
    data: PingData


class PongMessage(Envelope):
    """Server's answer to a ping, correlated to it."""

    type: Literal["pong"]
    data: PongData


class ErrorMessage(Envelope):
    """A request was refused; the connection stays open. Correlated to the request."""

    type: Literal["error"]
    data: ErrorData


class AuthRequestMessage(Envelope):
    """Client's in-band credentials (token or apiKey), also used to refresh and to resume."""

    type: Literal["auth_request"]
    data: AuthRequestData


class AuthSuccessMessage(Envelope):
    """Credentials accepted: subject, permissions and expiry (epoch ms, null if none)."""

    type: Literal["auth_success"]
    data: AuthSuccessData


class AuthFailureMessage(Envelope):
    """Credentials refused, or expired on an open connection."""

    type: Literal["auth_failure"]
    data: AuthFailureData


class SubscribeMessage(Envelope):
    """Client subscribes to event types (exact or prefix globs) with optional resource filters."""

    type: Literal["subscribe"]
    data: SubscribeData


class UnsubscribeMessage(Envelope):
    """Client removes one subscription by id."""

    type: Literal["unsubscribe"]
    data: UnsubscribeData


class SubscriptionUpdateMessage(Envelope):
    """State of a subscription: active, removed, resumed (after reconnect) or reset (gap)."""

    type: Literal["subscription_update"]
    data: SubscriptionUpdateData


class AgentStatusMessage(Envelope):
    """An agent's status (idle, busy, error, offline), current task and metrics."""

    type: Literal["agent_status"]
    data: AgentStatusData


class AgentTaskUpdateMessage(Envelope):
    """Progress or state change of a task an agent works on."""

    type: Literal["agent_task_update"]
    data: AgentTaskUpdateData


class AgentLogMessage(Envelope):
    """A log line from an agent."""

    type: Literal["agent_log"]
    data: AgentLogData


class AgentMetricMessage(Envelope):
    """Resource usage and throughput figures of an agent."""

    type: Literal["agent_metric"]
    data: AgentMetricData


class AgentErrorMessage(Envelope):
    """An agent reports an error, possibly recoverable."""

    type: Literal["agent_error"]
    data: AgentErrorData


class TddPhaseChangeMessage(Envelope):
    """An agent moved between TDD phases (red, green, refactor), with test and coverage figures."""

    type: Literal["tdd_phase_change"]
    data: TddPhaseChangeData


class TestResultMessage(Envelope):
    """Result of a test run: totals, duration and failures."""

    __test__ = False

    type: Literal["test_result"]
    data: TestResultData


class CoverageUpdateMessage(Envelope):
    """New code coverage figures (percent of lines, branches, functions)."""

    type: Literal["coverage_update"]
    data: CoverageUpdateData


class WorkflowStartedMessage(Envelope):
    """A workflow run started."""

    type: Literal["workflow_started"]
    data: WorkflowStartedData


class WorkflowStepCompleteMessage(Envelope):
    """One step of a workflow run finished (success, failure or skipped)."""

    type: Literal["workflow_step_complete"]
    data: WorkflowStepCompleteData


class WorkflowCompleteMessage(Envelope):
    """A workflow run finished successfully."""

    type: Literal["workflow_complete"]
    data: WorkflowCompleteData


class WorkflowFailedMessage(Envelope):
    """A workflow run failed."""

    type: Literal["workflow_failed"]
    data: WorkflowFailedData


class SystemNotificationMessage(Envelope):
    """An informational notice for everyone watching."""

    type: Literal["system_notification"]
    data: SystemNotificationData


class SystemAlertMessage(Envelope):
    """A system alert with a severity; may later be marked resolved."""

    type: Literal["system_alert"]
    data: SystemAlertData


class DeploymentStatusMessage(Envelope):
    """State of a deployment to an environment."""

    type: Literal["deployment_status"]
    data: DeploymentStatusData


class GithubIssueUpdateMessage(Envelope):
    """A GitHub issue (or issue comment) changed."""

    type: Literal["github_issue_update"]
    data: GithubIssueUpdateData


class GithubPrUpdateMessage(Envelope):
    """A GitHub pull request (or its review) changed."""

    type: Literal["github_pr_update"]
    data: GithubPrUpdateData


class GithubWorkflowUpdateMessage(Envelope):
    """A GitHub Actions workflow run or job, or a check run or suite, changed."""

    type: Literal["github_workflow_update"]
    data: GithubWorkflowUpdateData


_ENVELOPES: tuple[type[Envelope], ...] = (
    ConnectMessage,
    DisconnectMessage,
    PingMessage,
    PongMessage,
    ErrorMessage,
    AuthRequestMessage,
    AuthSuccessMessage,
    AuthFailureMessage,
    SubscribeMessage,
    UnsubscribeMessage,
    SubscriptionUpdateMessage,
    AgentStatusMessage,
    AgentTaskUpdateMessage,
    AgentLogMessage,
    AgentMetricMessage,
    AgentErrorMessage,
    TddPhaseChangeMessage,
    TestResultMessage,
    CoverageUpdateMessage,
    WorkflowStartedMessage,
    WorkflowStepCompleteMessage,
    WorkflowCompleteMessage,
    WorkflowFailedMessage,
    SystemNotificationMessage,
    SystemAlertMessage,
    DeploymentStatusMessage,
    GithubIssueUpdateMessage,
    GithubPrUpdateMessage,
    GithubWorkflowUpdateMessage,
)


def _type_of(model: type[Envelope]) -> str:
    (name,) = get_args(model.model_fields["type"].annotation)
    return str(name)


#: Message type -> envelope model.
MESSAGE_MODELS: dict[str, type[Envelope]] = {_type_of(m): m for m in _ENVELOPES}
#: Message type -> model of its ``data``.
DATA_MODELS: dict[str, type[WireModel]] = {
    t: m.model_fields["data"].annotation  # type: ignore[misc]
    for t, m in MESSAGE_MODELS.items()
}
if tuple(MESSAGE_MODELS) != MESSAGE_TYPES:  # pragma: no cover - guards edits to this file
    raise RuntimeError("MESSAGE_MODELS is out of step with MESSAGE_TYPES")

# ------------------------------------------------------------------------ validation


def _json_path(loc: tuple[int | str, ...]) -> str:
    """``("data", "events", 0)`` -> ``data.events[0]``; union tags are dropped."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in _UNION_TAGS:
            path = f"{path}.{part}" if path else part
    return path


def parse_message(obj: object) -> Envelope:
    """Validate ``obj`` (a decoded JSON value) and return its typed envelope model.

    Raises ``InvalidMessage`` (with the JSON path of the first failing field) or
    ``UnknownType``.
    """
    if not isinstance(obj, dict):
        raise InvalidMessage("message must be a JSON object")
    if "type" not in obj:
        raise InvalidMessage("Field required", path="type")
    type_name = obj["type"]
    if not isinstance(type_name, str):
        raise InvalidMessage("Input should be a valid string", path="type")
    model = MESSAGE_MODELS.get(type_name)
    if model is None:
        raise UnknownType(f"unknown message type {type_name[:64]!r}", path="type")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        raise InvalidMessage(first["msg"], path=_json_path(first["loc"])) from None


def validate_message(obj: object) -> None:
    """Raise ``InvalidMessage``/``UnknownType`` unless ``obj`` is a valid frame."""
    parse_message(obj)

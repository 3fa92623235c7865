"""The admin API's view of the whole deployment, over the control channel.

Each function asks every node (or the one that owns a connection) through a
`ControlChannel` and merges the answers into the body of a CONTRACT §10
endpoint. Each node answers from its `LocalAdmin` (what a process can say
about itself) through the handler `register_commands` builds; that handler
is what the gateway passes to `ControlChannel.start`.

When some node did not answer in time, or the registry was unreachable,
the body also carries `"partial": true` and `"missingNodes": [...]`; the
answer is never held back waiting for them. No aiohttp here: the HTTP
routes only authenticate, parse the query and serialize what these return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from autosdlc_ws.broker.control import DEFAULT_TIMEOUT_S, BroadcastResult, CommandHandler, ControlChannel
from autosdlc_ws.errors import NotFound
from autosdlc_ws.server.logs import MessageLogConfig

# Command names on the control channel (one per LocalAdmin question).
CONNECTIONS = "admin.connections"
DESCRIBE = "admin.describe"
CLOSE = "admin.close"
ERRORS = "admin.errors"
GET_LOGGING = "admin.logging.get"
SET_LOGGING = "admin.logging.set"
SUBSCRIPTIONS = "admin.subscriptions"


class LocalAdmin(Protocol):
    """What one gateway process can tell and do about itself."""

    def connections(self) -> list[dict[str, Any]]:
        """Its open connections, each as `GET /api/v1/connections/{id}` describes it."""

    def describe_connection(self, connection_id: str) -> dict[str, Any] | None:
        """One of its connections, or None when it holds no such connection."""

    async def close_connection(self, connection_id: str, admin_subject: str) -> bool:
        """Close one of its connections with 1008 naming the admin; False when not held here."""

    def error_groups(self) -> list[dict[str, Any]]:
        """Its error groups, shaped as `core.error_groups.ErrorAggregator.snapshot`."""

    def logging_config(self) -> dict[str, Any]:
        """Its message-logging filter, as `MessageLogConfig.to_json`."""

    def set_logging_config(self, config: MessageLogConfig) -> None:
        """Apply a message-logging filter."""

    def subscription_counts(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        """(connections subscribed per resource, per event type), counted on this node
        (`core.subscription_counts.count_subscribers` does the counting)."""


class UnknownConnection(NotFound):
    """No node holds the connection; `missing_nodes` did not answer (it may be on one of them)."""

    def __init__(self, connection_id: str, missing_nodes: list[str]) -> None:
        super().__init__(f"no such connection: {connection_id}")
        self.connection_id = connection_id
        self.missing_nodes = missing_nodes


# --- what each node answers ---------------------------------------------------------------


def register_commands(local: LocalAdmin) -> CommandHandler:
    """The command handler of one node: each admin command mapped to its `LocalAdmin` call.
    An unknown command or bad arguments raise, which the channel reports as a failure."""

    async def handle(command: str, args: dict[str, Any]) -> dict[str, Any]:
        if command == CONNECTIONS:
            subject = args.get("subject")
            return {"connections": [c for c in local.connections()
                                    if subject is None or c.get("subject") == subject]}
        if command == DESCRIBE:
            return {"connection": local.describe_connection(str(args["connectionId"]))}
        if command == CLOSE:
            return {"closed": await local.close_connection(str(args["connectionId"]), str(args["admin"]))}
        if command == ERRORS:
            return {"groups": local.error_groups()}
        if command == GET_LOGGING:
            return {"config": local.logging_config()}
        if command == SET_LOGGING:
            local.set_logging_config(MessageLogConfig.from_json(dict(args["config"])))
            return {"config": local.logging_config()}
        if command == SUBSCRIPTIONS:
            resources, types = local.subscription_counts()
            return {"resources": dict(resources), "types": dict(types)}
        raise ValueError(f"unknown admin command {command!r}")

    return handle


# --- merging ------------------------------------------------------------------------------


def with_partial(body: dict[str, Any], result: BroadcastResult) -> dict[str, Any]:
    """`body`, marked partial with the missing nodes named when not every node answered."""
    if result.partial:
        body["partial"] = True
        body["missingNodes"] = list(result.missing)
    return body


def merge_connections(result: BroadcastResult) -> list[dict[str, Any]]:
    """Every node's connections, each tagged with its node, oldest first."""
    merged = [{**conn, "nodeId": node_id}
              for node_id, reply in result.replies.items() for conn in reply.get("connections", [])]
    merged.sort(key=lambda c: (c.get("connectedAt") or 0, str(c.get("connectionId"))))
    return merged


def merge_error_groups(result: BroadcastResult) -> list[dict[str, Any]]:
    """Groups with the same (code, messageType) on several nodes become one: counts and
    rates summed, first/last occurrence widened, last message from the latest, `nodes` listed."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for node_id, reply in result.replies.items():
        for group in reply.get("groups", []):
            key = (str(group["code"]), str(group["messageType"]))
            into = merged.get(key)
            if into is None:
                merged[key] = {**group, "nodes": [node_id]}
                continue
            into["count"] += group["count"]
            into["ratePerMin"] += group.get("ratePerMin", 0)
            into["alerting"] = bool(into.get("alerting")) or bool(group.get("alerting"))
            into["firstAt"] = min(into["firstAt"], group["firstAt"])
            if group["lastAt"] > into["lastAt"]:
                into["lastAt"], into["lastMessage"] = group["lastAt"], group.get("lastMessage", "")
            into["nodes"].append(node_id)
    groups = sorted(merged.values(), key=lambda g: g["lastAt"], reverse=True)
    for group in groups:
        group["nodes"].sort()
    return groups


def sum_counts(result: BroadcastResult, field: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for reply in result.replies.values():
        for name, count in (reply.get(field) or {}).items():
            totals[name] = totals.get(name, 0) + int(count)
    return totals


def deployment_logging(result: BroadcastResult, own_node: str) -> tuple[dict[str, Any], list[str]]:
    """(the filter most nodes run, the nodes that run another one). A PUT makes them agree;
    they differ only while one is still starting with its configured `message_log`.
    Ties go to this node's own filter."""
    configs = {node_id: reply["config"] for node_id, reply in result.replies.items() if "config" in reply}
    if not configs:
        return {}, []

    def votes(config: dict[str, Any]) -> tuple[int, bool]:
        return sum(c == config for c in configs.values()), config == configs.get(own_node)

    chosen = max(configs.values(), key=votes)
    return dict(chosen), sorted(node_id for node_id, c in configs.items() if c != chosen)


def _ranked(counts: dict[str, int], key: str) -> list[dict[str, Any]]:
    return [{key: name, "subscribers": n} for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


# --- the endpoints ------------------------------------------------------------------------


async def list_nodes(control: ControlChannel) -> dict[str, Any]:
    """`GET /api/v1/nodes`."""
    nodes = await control.nodes()
    body: dict[str, Any] = {"nodes": [n.to_json() for n in nodes], "count": len(nodes)}
    if not control.reachable:  # the registry is out of reach: name the nodes last known
        body["partial"] = True
        body["missingNodes"] = control.unreachable_peers()
    return body


async def list_connections(control: ControlChannel, *, subject: str | None = None, node_id: str | None = None,
                           timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`GET /api/v1/connections?subject=&nodeId=`."""
    args = {} if subject is None else {"subject": subject}
    result = await control.broadcast(CONNECTIONS, args, timeout_s)
    connections = merge_connections(result)
    if node_id is not None:
        connections = [c for c in connections if c["nodeId"] == node_id]
        missing = [n for n in result.missing if n == node_id]
        result = BroadcastResult(result.replies, missing, result.reachable)
    return with_partial({"connections": connections, "count": len(connections)}, result)


async def find_connection(control: ControlChannel, connection_id: str, *,
                          timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`GET /api/v1/connections/{id}`: every node is asked, the owner answers.
    Raises `UnknownConnection` when none does."""
    result = await control.broadcast(DESCRIBE, {"connectionId": connection_id}, timeout_s)
    for node_id, reply in result.replies.items():
        if reply.get("connection"):
            return {**reply["connection"], "nodeId": node_id}
    raise UnknownConnection(connection_id, result.missing)


async def close_connection(control: ControlChannel, connection_id: str, admin_subject: str, *,
                           timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`DELETE /api/v1/connections/{id}`: the owner closes it with 1008 naming the admin."""
    result = await control.broadcast(CLOSE, {"connectionId": connection_id, "admin": admin_subject}, timeout_s)
    if any(reply.get("closed") for reply in result.replies.values()):
        return {"closed": connection_id}
    raise UnknownConnection(connection_id, result.missing)


async def merged_errors(control: ControlChannel, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`GET /api/v1/errors`: `{"groups": [...], "total"}`, each group with its `nodes`."""
    result = await control.broadcast(ERRORS, {}, timeout_s)
    groups = merge_error_groups(result)
    return with_partial({"groups": groups, "total": sum(g["count"] for g in groups)}, result)


async def get_logging(control: ControlChannel, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`GET /api/v1/logging`: the filter (as `MessageLogConfig.to_json`), plus
    `divergentNodes` while some node runs another one."""
    result = await control.broadcast(GET_LOGGING, {}, timeout_s)
    config, divergent = deployment_logging(result, control.node_id)
    body = dict(config)
    if divergent:
        body["divergentNodes"] = divergent
    return with_partial(body, result)


#: Keys a `GET /api/v1/logging` body carries about the answer, not about the filter.
REPORT_KEYS = frozenset({"partial", "missingNodes", "divergentNodes"})


def logging_settings(body: Mapping[str, Any]) -> dict[str, Any]:
    """The filter settings of a PUT body: a GET body sent back as it came (with its
    `partial`, `missingNodes`, `divergentNodes`) sets the filter it shows."""
    return {key: value for key, value in body.items() if key not in REPORT_KEYS}


async def set_logging(control: ControlChannel, config: Mapping[str, Any], *,
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`PUT /api/v1/logging`: validated here (ValueError -> 422), then applied on every node."""
    normalized = MessageLogConfig.from_json(logging_settings(config)).to_json()
    result = await control.broadcast(SET_LOGGING, {"config": normalized}, timeout_s)
    return with_partial(dict(normalized), result)


async def subscription_counts(control: ControlChannel, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """`GET /api/v1/subscriptions`: subscribed connections per resource and per type, summed."""
    result = await control.broadcast(SUBSCRIPTIONS, {}, timeout_s)
    body = {"resources": _ranked(sum_counts(result, "resources"), "resource"),
            "types": _ranked(sum_counts(result, "types"), "type")}
    return with_partial(body, result)


# --- query parsing ------------------------------------------------------------------------

#: `GET /api/v1/connections` query parameter -> its keyword in `list_connections`.
CONNECTION_FILTERS = {"subject": "subject", "nodeId": "node_id"}
MAX_FILTER_CHARS = 256


def connection_filters(query: Mapping[str, list[str]]) -> dict[str, str]:
    """The filters of `GET /api/v1/connections` by `list_connections` keyword
    (`subject`, `node_id`).

    `query` maps each parameter to its values. Malformed (ValueError, answered
    422): an unknown parameter (a typo would otherwise list everything), a
    repeated one, an empty value, one over `MAX_FILTER_CHARS` characters or
    holding control characters."""
    filters: dict[str, str] = {}
    for name, values in query.items():
        keyword = CONNECTION_FILTERS.get(name)
        if keyword is None:
            raise ValueError(f"unknown filter {name!r}; filters are {', '.join(CONNECTION_FILTERS)}")
        if len(values) != 1:
            raise ValueError(f"filter {name!r} given {len(values)} times; give it once")
        value = values[0]
        if not value or len(value) > MAX_FILTER_CHARS or not value.isprintable():
            raise ValueError(f"filter {name!r} must be 1 to {MAX_FILTER_CHARS} printable characters")
        filters[keyword] = value
    return filters

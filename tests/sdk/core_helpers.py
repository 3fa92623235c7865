"""Plain-value helpers for the client core tests: frames as the gateway writes them, a
core walked through its handshake, and the actions picked apart."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

from autosdlc_ws.client.actions import Action, SendFrame
from autosdlc_ws.client.backoff import ReconnectPolicy
from autosdlc_ws.client.core import ClientCore, CoreConfig

T0 = 1_700_000_000_000  # a wall-clock time in ms
A = TypeVar("A")


def frame(type_: str, data: dict[str, Any] | None = None, *, id: str | None = None,
          correlation: str | None = None, metadata: dict[str, Any] | None = None) -> str:
    obj: dict[str, Any] = {"id": id or f"srv-{type_}", "type": type_, "timestamp": T0, "data": data or {}}
    if correlation is not None:
        metadata = {**(metadata or {}), "correlationId": correlation}
    if metadata is not None:
        obj["metadata"] = metadata
    return orjson.dumps(obj).decode()


def event(event_id: str) -> str:
    return frame("agent_log", {"agentId": "a", "level": "info", "message": event_id}, id=event_id)


def make_core(**config: Any) -> ClientCore:
    config.setdefault("reconnect", ReconnectPolicy(base=1.0, cap=8.0))
    config.setdefault("rng", lambda: 1.0)  # full jitter at its top: delays 1, 2, 4, 8, 8 ...
    session_id = config.pop("session_id", None)
    return ClientCore(CoreConfig(**config), session_id=session_id)


def open_link(core: ClientCore, *, session: str = "s-1", resumed: bool = False,
              expires_at: int | None = None, now: int = T0) -> list[Action]:
    """Upgrade done: the server's `connect` and `auth_success`; the actions of both."""
    actions = core.socket_opened()
    actions += core.receive(frame("connect", {"sessionId": session, "connectionId": f"c-{session}",
                                              "resumed": resumed, "heartbeatInterval": 25_000,
                                              "limits": {"maxFrameBytes": 65_536}}), now)
    data = {"expiresAt": expires_at} if expires_at is not None else {}
    return actions + core.receive(frame("auth_success", data), now)


def started(**config: Any) -> ClientCore:
    core = make_core(**config)
    core.start()
    open_link(core)
    return core


def of(actions: list[Action], kind: type[A]) -> list[A]:
    return [a for a in actions if isinstance(a, kind)]


def sent(actions: list[Action]) -> list[dict[str, Any]]:
    """The frames the actions write, parsed."""
    return [orjson.loads(a.text) for a in of(actions, SendFrame)]


def confirm(core: ClientCore, request: dict[str, Any], server_id: str, now: int = T0) -> list[Action]:
    """The server's `subscription_update` (active) answering a subscribe request frame."""
    return core.receive(frame("subscription_update", {"subscriptionId": server_id, "status": "active"},
                              correlation=request["id"]), now)

"""What the application receives: parsed envelopes, the reset notice, connection states.

Every frame is decoded (gzip binary frames transparently) into a dict, then,
unless the client was built with ``typed=False``, into the pydantic model of
its type from `autosdlc_ws.core.messages` (``event.data.current_task.progress``).
A frame the models do not know (a newer server) still arrives, as a plain
`Envelope` with its fields kept, never dropped.
"""

from __future__ import annotations

import enum
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from autosdlc_ws.core.envelope import gunzip_capped
from autosdlc_ws.core.messages import CONTROL_TYPES, EVENT_TYPES, MESSAGE_TYPES, Envelope, parse_message
from autosdlc_ws.errors import ProtocolError

__all__ = [
    "CONTROL_TYPE_SET",
    "RESET_TYPE",
    "ConnectionState",
    "ResetData",
    "ResetEvent",
    "decode_frame",
    "decode_frames",
    "is_event",
    "matches",
    "new_id",
    "now_ms",
    "to_dict",
    "to_model",
    "validate_pattern",
]

#: Pseudo message type of the client's reset notice (never on the wire).
RESET_TYPE = "$reset"
CONTROL_TYPE_SET = frozenset(CONTROL_TYPES)
_PATTERN = re.compile(r"^(\*|[a-z][a-z_]*\*?)$")


class ConnectionState(enum.StrEnum):
    """`connecting` (first attempt), `open` (authenticated, queue flushed),
    `reconnecting` (lost, backing off / retrying), `closed` (by the app or for good)."""

    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ResetData:
    #: "session_not_resumed": the server no longer knew the session (connect.resumed false);
    #: "history_lost": it resumed, but missed events are past retention or the history was reset;
    #: "subscription_lost": it resumed without restoring a subscription (re-sent by the client).
    reason: Literal["session_not_resumed", "history_lost", "subscription_lost"]
    session_id: str | None
    previous_session_id: str | None
    #: The caller's ids (as `subscribe()` returned them) of the affected subscriptions.
    subscription_ids: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ResetEvent:
    """Events may have been missed here: state derived from earlier events must be re-read.

    Shaped like an envelope (`id`, `type` = "$reset", `timestamp`, `data`) and delivered in
    stream order: to the iterator, to ``on("$reset")`` handlers and to ``on_reset`` callbacks.
    """

    data: ResetData
    id: str = field(default_factory=lambda: new_id("reset"))
    timestamp: int = field(default_factory=lambda: now_ms())
    type: str = RESET_TYPE
    metadata: None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "timestamp": self.timestamp,
            "data": {
                "reason": self.data.reason, "sessionId": self.data.session_id,
                "previousSessionId": self.data.previous_session_id,
                "subscriptionIds": list(self.data.subscription_ids), "detail": self.data.detail,
            },
        }


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now_ms() -> int:
    return int(time.time() * 1000)


class FrameError(ValueError):
    """A frame from the server that is not a JSON object (or not valid gzip)."""


def decode_frame(payload: str | bytes, *, binary: bool, max_decompressed: int) -> dict[str, Any]:
    """The JSON object a server frame holds; binary frames hold gzip of the JSON, inflated
    by the gateway's own `gunzip_capped` (bounded output, truncated streams refused)."""
    obj = _load(payload, binary=binary, max_decompressed=max_decompressed)
    if not _is_envelope(obj):
        raise FrameError("frame is not a JSON object with a string type")
    return obj  # type: ignore[no-any-return]


def decode_frames(payload: str | bytes, *, binary: bool, max_decompressed: int) -> list[dict[str, Any]]:
    """The envelopes a server frame holds, in order: one, or several when the
    client opted into batched frames (a JSON array of envelopes, protocol 1.1)."""
    obj = _load(payload, binary=binary, max_decompressed=max_decompressed)
    if isinstance(obj, list):
        if not obj or not all(_is_envelope(item) for item in obj):
            raise FrameError("batched frame is not a non-empty array of objects with a string type")
        return obj
    if not _is_envelope(obj):
        raise FrameError("frame is not a JSON object with a string type")
    return [obj]


def _is_envelope(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("type"), str)


def _load(payload: str | bytes, *, binary: bool, max_decompressed: int) -> Any:
    if binary:
        assert isinstance(payload, bytes)
        try:
            payload = gunzip_capped(payload, max_decompressed)
        except ProtocolError as exc:
            raise FrameError(str(exc)) from None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"frame is not valid JSON: {exc}") from None


def to_model(obj: dict[str, Any]) -> Envelope:
    """The typed model of a frame; a plain `Envelope` (extras kept) if it does not validate."""
    try:
        return parse_message(obj)
    except ProtocolError:
        pass
    try:
        return Envelope.model_validate(obj, strict=False)
    except ValidationError:
        return Envelope.model_construct(**obj)


def to_dict(message: Envelope | ResetEvent | dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready dict (camelCase keys) of anything the client delivers."""
    if isinstance(message, dict):
        return message
    if isinstance(message, ResetEvent):
        return message.to_dict()
    return message.model_dump(by_alias=True, mode="json")


def is_event(type_: str) -> bool:
    """Every type that is not a control type is an event, including a newer server's types."""
    return type_ not in CONTROL_TYPE_SET and not type_.startswith("$")


def validate_pattern(pattern: str) -> None:
    """Handler patterns: any message type by exact name, "$reset", "prefix*" or "*" (events only)."""
    if pattern == RESET_TYPE or pattern in MESSAGE_TYPES:
        return
    if not _PATTERN.match(pattern):
        raise ValueError(f"bad event pattern {pattern!r}: use a type, 'prefix*' or '*'")
    if pattern.endswith("*") and not any(t.startswith(pattern[:-1]) for t in EVENT_TYPES):
        raise ValueError(f"pattern {pattern!r} matches no event type")


def matches(pattern: str, type_: str) -> bool:
    """Exact names match any type; globs ("*", "tdd_*") match event types only."""
    if pattern == type_:
        return True
    if not pattern.endswith("*") or not is_event(type_):
        return False
    return type_.startswith(pattern[:-1])

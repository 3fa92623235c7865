"""Structured logs and runtime-switchable message logging.

Every line carries the connection id, subject and correlation id of the work
that produced it (from context variables set by the connection's reader), as
`key=value` pairs or JSON. Values are escaped, never interpreted: a client
cannot start a new log line with a newline in its subject or message.

`MessageLog` decides which protocol messages are logged (type globs, subjects,
connection ids, direction, sampling); an admin changes it at runtime through
`PUT /api/v1/logging`. When disabled it costs one attribute check.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

connection_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("connection_id", default=None)
subject_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("subject", default=None)
correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = connection_id_var.get()
        record.subject = subject_var.get()
        record.correlation = correlation_id_var.get()
        return True


def _escape(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_.:/@*" for c in text):
        return text
    return json.dumps(text, ensure_ascii=True)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [f"ts={ts}.{int(record.msecs):03d}Z", f"level={record.levelname}", f"logger={record.name}",
                 f"msg={_escape(record.getMessage())}"]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and value is not None:
                parts.append(f"{key}={_escape(value)}")
        if record.exc_info:
            parts.append(f"exc={_escape(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {"ts": record.created, "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and value is not None:
                obj[key] = value if isinstance(value, (int, float, bool)) else str(value)
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=True)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@dataclass(slots=True)
class MessageLogConfig:
    enabled: bool = False
    types: list[str] = field(default_factory=lambda: ["*"])  # globs
    subjects: list[str] = field(default_factory=list)  # empty: any
    connections: list[str] = field(default_factory=list)  # empty: any
    directions: list[str] = field(default_factory=lambda: ["in", "out"])
    sample_rate: float = 1.0  # 0..1

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MessageLogConfig:
        config = cls()
        for key, value in obj.items():
            if key == "sampleRate":
                key = "sample_rate"
            if not hasattr(config, key):
                raise ValueError(f"unknown message-log setting {key!r}")
            setattr(config, key, value)
        if not isinstance(config.enabled, bool):
            raise ValueError("enabled must be true or false")
        for name in ("types", "subjects", "connections", "directions"):
            value = getattr(config, name)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a list of strings")
        if not set(config.directions) <= {"in", "out"}:
            raise ValueError("directions may hold 'in' and 'out'")
        if not isinstance(config.sample_rate, (int, float)) or not 0 <= config.sample_rate <= 1:
            raise ValueError("sampleRate must be a number from 0 to 1")
        return config

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["sampleRate"] = obj.pop("sample_rate")
        return obj


class MessageLog:
    def __init__(self, config: MessageLogConfig | None = None, *, rng: random.Random | None = None) -> None:
        self.config = config or MessageLogConfig()
        self.enabled = self.config.enabled
        self._rng = rng or random.Random()
        self._log = logging.getLogger("autosdlc_ws.messages")

    def configure(self, config: MessageLogConfig) -> None:
        self.config = config
        self.enabled = config.enabled

    def wants(self, direction: str, type_: str, subject: str | None, connection_id: str | None) -> bool:
        c = self.config
        if not c.enabled or direction not in c.directions:
            return False
        if c.subjects and subject not in c.subjects:
            return False
        if c.connections and connection_id not in c.connections:
            return False
        if not any(fnmatch.fnmatchcase(type_, pattern) for pattern in c.types):
            return False
        return c.sample_rate >= 1 or self._rng.random() < c.sample_rate

    def log(self, direction: str, message: dict[str, Any], *, subject: str | None,
            connection_id: str | None, recipients: int | None = None) -> None:
        type_ = str(message.get("type"))
        if not self.wants(direction, type_, subject, connection_id):
            return
        self._log.info("message", extra={
            "direction": direction, "type": type_, "id": message.get("id"),
            "msg_subject": subject, "msg_conn": connection_id, "recipients": recipients,
            "body": json.dumps(message, ensure_ascii=True)[:2000],
        })

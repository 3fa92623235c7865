from __future__ import annotations

import json
import logging
import random

import pytest

from autosdlc_ws.server.logs import (
    ContextFilter,
    JsonFormatter,
    KeyValueFormatter,
    MessageLog,
    MessageLogConfig,
    connection_id_var,
    subject_var,
)


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("autosdlc_ws.test", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    ContextFilter().filter(record)
    return record


def test_key_value_lines_carry_context_and_cannot_be_split() -> None:
    token_conn = connection_id_var.set("conn-1")
    token_sub = subject_var.set("mallory\nlevel=ERROR forged=1")
    try:
        line = KeyValueFormatter().format(_record("hello\nworld"))
    finally:
        connection_id_var.reset(token_conn)
        subject_var.reset(token_sub)
    assert "\n" not in line
    assert "conn=conn-1" in line
    assert 'subject="mallory\\nlevel=ERROR forged=1"' in line
    assert 'msg="hello\\nworld"' in line


def test_json_lines_parse_and_keep_fields() -> None:
    token = connection_id_var.set("conn-2")
    try:
        obj = json.loads(JsonFormatter().format(_record("<b>x</b>", direction="in")))
    finally:
        connection_id_var.reset(token)
    assert obj["conn"] == "conn-2" and obj["direction"] == "in" and obj["msg"] == "<b>x</b>"


def test_message_log_filters() -> None:
    log = MessageLog(MessageLogConfig(enabled=True, types=["agent_*"], subjects=["alice"], directions=["in"]))
    assert log.wants("in", "agent_status", "alice", "c1")
    assert not log.wants("out", "agent_status", "alice", "c1")
    assert not log.wants("in", "workflow_started", "alice", "c1")
    assert not log.wants("in", "agent_status", "bob", "c1")
    log.configure(MessageLogConfig(enabled=False))
    assert not log.wants("in", "agent_status", "alice", "c1")


def test_sampling_keeps_about_the_rate() -> None:
    log = MessageLog(MessageLogConfig(enabled=True, sample_rate=0.25), rng=random.Random(7))
    kept = sum(log.wants("in", "ping", None, None) for _ in range(4000))
    assert 800 < kept < 1200


def test_config_from_json_validates() -> None:
    config = MessageLogConfig.from_json({"enabled": True, "types": ["tdd_*"], "sampleRate": 0.5})
    assert config.types == ["tdd_*"] and config.sample_rate == 0.5
    assert config.to_json()["sampleRate"] == 0.5
    for bad in ({"enabled": "yes"}, {"types": "agent_*"}, {"directions": ["sideways"]},
                {"sampleRate": 2}, {"nope": 1}):
        with pytest.raises(ValueError):
            MessageLogConfig.from_json(bad)

"""Property-based fuzzing of the frame parser and the protocol core (no I/O).

Whatever a client sends (random bytes, random JSON with deep nesting, huge
numbers and odd unicode, or a valid message with one field mutated), the
answer is a list of actions: frames that are valid server messages (an `error`
with a contract code), events that can be encoded and fanned out, or a close
with a contract code. Nothing else escapes.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from autosdlc_ws.config import ApiKeyEntry, Settings
from autosdlc_ws.core import messages
from autosdlc_ws.core.auth import Authenticator, hash_api_key, mint_token
from autosdlc_ws.core.connection_core import (
    Action,
    AddSubscription,
    AuthAccepted,
    Close,
    ConnectionCore,
    Publish,
    RemoveSubscription,
    Send,
)
from autosdlc_ws.core.envelope import EncodedEvent, parse_frame, too_deep
from autosdlc_ws.errors import InvalidMessage, ProtocolError
from tests.security.support import CLOSE_CODES, check_server_message

SECRET = "fuzz-secret-0123456789abcdef0123456789ab"
NOW_S = 1_700_000_000
T0 = NOW_S * 1000
API_KEY = "ask_fuzz_reader"
SETTINGS = Settings(jwt_secret=SECRET,
                    api_keys=(ApiKeyEntry("fuzz-reader", hash_api_key(API_KEY), ("read:agent:*",)),))
AUTH = Authenticator.from_settings(SETTINGS)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN = mint_token(SECRET, "fuzzer", ["read:agent:*", "read:system", "publish:agent:a1"],
                   ttl_s=600, now_s=NOW_S)


# --------------------------------------------------------------------------- cores


def new_core(authenticated: bool) -> ConnectionCore:
    core = ConnectionCore(SETTINGS, AUTH, "conn-fuzz", "sess-fuzz", T0, owner="owner")
    if authenticated:
        actions = core.receive(json.dumps({"id": "a", "type": "auth_request", "data": {"token": TOKEN}}),
                               binary=False, now_ms=T0, mono_s=0.0)
        assert isinstance(actions[0], AuthAccepted), actions
        core.finish_auth(T0, resumed=False)
    return core


def check_actions(actions: list[Action]) -> None:
    assert isinstance(actions, list)
    for action in actions:
        if isinstance(action, Send):
            check_server_message(action.message)
        elif isinstance(action, Close):
            assert action.code in CLOSE_CODES, action
        elif isinstance(action, Publish):
            event = action.event
            assert event["type"] in messages.EVENT_TYPES
            messages.validate_message(event)
            # what the hub does with it: encode once (plain and gzip) for every recipient
            out = EncodedEvent(event, gzip_threshold=0)
            out.frame_for(True)
            assert not too_deep(event, SETTINGS.max_json_depth)
        else:
            assert isinstance(action, (AddSubscription, RemoveSubscription, AuthAccepted)), action


def feed(core: ConnectionCore, payload: str | bytes, *, binary: bool, step: int = 0) -> list[Action]:
    actions = core.receive(payload, binary=binary, now_ms=T0 + step, mono_s=1000.0 + step / 1000)
    check_actions(actions)
    return actions


# ---------------------------------------------------------------------- strategies

# Every unicode code point, surrogates included (a Python str can hold them even
# though a WebSocket text frame cannot), plus the troublemakers explicitly.
ANY_CHAR = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))
NASTY = st.sampled_from(["\x00", "\u202e", "\u200f", "\ud800", "\udfff", "\ufeff", "\n", "\r\n", "\u2028",
                         "\"", "\\", "<script>", "%s", "{{x}}", "🙂", "\U0010ffff"])
TEXT = st.one_of(st.text(ANY_CHAR, max_size=40), NASTY,
                 st.builds(lambda c, n: c * n, NASTY, st.integers(1, 5000)))
NUMBERS = st.one_of(
    st.integers(),  # unbounded: well past 64 bits
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 2**63, -(2**63) - 1, 2**64, 10**400]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=5), st.dictionaries(TEXT, kids, max_size=4)), max_leaves=16)


def to_text(value: Any) -> str:
    """JSON text of `value`; NaN/Infinity come out as the (invalid) bare tokens and
    lone surrogates as \\ud800 escapes, so the parser sees both."""
    return json.dumps(value, allow_nan=True)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


VALID_MESSAGES: list[dict[str, Any]] = [
    {"id": "p1", "type": "ping", "timestamp": T0, "data": {}},
    {"id": "s1", "type": "subscribe", "timestamp": T0,
     "data": {"events": ["agent_*"], "filters": {"agentId": "a1"}}},
    {"id": "s2", "type": "subscribe", "data": {"events": ["system_alert", "agent_status"]}},
    {"id": "u1", "type": "unsubscribe", "data": {"subscriptionId": "sub-1"}},
    {"id": "r1", "type": "auth_request", "data": {"token": TOKEN, "compression": "gzip"}},
    {"id": "r2", "type": "auth_request", "data": {"apiKey": API_KEY}},
    {"id": "e1", "type": "agent_status", "timestamp": T0,
     "data": {"agentId": "a1", "status": "busy", "currentTask": {"id": "t1", "progress": 50}}},
    {"id": "e2", "type": "agent_log", "data": {"agentId": "a1", "level": "info", "message": "hello"}},
    {"id": "e3", "type": "tdd_phase_change", "timestamp": T0,
     "data": {"agentId": "a1", "taskId": "t1", "phase": "green", "previousPhase": "red"}},
    {"id": "e4", "type": "system_alert", "data": {"severity": "warning", "title": "t", "message": "m"}},
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one to three fields replaced, removed or added."""
    msg = json.loads(json.dumps(draw(st.sampled_from(VALID_MESSAGES))))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(paths(msg)[1:]))
        parent: Any = msg
        for part in target[:-1]:
            parent = parent[part]
        key = target[-1]
        how = draw(st.sampled_from(["replace", "delete", "add", "type", "deep"]))
        if how == "replace":
            parent[key] = draw(JSON_VALUES)
        elif how == "delete":
            del parent[key]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(TEXT)] = draw(JSON_VALUES)
        elif how == "type":
            msg["type"] = draw(st.one_of(st.sampled_from(messages.MESSAGE_TYPES), TEXT, JSON_VALUES))
        elif how == "deep":
            parent[key] = nested(draw(st.integers(1, 300)))
    return msg


# -------------------------------------------------------------------------- parse_frame


def parse(payload: str | bytes, binary: bool = False) -> dict[str, Any] | ProtocolError:
    try:
        obj = parse_frame(payload, binary=binary, max_decompressed=SETTINGS.max_decompressed_bytes,
                          max_depth=SETTINGS.max_json_depth)
    except ProtocolError as exc:
        return exc
    assert isinstance(obj, dict)
    orjson.dumps(obj)  # whatever is accepted can be encoded again
    assert not too_deep(obj, SETTINGS.max_json_depth)
    return obj


@FUZZ
@given(st.binary(max_size=2048), st.booleans())
def test_parse_frame_random_bytes(data: bytes, binary: bool) -> None:
    parse(data, binary)


@FUZZ
@given(st.binary(max_size=512))
def test_parse_frame_gzip_of_random_bytes(data: bytes) -> None:
    parse(gzip.compress(data), True)
    parse(gzip.compress(data)[: max(1, len(data) // 2)], True)  # truncated stream


@FUZZ
@given(st.text(ANY_CHAR, max_size=2048))
def test_parse_frame_random_text(text: str) -> None:
    parse(text)


@FUZZ
@given(JSON_VALUES)
def test_parse_frame_random_json(value: Any) -> None:
    text = to_text(value)
    result = parse(text)
    gz = parse(gzip.compress(text.encode("utf-8", "surrogatepass")), True)
    assert type(result) is type(gz) or isinstance(gz, ProtocolError)


@FUZZ
@given(st.integers(1, 1200), st.booleans())
def test_parse_frame_nesting_depth(depth: int, in_data: bool) -> None:
    """Accepted exactly up to max_json_depth levels, the envelope counted; beyond it
    (orjson's own 1024-level stop included) `invalid_message` at path ""."""
    limit = SETTINGS.max_json_depth
    if in_data:
        msg_text = '{"type":"ping","data":{"x":' + to_text(nested(depth)) + "}}"
        total = depth + 2
    else:
        msg_text = to_text(nested(depth))
        total = depth
        assume(depth % 2 == 1)  # an object at the top (odd depths end with {"k": ...})
    result = parse(msg_text)
    if total <= limit:
        assert isinstance(result, dict), result
    else:
        assert isinstance(result, InvalidMessage) and result.path == "", result


def test_depth_limit_boundary() -> None:
    limit = SETTINGS.max_json_depth
    at = '{"type":"ping","data":' + "[" * (limit - 1) + "]" * (limit - 1) + "}"  # limit levels
    over = '{"type":"ping","data":' + "[" * limit + "]" * limit + "}"
    assert isinstance(parse(at), dict)
    error = parse(over)
    assert isinstance(error, InvalidMessage) and error.path == "" and error.code.value == "invalid_message"
    # brackets inside strings do not count
    assert isinstance(parse('{"type":"ping","data":{"s":"' + "[" * 5000 + '"}}'), dict)


# -------------------------------------------------------------------- ConnectionCore


@FUZZ
@given(st.binary(max_size=2048), st.booleans(), st.booleans())
def test_core_random_bytes(data: bytes, binary: bool, authenticated: bool) -> None:
    core = new_core(authenticated)
    payload: str | bytes = data if binary else data.decode("utf-8", "surrogateescape")
    feed(core, payload, binary=binary)


@FUZZ
@given(st.lists(JSON_VALUES, min_size=1, max_size=4), st.booleans())
def test_core_random_json_sequence(values: list[Any], authenticated: bool) -> None:
    core = new_core(authenticated)
    for step, value in enumerate(values):
        feed(core, to_text(value), binary=False, step=step)


@FUZZ
@given(st.lists(mutated_messages(), min_size=1, max_size=5), st.booleans(), st.booleans())
def test_core_mutated_messages(msgs: list[dict[str, Any]], authenticated: bool, gzipped: bool) -> None:
    core = new_core(authenticated)
    for step, msg in enumerate(msgs):
        text = to_text(msg)
        if gzipped:
            feed(core, gzip.compress(text.encode("utf-8", "surrogatepass")), binary=True, step=step)
        else:
            feed(core, text, binary=False, step=step)
        if core.closed:
            assert feed(core, text, binary=False) == []  # a closed core answers nothing
            break


@FUZZ
@given(st.lists(st.sampled_from(VALID_MESSAGES), min_size=1, max_size=30), st.integers(0, 10_000_000))
def test_core_valid_messages_and_deadlines(msgs: list[dict[str, Any]], later_ms: int) -> None:
    """Valid traffic in any order, then the deadline tick: only contract outcomes."""
    core = new_core(True)
    for step, msg in enumerate(msgs):
        feed(core, to_text(msg), binary=False, step=step)
    actions = core.tick(T0 + later_ms)
    check_actions(actions)
    if later_ms > 600_000 + SETTINGS.jwt_leeway_s * 1000 and not core.closed:
        pytest.fail("an expired token must close the connection")


@FUZZ
@given(st.integers(1, 400), st.sampled_from(["agent_status", "agent_log", "system_alert"]))
def test_core_deep_publish_is_refused_before_fan_out(depth: int, type_: str) -> None:
    """A publishable event whose `data` is nested deeper than the limit never
    reaches the broker (orjson cannot encode past 254 levels: it would fail in
    fan-out, after being stored in the history)."""
    core = new_core(True)
    data = {"agentId": "a1", "status": "busy", "level": "info", "message": "m", "severity": "info",
            "title": "t", "deep": nested(depth)}
    actions = feed(core, to_text({"id": "deep", "type": type_, "data": data}), binary=False)
    if depth + 2 > SETTINGS.max_json_depth:
        assert not any(isinstance(a, Publish) for a in actions)
        (reply,) = actions
        assert isinstance(reply, Send) and reply.message["data"]["code"] == "invalid_message"


def test_huge_and_odd_numbers_never_escape() -> None:
    core = new_core(True)
    for raw in ("1e308", "-1e308", "1e309", "NaN", "Infinity", "-Infinity", str(10**400), str(2**64),
                "-0", "0.0000000000000000000000001", '"1e308"', '"NaN"'):
        text = (f'{{"id":"n","type":"agent_status","timestamp":{raw},'
                f'"data":{{"agentId":"a1","status":"busy","metrics":{{"cpuUsage":{raw}}}}}}}')
        feed(core, text, binary=False)
        feed(core, f'{{"id":"n","type":"ping","data":{{"n":{raw}}}}}', binary=False)


@pytest.mark.parametrize("msg", [
    {"id": "l1", "type": "subscribe", "data": {"events": ["a" * 60_000]}},
    {"id": "l2", "type": "subscribe", "data": {"events": ["agent_status" + "*" * 60_000]}},
    {"id": "l3", "type": "unsubscribe", "data": {"subscriptionId": "s" * 60_000}},
    {"id": "l4", "type": "subscribe",
     "data": {"events": ["agent_status"], "filters": {"agentId": "q" * 60_000}}},
    {"id": "l5" * 40_000, "type": "x" * 60_000, "data": {}},
])
def test_long_strings_are_not_echoed_back(msg: dict[str, Any]) -> None:
    """An error names what was wrong without echoing a 60 KB string back."""
    (reply,) = feed(new_core(True), to_text(msg), binary=False)
    assert isinstance(reply, Send) and reply.message["type"] == "error"
    assert len(orjson.dumps(reply.message)) < 1024, reply.message["data"]["message"][:200]

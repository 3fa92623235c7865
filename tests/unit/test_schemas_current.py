"""The committed schemas and AsyncAPI document are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from autosdlc_ws.core.messages import (
    CLIENT_CONTROL_TYPES,
    CONTROL_TYPES,
    EVENT_TYPES,
    MESSAGE_TYPES,
)
from autosdlc_ws.core.schema_export import (
    ASYNCAPI_PATH,
    SCHEMA_DIR,
    build_all,
    build_asyncapi,
    build_schema,
    render_asyncapi,
    render_schema,
    rendered_files,
)
from autosdlc_ws.tools.schemas import main

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "stale: run `python -m autosdlc_ws.tools.schemas --write`"


@pytest.mark.parametrize("type_name", MESSAGE_TYPES)
def test_committed_schema_is_current(type_name: str) -> None:
    path = ROOT / SCHEMA_DIR / f"{type_name}.json"
    expected = render_schema(build_all()[type_name]).encode("utf-8")
    assert path.read_bytes() == expected, REGENERATE


def test_no_leftover_schema_files() -> None:
    on_disk = {p.stem for p in (ROOT / SCHEMA_DIR).glob("*.json")}
    assert on_disk == set(MESSAGE_TYPES)


def test_committed_asyncapi_is_current() -> None:
    expected = render_asyncapi(build_asyncapi()).encode("utf-8")
    assert (ROOT / ASYNCAPI_PATH).read_bytes() == expected, REGENERATE


@pytest.mark.parametrize("type_name", MESSAGE_TYPES)
def test_schema_header(type_name: str) -> None:
    schema = build_schema(type_name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://autosdlc.dev/schemas/{type_name}.json"
    assert schema["title"] and schema["description"]
    assert schema["required"] == ["id", "type", "timestamp", "data"]
    assert schema["properties"]["type"]["const"] == type_name
    assert schema["additionalProperties"] is True


def test_unknown_type_has_no_schema() -> None:
    with pytest.raises(KeyError):
        build_schema("agent_dance")


# ---------------------------------------------------------------------------- AsyncAPI


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _op_types(doc: dict[str, Any], op: str) -> list[str]:
    return [r["$ref"].rsplit("/", 1)[1] for r in doc["operations"][op]["messages"]]


def test_asyncapi_document_shape() -> None:
    doc = yaml.safe_load((ROOT / ASYNCAPI_PATH).read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    assert doc["servers"]["gateway"] == {
        "host": "127.0.0.1:8765",
        "protocol": "ws",
        "description": doc["servers"]["gateway"]["description"],
    }
    assert doc["channels"]["ws"]["address"] == "/ws"
    assert list(doc["components"]["messages"]) == list(MESSAGE_TYPES)
    assert list(doc["channels"]["ws"]["messages"]) == list(MESSAGE_TYPES)
    for t in MESSAGE_TYPES:
        payload = _resolve(doc, doc["components"]["messages"][t]["payload"]["$ref"])
        assert payload["properties"]["type"]["const"] == t


def test_asyncapi_refs_resolve() -> None:
    doc = build_asyncapi()
    refs = _refs(doc)
    assert len(refs) > 3 * len(MESSAGE_TYPES)
    for ref in refs:
        _resolve(doc, ref)
    assert "$defs" not in str(refs)


def test_asyncapi_operations_split_by_sender() -> None:
    doc = build_asyncapi()
    send, receive = set(_op_types(doc, "send")), set(_op_types(doc, "receive"))
    assert doc["operations"]["send"]["action"] == "send"
    assert doc["operations"]["receive"]["action"] == "receive"
    server_only = set(CONTROL_TYPES) - CLIENT_CONTROL_TYPES
    assert send == server_only | set(EVENT_TYPES)
    assert receive == CLIENT_CONTROL_TYPES | set(EVENT_TYPES)
    assert "connect" not in receive and "subscribe" not in send


# -------------------------------------------------------------------------------- CLI


def test_write_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert "stale: docs/asyncapi.yaml" in capsys.readouterr().err
    assert main(["--write", "--root", str(tmp_path)]) == 0
    assert main(["--check", "--root", str(tmp_path)]) == 0
    files = rendered_files(tmp_path)
    assert len(files) == len(MESSAGE_TYPES) + 1
    for path, text in files.items():
        assert path.read_bytes() == text.encode("utf-8")
    agent_status = tmp_path / SCHEMA_DIR / "agent_status.json"
    agent_status.write_text(agent_status.read_text(encoding="utf-8") + " ", encoding="utf-8")
    capsys.readouterr()
    assert main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "agent_status.json" in err and "tdd_phase_change.json" not in err


def test_rendering_is_stable_text() -> None:
    text = render_schema(build_schema("ping"))
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.index('"$id"') < text.index('"$schema"')  # keys sorted
    assert text.startswith('{\n  "$defs"')  # indented by two

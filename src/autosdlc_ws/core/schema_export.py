"""JSON Schemas (draft 2020-12) and the AsyncAPI 3.0 document, generated from the models.

The models in ``messages`` are the single source; the files in the repository
(``src/autosdlc_ws/schemas/<type>.json``, ``docs/asyncapi.yaml``) are their
rendering, kept current by the command in `autosdlc_ws.tools.schemas`::

    python -m autosdlc_ws.tools.schemas --write   # regenerate
    python -m autosdlc_ws.tools.schemas --check   # exit 1 if any file is stale
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core.core_schema import CoreSchema

from autosdlc_ws import PROTOCOL_VERSION
from autosdlc_ws.core.messages import (
    CLIENT_CONTROL_TYPES,
    CONTROL_TYPES,
    EVENT_TYPES,
    MESSAGE_MODELS,
    MESSAGE_TYPES,
)
from autosdlc_ws.core.schema_versions import SCHEMA_VERSIONS

__all__ = [
    "ASYNCAPI_PATH",
    "DIALECT",
    "SCHEMA_DIR",
    "SCHEMA_ID_BASE",
    "build_all",
    "build_asyncapi",
    "build_schema",
    "render_asyncapi",
    "render_schema",
    "rendered_files",
    "stale_files",
]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://autosdlc.dev/schemas/"
#: Repository-relative locations of the generated files.
SCHEMA_DIR = Path("src/autosdlc_ws/schemas")
ASYNCAPI_PATH = Path("docs/asyncapi.yaml")


class _Generator(GenerateJsonSchema):
    """Pydantic's generator without the per-property titles it derives from field names."""

    def field_title_should_be_set(self, schema: CoreSchema | Any) -> bool:
        return False


def _description(type_name: str) -> str:
    doc = MESSAGE_MODELS[type_name].__doc__ or ""
    return " ".join(doc.split()) or f"The {type_name} message."


def build_schema(type_name: str) -> dict[str, Any]:
    """JSON Schema of the whole envelope of ``type_name`` (``KeyError`` if unknown)."""
    model = MESSAGE_MODELS[type_name]
    body = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"{SCHEMA_ID_BASE}{type_name}.json",
        "title": f"AutoSDLC {type_name} message",
        "description": _description(type_name),
        # not a JSON Schema keyword (tools ignore it): this schema's version, which
        # events of this type carry as metadata.version unless the publisher set one
        "version": SCHEMA_VERSIONS[type_name],
    }
    schema.update({k: v for k, v in body.items() if k not in schema})
    return schema


def build_all() -> dict[str, dict[str, Any]]:
    """Message type -> its schema, in contract order."""
    return {t: build_schema(t) for t in MESSAGE_TYPES}


def build_asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0 document of the ``/ws`` channel, from the gateway's point of view.

    ``send`` is what the gateway sends (server-only control types and events);
    ``receive`` is what it accepts (client control types and events from publishers).
    """
    inputs: list[tuple[type[Any], JsonSchemaMode]] = [
        (MESSAGE_MODELS[t], "validation") for t in MESSAGE_TYPES
    ]
    _, defs = models_json_schema(
        inputs,
        by_alias=True,
        ref_template="#/components/schemas/{model}",
        schema_generator=_Generator,
    )
    schemas: dict[str, Any] = defs["$defs"]

    messages: dict[str, Any] = {}
    for t in MESSAGE_TYPES:
        messages[t] = {
            "name": t,
            "title": t.replace("_", " ").capitalize(),
            "summary": _description(t),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{MESSAGE_MODELS[t].__name__}"},
        }

    server_only = [t for t in CONTROL_TYPES if t not in CLIENT_CONTROL_TYPES]
    client_sent = [t for t in CONTROL_TYPES if t in CLIENT_CONTROL_TYPES]

    def refs(types: Sequence[str]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/ws/messages/{t}"} for t in types]

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "AutoSDLC WebSocket Event Gateway",
            "version": PROTOCOL_VERSION,
            "description": (
                "Typed real-time events between AutoSDLC services and the clients "
                "watching them. Every frame is a JSON envelope "
                "(id, type, timestamp, data, metadata); replies carry the request's id "
                "as metadata.correlationId. Unknown fields are kept and passed on."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": "127.0.0.1:8765",
                "protocol": "ws",
                "description": "Default local gateway (one port for HTTP and WebSocket).",
            }
        },
        "channels": {
            "ws": {
                "address": "/ws",
                "title": "Gateway WebSocket",
                "description": "One WebSocket per client; optional subprotocol autosdlc.v1.",
                "servers": [{"$ref": "#/servers/gateway"}],
                "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in MESSAGE_TYPES},
            }
        },
        "operations": {
            "send": {
                "action": "send",
                "channel": {"$ref": "#/channels/ws"},
                "summary": "Frames the gateway sends: server control frames and events.",
                "messages": refs(server_only + list(EVENT_TYPES)),
            },
            "receive": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ws"},
                "summary": (
                    "Frames the gateway accepts: client control frames, and events "
                    "from clients with publish permission."
                ),
                "messages": refs(client_sent + list(EVENT_TYPES)),
            },
        },
        "components": {"schemas": schemas, "messages": messages},
    }


def render_schema(schema: dict[str, Any]) -> str:
    """The exact text of a schema file: pretty, sorted keys, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_asyncapi(doc: dict[str, Any]) -> str:
    out = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return str(out)


def rendered_files(root: Path) -> dict[Path, str]:
    """Every generated file under ``root`` (a repository checkout) with its expected text."""
    files = {
        root / SCHEMA_DIR / f"{t}.json": render_schema(s) for t, s in build_all().items()
    }
    files[root / ASYNCAPI_PATH] = render_asyncapi(build_asyncapi())
    return files


def stale_files(files: dict[Path, str]) -> list[Path]:
    """The generated files whose text on disk differs from `files` (or is missing)."""
    stale = []
    for path, text in files.items():
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            stale.append(path)
    return stale

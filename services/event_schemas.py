"""JSON Schemas (draft 2020-12) for every published event, generated from the
event classes' type hints and committed under ``schemas/events/``.

``python -m services.event_schemas`` (or ``gam schemas``) rewrites them; a test
fails when a schema is missing or differs from what the code generates, so the
published contract cannot drift from the code silently.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from domain.base import GamEvent
from domain.catalog import METADATA_FIELDS, SELF, entity_type_of_class, event_classes, personal_fields
from infra.personal_keys import KEY_ALGORITHM
from projections.encoding import dumps
from services.envelope import REDACTED, SPEC_VERSION, cloud_event_type_of

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "events"
DECIMAL_PATTERN = r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a value of this type as published (see projections.encoding.to_json_value)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(arg) for arg in typing.get_args(hint)]}
    if origin is tuple:
        return {"type": "array", "items": type_schema(typing.get_args(hint)[0])}
    simple: dict[Any, dict[str, Any]] = {
        type(None): {"type": "null"},
        str: {"type": "string"},
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        Decimal: {"type": "string", "pattern": DECIMAL_PATTERN},
        UUID: {"type": "string", "pattern": UUID_PATTERN},
        datetime: {"type": "string", "pattern": TIME_PATTERN},
        date: {"type": "string", "format": "date"},
    }
    if hint in simple:
        return simple[hint]
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = [f.name for f in dataclasses.fields(hint)]
        return {
            "type": "object",
            "properties": {name: type_schema(hints[name]) for name in fields},
            "required": fields,
            "additionalProperties": False,
        }
    msg = f"no JSON Schema for {hint!r}"
    raise TypeError(msg)


def sealed_schema(field: str, hint: Any) -> dict[str, Any]:
    """A personal field as published (``services.envelope.sealed_field``): the ciphertext
    and what opens it; ``[redacted]`` for a value the store holds unsealed."""
    sealed = {
        "type": "object",
        "description": (
            "Personal data, sealed under the subject's key: AES-256-GCM of the field's value as UTF-8 JSON "
            "(a value object as {\"_type_\": ..., \"_data_\": ...}), with `aad` as additional authenticated data. "
            "The subject's key: GET /compliance/personal-keys/{subject} (personal_data scope); 410 once erased. "
            "Opened, the value is valid against x-gam-opened."
        ),
        "x-gam-opened": type_schema(hint),
        "properties": {
            "sealed": {"type": "string", "contentEncoding": "base64",
                       "description": "12-byte nonce, ciphertext and 16-byte tag, base64"},
            "alg": {"const": KEY_ALGORITHM},
            "subject": {"type": "string", "pattern": UUID_PATTERN,
                        "description": "The person whose key opens it"},
            "key_id": {"type": "string", "pattern": "^personal:[0-9a-f-]{36}:v[0-9]+$"},
            "aad": {"type": "string", "pattern": f"/{field}$"},
        },
        "required": ["sealed", "alg", "subject", "key_id", "aad"],
        "additionalProperties": False,
    }  # fmt: skip
    return {"anyOf": [sealed, {"const": REDACTED, "description": "Stored before sealing existed; never in clear"}]}


def _published_schema(name: str, subject: str | None, hint: Any) -> dict[str, Any]:
    """A personal field is published sealed; one about a person another field names (a
    deal's note or evidence) only when it holds a value about someone, else as it is."""
    if subject is None:
        return type_schema(hint)
    if subject == SELF:
        return sealed_schema(name, hint)
    return {"anyOf": [*sealed_schema(name, hint)["anyOf"], type_schema(hint)]}


def data_schema(event_class: type[GamEvent]) -> dict[str, Any]:
    hints = typing.get_type_hints(event_class)
    personal = personal_fields(event_class)
    names = [f.name for f in dataclasses.fields(event_class) if f.name not in METADATA_FIELDS]
    properties = {n: _published_schema(n, personal.get(n), hints[n]) for n in names}
    properties |= {
        "actor": {"type": "string"},
        "reason": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "version": {"type": "integer", "minimum": 1},
    }
    return {
        "type": "object",
        "properties": properties,
        "required": [*names, "actor", "reason", "version"],
        "additionalProperties": False,
    }


def event_schema(event_class: type[GamEvent]) -> dict[str, Any]:
    """The whole CloudEvent (envelope and data) for one event type."""
    ce_type = cloud_event_type_of(event_class)
    version = int(getattr(event_class, "class_version", 1))
    nullable_uuid = {"anyOf": [{"type": "string", "pattern": UUID_PATTERN}, {"type": "null"}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:gam:schema:{ce_type}:v{version}",
        "title": ce_type,
        "description": (event_class.__doc__ or "").strip(),
        "type": "object",
        "properties": {
            "specversion": {"const": SPEC_VERSION},
            "id": {"type": "string", "pattern": UUID_PATTERN},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": ce_type},
            "subject": {"type": "string", "pattern": f"^{entity_type_of_class(event_class)}/"},
            "time": {"type": "string", "pattern": TIME_PATTERN},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"const": f"urn:gam:schema:{ce_type}:v{version}"},
            "gamaccount": nullable_uuid,
            "gamposition": {"type": "integer", "minimum": 1},
            "gamcorrelation": {"type": "string", "pattern": UUID_PATTERN},
            "gamcausation": nullable_uuid,
            "data": data_schema(event_class),
        },
        "required": [
            "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
            "gamaccount", "gamposition", "gamcorrelation", "gamcausation", "data",
        ],
        "additionalProperties": False,
    }  # fmt: skip


def generated_schemas() -> dict[str, str]:
    """File name → schema text, for every event type."""
    return {
        f"{cloud_event_type_of(cls)}.json": _pretty(event_schema(cls)) for cls in event_classes() if cls is not GamEvent
    }


def _pretty(schema: dict[str, Any]) -> str:
    assert dumps(schema)  # canonical JSON must be possible
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path)

"""Canonical JSON for view documents and audit changes.

Sorted keys and fixed separators make the same view state serialise to the
same bytes, which the compliance exports rely on.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID


def to_json_value(value: Any) -> Any:
    """A JSON-native copy: Decimal → str (exact), UUID → str, dates → ISO, tuples → lists."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(to_json_value(k)): to_json_value(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return repr(value)
    msg = f"cannot put {type(value).__name__} in a view"
    raise TypeError(msg)


def format_time(moment: datetime) -> str:
    """UTC with microseconds and a four-digit year, so stored times sort as text too
    and :func:`parse_time` reads every one back (``strftime("%Y")`` writes the year
    208 as ``208``)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def dumps(document: Any) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text)

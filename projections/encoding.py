"""Canonical JSON for view documents and audit changes.

Sorted keys and fixed separators make the same view state serialise to the
same bytes, which the compliance exports rely on. orjson writes them (the same
bytes as ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))``
for the JSON values gam stores, several times faster).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

_ZERO = timedelta(0)


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
        return {json_key(k): to_json_value(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return repr(value)
    msg = f"cannot put {type(value).__name__} in a view"
    raise TypeError(msg)


def json_key(key: Any) -> str:
    """A dict key as JSON has it. A composite key (a tuple: a person and a role, an
    offering and a unit) is its parts joined by ``/``, the shape the audit trail's
    item paths use (``influence[<person>/<role>]``), never a Python repr."""
    if isinstance(key, tuple | list):
        return "/".join(json_key(part) for part in key)
    text = to_json_value(key)
    return text if isinstance(text, str) else str(text)


def format_time(moment: datetime) -> str:
    """UTC with microseconds and a four-digit year, so stored times sort as text too
    and :func:`parse_time` reads every one back (``strftime("%Y")`` writes the year
    208 as ``208``)."""
    if moment.utcoffset() == _ZERO:  # already UTC: one call instead of three
        return moment.isoformat(timespec="microseconds")[:-6] + "Z"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Reads what :func:`format_time` writes. ``fromisoformat``, not ``strptime``: a
    view read parses a hundred times, and ``strptime`` was a tenth of the read."""
    if not text.endswith("Z"):
        raise ValueError(f"not a UTC time as gam writes it: {text!r}")
    return datetime.fromisoformat(text)


def dumps(document: Any) -> str:
    return dumps_bytes(document).decode()


def dumps_bytes(document: Any) -> bytes:
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers past 64 bits: the standard library writes the same JSON
        return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def loads(text: str | bytes) -> Any:
    if may_hold_a_long_integer(text):
        return json.loads(text)
    return orjson.loads(text)


_EVERY_DIGIT_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def may_hold_a_long_integer(text: str | bytes) -> bool:
    """orjson reads an integer past 64 bits as a float, losing digits; the standard
    library reads JSON that may hold one (19 digits in a row, in a string or not).

    Every digit made a ``0``, then a substring search: the regular expression
    ``\\d{19}`` took longer than orjson's parse of the document (15x this)."""
    raw = text.encode() if isinstance(text, str) else text
    return _NINETEEN_DIGITS in raw.translate(_EVERY_DIGIT_AS_ZERO)


def deep_copy(document: Any) -> Any:
    """A copy of a JSON value sharing nothing with it (``copy.deepcopy``, several times faster)."""
    return loads(dumps_bytes(document))

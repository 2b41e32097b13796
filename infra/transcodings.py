"""JSON transcodings for the domain's value types, for ``eventsourcing``'s JSONTranscoder.

The library knows UUID, Decimal and datetime; we add ``date`` and every frozen
dataclass the domain defines (Money, Target, PersonalData, the aggregates' state
records), so events and snapshots store them losslessly.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import date
from types import ModuleType
from typing import Any

from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain import account, deal, plan, stakeholder, values
from infra.personal_keys import Sealed

DOMAIN_MODULES: tuple[ModuleType, ...] = (values, account, plan, stakeholder, deal)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class DataclassAsDict(Transcoding):
    """Stores a frozen dataclass as a dict of its fields; JSON lists become tuples again."""

    def __init__(self, cls: type[Any]) -> None:
        self.type = cls
        self.name = f"{cls.__module__}.{cls.__qualname__}"

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def value_types() -> list[type[Any]]:
    """Every dataclass defined in the domain modules that is not an event."""
    found: dict[str, type[Any]] = {}
    for module in DOMAIN_MODULES:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                dataclasses.is_dataclass(obj)
                and obj.__module__ == module.__name__
                and not issubclass(obj, DomainEvent | Aggregate)
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    for cls in value_types():
        transcoder.register(DataclassAsDict(cls))
    transcoder.register(DataclassAsDict(Sealed))

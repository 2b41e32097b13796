"""Stored events read as :class:`~projections.facts.EventFacts`, straight from their JSON.

The views read an event as JSON values, so a catch-up or a rebuild need not build
the domain event first: decoding it through the mapper made every value an object
(a UUID, a Decimal, a Money) that the views turned back into the text they store,
and cost most of a rebuild. Here the stored JSON is read with orjson and each
transcoded value (``{"_type_": ..., "_data_": ...}``) is turned into the JSON
value ``projections.encoding.to_json_value`` gives for the decoded object.

Personal data stays sealed: a sealed value reads as ``{"sealed": ...}``, the same
ciphertext under the person's key, so the views keep it sealed and it is opened
only when someone reads a view (``infra.sealed_reads``); a destroyed key makes
every copy unreadable without rewriting a row.

Whatever this module does not know how to read the same way goes through the
mapper, as before: events stored under an older class version (upcast by the
class), a mapper that compresses or encrypts, and any value type not listed
below. A test holds the two ways equal on every kind of event the domain has
(personal data once opened).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from domain.base import GamEvent
from infra.personal_keys import Sealed
from infra.transcodings import value_types
from projections.encoding import format_time
from projections.facts import EventFacts, facts_of

_VALUE_TYPES = frozenset(f"{cls.__module__}.{cls.__qualname__}" for cls in value_types())
_SEALED = f"{Sealed.__module__}.{Sealed.__qualname__}"


class Undecodable(ValueError):
    """A stored value this module does not read (the mapper does)."""


@functools.cache
def event_class(topic: str) -> type[GamEvent] | None:
    """The gam event class of a stored event's topic (``None`` for any other class)."""
    cls = resolve_topic(topic)
    return cls if isinstance(cls, type) and issubclass(cls, GamEvent) else None


def _hyphenated(hex_text: str) -> str:
    """``str(UUID(hex=...))`` without building the UUID."""
    h = hex_text.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utc_text(iso: str) -> str | None:
    """``format_time`` of a UTC time from its ISO text, by slicing (``None`` if not UTC)."""
    if not iso.endswith("+00:00"):
        return None
    if len(iso) == 25:  # 2027-01-01T00:01:00+00:00
        return iso[:19] + ".000000Z"
    if len(iso) == 32:  # 2027-01-01T00:01:00.123456+00:00
        return iso[:26] + "Z"
    return None


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        kind = value.get("_type_")
        if kind is None or len(value) != 2 or "_data_" not in value:
            return {key: _json_value(v) for key, v in value.items()}
        data = value["_data_"]
        if kind == "uuid_hex":
            return _hyphenated(data)
        if kind in ("decimal_str", "date_iso"):
            return data
        if kind == "datetime_iso":
            return _utc_text(data) or format_time(datetime.fromisoformat(data))
        if kind == _SEALED:
            return {"sealed": data["sealed"]}
        if kind in _VALUE_TYPES:
            return {key: _json_value(v) for key, v in data.items()}
        raise Undecodable(kind)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, float):  # gam's events hold none (Decimal is text); orjson reads an
        raise Undecodable(repr(value))  # integer past 64 bits as one, and the mapper does not
    return value


def _uuid(value: Any) -> UUID | None:
    if value is None:
        return None
    if isinstance(value, dict) and value.get("_type_") == "uuid_hex":
        return _uuid_of_hex(value["_data_"])
    raise Undecodable(repr(value))


@functools.lru_cache(maxsize=4096)
def _uuid_of_hex(hex_text: str) -> UUID:
    """The events of one command (or one import) share their correlation id."""
    return UUID(hex=hex_text)


class FactsDecoder:
    """Reads stored events of one application as the views' facts.

    ``keep_sealed``: an event read through the mapper keeps its personal data sealed
    too (the relay's way: what it publishes must never be opened, whichever way it was
    read); otherwise the mapper opens it, as it does for the domain."""

    def __init__(self, mapper: Mapper[Any], *, keep_sealed: bool = False) -> None:
        self.mapper = mapper
        self.direct = mapper.cipher is None and mapper.compressor is None
        self.keep_sealed = keep_sealed

    def decode(self, stored: StoredEvent) -> EventFacts | None:
        """The event's facts; ``None`` for an event that is not gam's."""
        cls = event_class(stored.topic)
        if cls is None:
            return None
        if self.direct:
            try:
                return self.from_json(cls, stored)
            except Undecodable:
                pass
        return self.through_mapper(stored)

    def through_mapper(self, stored: StoredEvent) -> EventFacts | None:
        """The facts of the event the mapper builds (upcast, deciphered, decompressed);
        with ``keep_sealed`` the library's own mapping, which leaves sealed values sealed."""
        event = Mapper.to_domain_event(self.mapper, stored) if self.keep_sealed else self.mapper.to_domain_event(stored)
        return facts_of(event) if isinstance(event, GamEvent) else None

    def from_json(self, cls: type[GamEvent], stored: StoredEvent) -> EventFacts:
        """The facts read straight from the stored JSON; :class:`Undecodable` if they cannot be."""
        state: dict[str, Any] = orjson.loads(stored.state)  # a long integer reads as a float: see _json_value
        if state.pop("class_version", 1) != getattr(cls, "class_version", 1):
            raise Undecodable("an older class version")
        stamp = state.pop("timestamp", None)
        correlation = state.pop("correlation_id", None)
        causation = state.pop("causation_id", None)
        actor, reason = state.pop("actor", None), state.pop("reason", None)
        traceparent = state.pop("traceparent", None)
        state.pop("originator_topic", None)
        if not isinstance(stamp, dict) or stamp.get("_type_") != "datetime_iso":
            raise Undecodable(repr(stamp))
        text = stamp["_data_"]
        timestamp = datetime.fromisoformat(text)
        originator = stored.originator_id
        entity_id = originator if isinstance(originator, UUID) else UUID(str(originator))
        correlation_id = _uuid(correlation)
        if correlation_id is None:
            raise Undecodable("no correlation id")
        return EventFacts(
            event_class=cls,
            entity_id=entity_id,
            entity=str(entity_id),
            version=stored.originator_version,
            timestamp=timestamp,
            at=_utc_text(text) or format_time(timestamp),
            actor=actor,
            reason=reason,
            correlation_id=correlation_id,
            causation_id=_uuid(causation),
            payload={name: _json_value(value) for name, value in state.items()},
            traceparent=traceparent if isinstance(traceparent, str) else None,
        )

"""The base classes our aggregates and events share, on top of ``eventsourcing``.

We use the library's ``Aggregate`` with explicitly declared event classes: each
event is a frozen dataclass with a business docstring and an ``apply`` that
evolves the aggregate (never checks rules; rules are checked by the command
methods before an event is triggered, so a rejected command records nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import sha1
from typing import Any, Self
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, Snapshot

from domain.metadata import EventMetadata


class GamEvent(Aggregate.Event):
    """Every event records the actor, a correlation id (the request or workflow it
    belongs to), a causation id (the message that caused it) and an optional
    human reason. The timestamp (UTC) is the library's ``timestamp`` field."""

    actor: str
    correlation_id: UUID
    causation_id: UUID | None
    reason: str | None

    @property
    def event_id(self) -> UUID:
        """A stable id for this event: the same wherever and however often it is
        published, so downstream consumers can drop duplicates by it."""
        return event_id_for(self.originator_id, self.originator_version)

    def __post_init__(self) -> None:
        super().__post_init__()
        # Sequences in events are tuples, whatever the caller passed, so events
        # are immutable and compare equal after a reload (infra.mapping restores
        # tuples there, since the library rebuilds events without this method).
        for name, value in vars(self).items():
            if isinstance(value, list):
                object.__setattr__(self, name, deep_tuple(value))


_EVENT_NAMESPACE = UUID("5b1d3c4e-9f0a-4c2b-8e7d-6a5f4b3c2d1e")


def event_id_for(entity_id: UUID, version: int) -> UUID:
    """Events are identified by their entity and version; this names that pair with one UUID."""
    return uuid5(_EVENT_NAMESPACE, f"{entity_id}/{version}")


def event_id_text(entity: str, version: int) -> str:
    """``str(event_id_for(UUID(entity), version))``, for the relay, which names every event
    it publishes: the same UUIDv5 (RFC 9562: SHA-1 of namespace and name, version and
    variant bits set) written straight from the digest's hex, at half the cost of
    building the UUID to print it. ``entity`` is the entity id as text."""
    h = sha1(_EVENT_NAMESPACE.bytes + f"{entity}/{version}".encode(), usedforsecurity=False).hexdigest()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def deep_tuple(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(deep_tuple(v) for v in value)
    return value


_PAIRS = "__pairs__"
_TUPLE = "__tuple__"


class GamSnapshot(Snapshot):
    """A snapshot whose state survives JSON although our aggregates key their
    collections by UUID or tuple (such dicts are stored as key/value pairs) and
    hold tuples as well as lists (tuples are marked so they come back as tuples)."""

    @classmethod
    def take(cls, aggregate: Any) -> Self:
        snapshot = super().take(aggregate)
        state = {k: _to_pairs(v) for k, v in snapshot.state.items()}
        object.__setattr__(snapshot, "state", state)
        return snapshot

    def mutate(self, _: None) -> Any:
        state = {k: _from_pairs(v) for k, v in self.state.items()}
        original = self.state
        object.__setattr__(self, "state", state)
        try:
            return super().mutate(_)
        finally:
            object.__setattr__(self, "state", original)


def _to_pairs(value: Any) -> Any:
    if isinstance(value, dict) and any(not isinstance(k, str) for k in value):
        return {_PAIRS: [[k, v] for k, v in value.items()]}
    if isinstance(value, tuple):  # JSON would make it a list; lists stay lists
        return {_TUPLE: list(value)}
    return value


def _from_pairs(value: Any) -> Any:
    if isinstance(value, Mapping) and set(value) == {_PAIRS}:
        return {deep_tuple(k): v for k, v in value[_PAIRS]}
    if isinstance(value, Mapping) and set(value) == {_TUPLE}:
        return deep_tuple(value[_TUPLE])
    return value


class GamAggregate(Aggregate):
    """Base aggregate: records events with metadata, snapshots with UUID-keyed state."""

    Snapshot = GamSnapshot
    entity_type = "entity"
    """Name of the kind of entity, for audit trails and errors."""

    @classmethod
    def _create_with(cls, event_class: type[Any], aggregate_id: UUID, meta: EventMetadata, **payload: Any) -> Self:
        return cls._create(event_class, id=aggregate_id, **meta.event_fields(), **payload)

    def _record(self, event_class: type[GamEvent], meta: EventMetadata, **payload: Any) -> None:
        self.trigger_event(event_class, **meta.event_fields(), **payload)

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        """Copy the containers, share the values.

        Aggregate state is held as dicts and lists of frozen values (frozen
        dataclasses, tuples, str, UUID, Decimal) that ``apply`` replaces rather
        than mutates, so new containers make an independent copy. The repository
        cache copies every aggregate it hands out; this keeps that cheap.
        """
        clone = object.__new__(type(self))
        for name, value in self.__dict__.items():
            if isinstance(value, dict):
                value = dict(value)
            elif isinstance(value, list):
                value = list(value)
            clone.__dict__[name] = value
        return clone

"""Reads checked at commit: a unit of work's cached reads are validated inside the
transaction that stores its events, instead of asking the store "has anything
changed?" before every command.

The events table is locked for each insert (PostgreSQL's recorder takes an
EXCLUSIVE lock, SQLite has one writer at a time), so once our events have their
positions, every event before them is committed and nothing can slip in. If the
position before our first one is the one the session's cache was known to hold,
nobody wrote since (the common case: no query at all). Otherwise one query lists
the events in between; if any is newer than an aggregate the session read, its
decision rested on stale state, the transaction is rolled back and the caller
decides again on fresh state. The events in between are also what the cache must
forget, so the caller is told them.

This also closes a gap the old check before the command left open: an aggregate
read but not written (the account whose unit tree a rule reads) changed by
another process between the check and the commit now sends the command back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

SelectBetween = Callable[[int, int], Iterable[tuple[int, UUID | str, int, str]]]
"""The recorder's query: (position, entity id, version, topic) of the events stored at positions start..stop."""
SelectFirst = Callable[[Sequence[UUID]], Iterable[StoredEvent]]
"""The recorder's query, in the commit's transaction: the first event of each of these entities."""


class Watch(Protocol):
    """Events stored meanwhile that make a decision stale although no aggregate it read
    changed (a stakeholder named by another process, for the personal-data guard)."""

    def __call__(self, entity: UUID, version: int, topic: str) -> bool | None:
        """Whether the event makes the decision stale; ``None`` if that depends on whose
        the entity is, which its first event says (:meth:`stale_given`)."""

    def stale_given(self, first: StoredEvent) -> bool:
        """Whether an entity of a ``None`` above makes the decision stale, from its first event."""


class StaleRead(Exception):
    """An aggregate the unit of work read was changed by someone else before it committed."""

    def __init__(self, entity_id: UUID, read_version: int, stored_version: int) -> None:
        super().__init__(f"entity {entity_id} was read at version {read_version}; version {stored_version} is stored")
        self.entity_id = entity_id
        self.read_version = read_version
        self.stored_version = stored_version


@dataclass
class ReadCheck:
    """What a unit of work read, for its commit to verify."""

    known: int
    """Every aggregate the unit of work read from the cache holds every event up to this log position."""
    versions: Mapping[UUID, int]
    """The version of each aggregate as the unit of work read it."""
    between: list[tuple[int, UUID, str]] = field(default_factory=list)
    """Filled in by the commit: (position, entity, topic) of each event stored after ``known``
    and before ours. The topic, because an erasure changes what other aggregates read
    as (a deal's notes about the person) without adding events to them."""
    watched: Watch | None = None
    """Events in between that make the decision stale although no aggregate read changed."""

    def verify(self, first_position: int, select_between: SelectBetween, select_first: SelectFirst) -> None:
        """Called by the recorder under its write lock, once the new events have positions.

        Raises :class:`StaleRead` if any of them is newer than what was read, or is an
        event the watch says makes the decision stale. Entities whose verdict depends on
        their first event are looked up in one query, in the same transaction (another
        process named them: whose they are is not known here)."""
        if first_position - 1 <= self.known:
            return
        self.between = []
        undecided: dict[UUID, int] = {}
        for position, originator_id, version, topic in select_between(self.known + 1, first_position - 1):
            entity_id = as_uuid(originator_id)
            self.between.append((position, entity_id, topic))
            read = self.versions.get(entity_id)
            if read is not None and version > read:
                raise StaleRead(entity_id, read, version)
            if self.watched is not None:
                verdict = self.watched(entity_id, version, topic)
                if verdict:
                    raise StaleRead(entity_id, read or 0, version)
                if verdict is None:
                    undecided[entity_id] = version
        if undecided and self.watched is not None:
            first = {as_uuid(event.originator_id): event for event in select_first(list(undecided))}
            for entity_id, version in undecided.items():
                if entity_id not in first or self.watched.stale_given(first[entity_id]):
                    raise StaleRead(entity_id, self.versions.get(entity_id, 0), version)


def as_uuid(entity: UUID | str) -> UUID:
    """An entity id as the recorders give it (a UUID, or its text on SQLite) as a UUID."""
    return entity if isinstance(entity, UUID) else UUID(str(entity))

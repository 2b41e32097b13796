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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

SelectBetween = Callable[[int, int], Iterable[tuple[int, UUID | str, int, str]]]
"""The recorder's query: (position, entity id, version, topic) of the events stored at positions start..stop."""


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
    watched: Callable[[UUID, int, str], bool] | None = None
    """Events in between that make the decision stale although no aggregate read changed
    (a stakeholder named by another process, for the personal-data guard): (entity, version, topic)."""

    def verify(self, first_position: int, select_between: SelectBetween) -> None:
        """Called by the recorder under its write lock, once the new events have positions.

        Raises :class:`StaleRead` if any of them is
        newer than what was read."""
        if first_position - 1 <= self.known:
            return
        self.between = []
        for position, originator_id, version, topic in select_between(self.known + 1, first_position - 1):
            entity_id = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
            self.between.append((position, entity_id, topic))
            read = self.versions.get(entity_id)
            if read is not None and version > read:
                raise StaleRead(entity_id, read, version)
            if self.watched is not None and self.watched(entity_id, version, topic):
                raise StaleRead(entity_id, read or 0, version)

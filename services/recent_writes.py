"""Which entities the latest events of the log wrote, as far as the aggregate cache has
been brought past them (see :class:`services.app.GamApplication`).

Commands that run side by side in one process (``gam serve``'s threads) finish in
any order. The cache holds the log up to one position, and a commit's aggregates are
put in it only when the cache stood just before that commit. When a later commit
finished first, the earlier one's aggregates were dropped instead, and the next
command on each read it whole from the store again: in ``gam serve`` with three
clients, 152 reads of whole aggregates for 1,737 commands, about a quarter of the
worker threads' CPU. With the entities written past a commit known, its aggregates
are still current when none of those events wrote them, and are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from uuid import UUID

KEPT = 4_096
"""Writes remembered; older ones are forgotten, and a commit older than what is remembered is dropped as before."""


class RecentWrites:
    """(position, entity) of each event after :attr:`complete_after`, up to where the
    cache stands: every event in between is listed here."""

    def __init__(self, kept: int = KEPT) -> None:
        self._writes: deque[tuple[int, UUID]] = deque()
        self._kept = kept
        self.complete_after: int | None = None
        """Every event after this position (up to the cache's) is listed; None: nothing is known."""

    def restart(self, position: int | None) -> None:
        """Forget every write: from ``position`` on, they are listed again (None: unknown)."""
        self._writes.clear()
        self.complete_after = position

    def wrote(self, position: int, entity_id: UUID) -> None:
        """The event at ``position`` wrote ``entity_id``."""
        self._writes.append((position, entity_id))
        if len(self._writes) > self._kept:
            forgotten, _ = self._writes.popleft()
            if self.complete_after is not None:
                self.complete_after = max(self.complete_after, forgotten)

    def untouched_after(self, position: int, entity_ids: Iterable[UUID]) -> bool:
        """Whether no event after ``position`` wrote any of ``entity_ids`` (False when
        the events after it are not all known)."""
        if self.complete_after is None or position < self.complete_after:
            return False
        ids = set(entity_ids)
        for later, entity in reversed(self._writes):  # the newest first: few are after ``position``
            if later <= position:
                return True
            if entity in ids:
                return False
        return True

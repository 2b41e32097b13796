"""The event mapper: ``eventsourcing``'s, plus one repair JSON needs.

JSON has no tuples, and the library rebuilds a stored event without calling its
constructor, so sequences would come back as lists and a reloaded event would
not equal the one that was saved (``[] != ()``). Our events hold only tuples, so
every list is turned back into one here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from domain.base import GamEvent, deep_tuple


class GamMapper(Mapper[UUID]):
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if isinstance(event, GamEvent):
            for name, value in vars(event).items():
                if isinstance(value, list):
                    object.__setattr__(event, name, deep_tuple(value))
        return event

"""The event mapper: ``eventsourcing``'s, plus two things our events need.

1. Personal data at rest is sealed under its subject's key
   (``infra.personal_keys``): the fields named in
   ``domain.catalog.PERSONAL_DATA_FIELDS`` are swapped for :class:`Sealed` values
   before the library maps the event, and opened again after it reads one. Once
   a subject's key is destroyed, those fields read as ``[erased]``.
2. JSON has no tuples, and the library rebuilds a stored event without calling
   its constructor, so sequences would come back as lists and a reloaded event
   would not equal the one that was saved (``[] != ()``). Our events hold only
   tuples, so every list is turned back into one here.
"""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from domain.base import GamEvent, deep_tuple
from domain.catalog import PERSONAL_DATA_FIELDS
from domain.values import ERASED, PersonalData
from infra.personal_keys import MemoryKeys, PersonalKeys, Sealed


class GamMapper(Mapper[UUID]):
    keys: PersonalKeys = MemoryKeys()
    """Replaced by the application with the key store beside its events."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        personal = PERSONAL_DATA_FIELDS.get(type(domain_event))
        if personal and isinstance(domain_event, GamEvent):
            sealed = copy.copy(domain_event)
            for field in personal:
                plaintext = self.transcoder.encode(getattr(domain_event, field))
                object.__setattr__(sealed, field, self.keys.seal(domain_event.originator_id, field, plaintext))
            domain_event = sealed
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if isinstance(event, GamEvent):
            for name, value in vars(event).items():
                if isinstance(value, Sealed):
                    object.__setattr__(event, name, self._open(event.originator_id, name, value))
                elif isinstance(value, list):
                    object.__setattr__(event, name, deep_tuple(value))
        return event

    def _open(self, subject: UUID, field: str, sealed: Sealed) -> Any:
        plaintext = self.keys.open(subject, field, sealed)
        if plaintext is None:
            return PersonalData(ERASED) if field == "personal" else ERASED
        return self.transcoder.decode(plaintext)

"""The event mapper: ``eventsourcing``'s, plus two things our events need.

1. Personal data at rest is sealed under its subject's key
   (``infra.personal_keys``): the fields named in
   ``domain.catalog.PERSONAL_DATA_FIELDS`` are swapped for :class:`Sealed` values
   before the library maps the event, and opened again after it reads one. Once
   a subject's key is destroyed, those fields read as ``[erased]``. Snapshots are
   sealed the same way (``PERSONAL_STATE_FIELDS``), so a stakeholder's snapshot
   holds nothing a destroyed key does not take with it.
2. JSON has no tuples, and the library rebuilds a stored event without calling
   its constructor, so sequences would come back as lists and a reloaded event
   would not equal the one that was saved (``[] != ()``). Our events hold only
   tuples, so every list is turned back into one here.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.base import GamEvent, GamSnapshot, deep_tuple
from domain.catalog import PERSONAL_DATA_FIELDS, PERSONAL_STATE_FIELDS
from domain.values import ERASED, PersonalData
from infra.personal_keys import MemoryKeys, PersonalKeys, Sealed, open_with, seal_with

SNAPSHOT_PERSONAL_FIELDS = {get_topic(cls): fields for cls, fields in PERSONAL_STATE_FIELDS.items()}
"""``PERSONAL_STATE_FIELDS`` by the aggregate topic a snapshot names."""


def erased_value(field: str) -> Any:
    return PersonalData(ERASED) if field == "personal" else ERASED


class GamMapper(Mapper[UUID]):
    keys: PersonalKeys = MemoryKeys()
    """Replaced by the application with the key store it chose."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        personal = PERSONAL_DATA_FIELDS.get(type(domain_event))
        if personal and isinstance(domain_event, GamEvent):
            sealed = copy.copy(domain_event)
            for field in personal:
                plaintext = self.transcoder.encode(getattr(domain_event, field))
                object.__setattr__(sealed, field, self.keys.seal(domain_event.originator_id, field, plaintext))
            domain_event = sealed
        elif isinstance(domain_event, GamSnapshot) and domain_event.topic in SNAPSHOT_PERSONAL_FIELDS:
            domain_event = self._seal_snapshot(domain_event, SNAPSHOT_PERSONAL_FIELDS[domain_event.topic])
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if isinstance(event, GamEvent):
            for name, value in vars(event).items():
                if isinstance(value, Sealed):
                    object.__setattr__(event, name, self._open(event.originator_id, name, value))
                elif isinstance(value, list):
                    object.__setattr__(event, name, deep_tuple(value))
        elif isinstance(event, GamSnapshot) and event.topic in SNAPSHOT_PERSONAL_FIELDS:
            self._open_snapshot(event, SNAPSHOT_PERSONAL_FIELDS[event.topic])
        return event

    def _open(self, subject: UUID, field: str, sealed: Sealed) -> Any:
        plaintext = self.keys.open(subject, field, sealed)
        if plaintext is None:
            return erased_value(field)
        return self.transcoder.decode(plaintext)

    def _seal_snapshot(self, snapshot: GamSnapshot, fields: dict[str, str | None]) -> GamSnapshot:
        """A copy of the snapshot with the person's data sealed under their key, looked
        up once. Values already erased stay as they are (there is nothing to protect);
        with the key gone, whatever is left is stored as erased."""
        subject = snapshot.originator_id
        key = self.keys.key(subject, create=True)

        def seal(field: str, value: Any) -> Any:
            if value == erased_value(field) or key is None:
                return erased_value(field)
            return Sealed(seal_with(key, f"{subject}/{field}", self.transcoder.encode(value)))

        state = dict(snapshot.state)
        for name, inner in fields.items():
            if name not in state:
                continue
            if inner is None:
                state[name] = seal(name, state[name])
            else:
                state[name] = [dataclasses.replace(r, **{inner: seal(inner, getattr(r, inner))}) for r in state[name]]
        sealed = copy.copy(snapshot)
        object.__setattr__(sealed, "state", state)
        return sealed

    def _open_snapshot(self, snapshot: GamSnapshot, fields: dict[str, str | None]) -> None:
        subject = snapshot.originator_id
        key: bytes | None = None
        looked_up = False

        def open_(field: str, value: Any) -> Any:
            nonlocal key, looked_up
            if not isinstance(value, Sealed):
                return value
            if not looked_up:
                key, looked_up = self.keys.key(subject, create=False), True
            if key is None:
                return erased_value(field)
            return self.transcoder.decode(open_with(key, f"{subject}/{field}", value.sealed))

        state = snapshot.state
        for name, inner in fields.items():
            if name not in state:
                continue
            if inner is None:
                state[name] = open_(name, state[name])
            else:
                state[name] = [dataclasses.replace(r, **{inner: open_(inner, getattr(r, inner))}) for r in state[name]]

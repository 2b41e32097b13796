"""The event mapper: ``eventsourcing``'s, plus two things our events need.

1. Personal data at rest is sealed under its subject's key
   (``infra.personal_keys``): the fields named in
   ``domain.catalog.PERSONAL_DATA_FIELDS`` are swapped for :class:`Sealed` values
   before the library maps the event, and opened again after it reads one. The
   subject is the person the field is about, which is not always the event's own
   entity: a deal's buying-influence note is sealed under the named stakeholder's
   key, so erasing that person takes the note with them and leaves the deal. Once
   a subject's key is destroyed, those fields read as ``[erased]``. Snapshots are
   sealed the same way (``PERSONAL_STATE_FIELDS``), so a stakeholder's or a deal's
   snapshot holds nothing a destroyed key does not take with it.
2. JSON has no tuples, and the library rebuilds a stored event without calling
   its constructor, so sequences would come back as lists and a reloaded event
   would not equal the one that was saved (``[] != ()``). Our events hold only
   tuples, so every list is turned back into one here.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.base import GamEvent, GamSnapshot, deep_tuple
from domain.catalog import PERSONAL_STATE_FIELDS, SELF, PersonalState, personal_fields, personal_subjects
from domain.values import ERASED, PersonalData
from infra.personal_keys import MemoryKeys, PersonalKeys, Sealed, open_with, seal_with

SNAPSHOT_PERSONAL_FIELDS = {get_topic(cls): fields for cls, fields in PERSONAL_STATE_FIELDS.items()}
"""``PERSONAL_STATE_FIELDS`` by the aggregate topic a snapshot names."""

_PAIRS = "__pairs__"  # how GamSnapshot keeps a dict keyed by tuples or UUIDs


def erased_value(field: str) -> Any:
    return PersonalData(ERASED) if field == "personal" else ERASED


class GamMapper(Mapper[UUID]):
    keys: PersonalKeys = MemoryKeys()
    """Replaced by the application with the key store it chose."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, GamEvent) and (subjects := personal_subjects(domain_event)):
            sealed = copy.copy(domain_event)
            for field, subject in subjects.items():
                plaintext = self.transcoder.encode(getattr(domain_event, field))
                object.__setattr__(sealed, field, self.keys.seal(subject, field, plaintext))
            domain_event = sealed
        elif isinstance(domain_event, GamSnapshot) and domain_event.topic in SNAPSHOT_PERSONAL_FIELDS:
            domain_event = self._seal_snapshot(domain_event, SNAPSHOT_PERSONAL_FIELDS[domain_event.topic])
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        if isinstance(event, GamEvent):
            subject_fields = personal_fields(type(event))
            for name, value in vars(event).items():
                if isinstance(value, Sealed):
                    subject = getattr(event, subject_fields.get(name, SELF))
                    object.__setattr__(event, name, self._open(subject, name, value))
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

    def _seal_snapshot(self, snapshot: GamSnapshot, fields: Mapping[str, PersonalState]) -> GamSnapshot:
        """A copy of the snapshot with each person's data sealed under their key, looked
        up once per person. Values already erased stay as they are (there is nothing to
        protect); with the key gone, whatever is left is stored as erased."""
        keys: dict[UUID, bytes | None] = {}

        def seal(subject: UUID, field: str, value: Any) -> Any:
            if value is None:
                return None
            if subject not in keys:
                keys[subject] = self.keys.key(subject, create=True)
            key = keys[subject]
            if value == erased_value(field) or key is None:
                return erased_value(field)
            return Sealed(seal_with(key, f"{subject}/{field}", self.transcoder.encode(value)))

        sealed = copy.copy(snapshot)
        object.__setattr__(sealed, "state", _with_personal(snapshot, fields, seal))
        return sealed

    def _open_snapshot(self, snapshot: GamSnapshot, fields: Mapping[str, PersonalState]) -> None:
        keys: dict[UUID, bytes | None] = {}

        def open_(subject: UUID, field: str, value: Any) -> Any:
            if not isinstance(value, Sealed):
                return value
            if subject not in keys:
                keys[subject] = self.keys.key(subject, create=False)
            key = keys[subject]
            if key is None:
                return erased_value(field)
            return self.transcoder.decode(open_with(key, f"{subject}/{field}", value.sealed))

        object.__setattr__(snapshot, "state", _with_personal(snapshot, fields, open_))


def _with_personal(
    snapshot: GamSnapshot, fields: Mapping[str, PersonalState], change: Callable[[UUID, str, Any], Any]
) -> dict[str, Any]:
    """The snapshot's state with ``change(subject, field, value)`` applied to each
    personal value: a state field whole, or a field of each record in a list, a dict
    or the pairs a dict keyed by tuples is kept as (``domain.base.GamSnapshot``)."""
    state = dict(snapshot.state)
    for name, where in fields.items():
        if name not in state:
            continue
        if where.record_field is None:
            state[name] = change(snapshot.originator_id, name, state[name])
            continue
        field, subject_field = where.record_field, where.subject

        def changed(record: Any, field: str = field, subject_field: str = subject_field) -> Any:
            subject = snapshot.originator_id if subject_field == SELF else getattr(record, subject_field)
            if subject is None:
                return record
            return dataclasses.replace(record, **{field: change(subject, field, getattr(record, field))})

        records = state[name]
        if isinstance(records, Mapping) and set(records) == {_PAIRS}:
            state[name] = {_PAIRS: [[key, changed(record)] for key, record in records[_PAIRS]]}
        elif isinstance(records, Mapping):
            state[name] = {key: changed(record) for key, record in records.items()}
        else:
            state[name] = [changed(record) for record in records]
    return state

"""Opening the personal data a view keeps sealed, when someone reads the view.

The account view (and its checkpoints) keep each person's data as the event holds
it, sealed under the person's key (``projections.account_view.evolve``). Only a
read opens it, here: each person's key is looked up once per read, and a person
whose key was destroyed reads as ``[erased]``, whatever old rows, backups or
replicas of the view still hold.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Transcoder

from domain.values import ERASED, PersonalData
from infra.personal_keys import PersonalKeys, open_with
from projections.ports import Document

_PERSONAL_DATA = f"{PersonalData.__module__}.{PersonalData.__qualname__}"
"""How the transcoder names a person's data (``infra.transcodings.DataclassAsDict``)."""


class PersonalOpener:
    """For one read: opens sealed values with each subject's key, looked up once."""

    def __init__(self, keys: PersonalKeys, transcoder: Transcoder) -> None:
        self._keys = keys
        self._transcoder = transcoder
        self._looked_up: dict[str, bytes | None] = {}

    def _key(self, subject: str) -> bytes | None:
        if subject not in self._looked_up:
            self._looked_up[subject] = self._keys.key(UUID(subject), create=False)
        return self._looked_up[subject]

    def look_up(self, subjects: Collection[str]) -> None:
        """Fetch these subjects' keys in one go (one read of the key store per view read)."""
        wanted = [s for s in subjects if s not in self._looked_up]
        if wanted:
            found = self._keys.keys([UUID(s) for s in wanted])
            self._looked_up |= {str(subject): key for subject, key in found.items()}

    def open(self, subject: str, field: str, stored: Any) -> Any:
        """The value, opened; an unsealed value as it is; ``None`` once the key is gone."""
        if not (isinstance(stored, dict) and set(stored) == {"sealed"}):
            return stored
        key = self._key(subject)
        if key is None:
            return None
        return self._read(open_with(key, f"{subject}/{field}", stored["sealed"]))

    def _read(self, plaintext: bytes) -> Any:
        """The opened value as a view shows it: free text as text, a person's data as its
        fields' values (a view shows the name), read with orjson; anything else through
        the transcoder. Building each person's ``PersonalData`` (and checking its fields
        again) only to take the name was a fifth of an account view read."""
        value = orjson.loads(plaintext)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and value.get("_type_") == _PERSONAL_DATA and isinstance(value.get("_data_"), dict):
            return value["_data_"]
        return self._transcoder.decode(plaintext)

    def name(self, subject: str, personal: Document) -> dict[str, Any]:
        """A person's ``personal`` as a view shows it: ``{"name": ...}``."""
        opened = self.open(subject, "personal", personal)
        if opened is None:
            return {"name": ERASED}
        if isinstance(opened, PersonalData):
            return {"name": opened.name}
        return {"name": opened.get("name")}


def open_people(document: Document, opener: PersonalOpener) -> Document:
    """The account view document with every person's data opened: their names, and the
    free text about them on deals (buying-influence notes, evidence on the economic buyer
    or champion). A copy where it differs: the stored document is left as it is."""
    people = document.get("stakeholders") or {}
    deals = document.get("deals") or {}
    opener.look_up(
        [sid for sid, p in people.items() if _is_sealed(p.get("personal"))]
        + [subject for deal in deals.values() for subject, _, _ in _sealed_texts(deal)]
    )
    opened = dict(document)
    if people:
        opened["stakeholders"] = {
            sid: {**person, "personal": opener.name(sid, person.get("personal") or {})}
            for sid, person in people.items()
        }
    if any(_sealed_texts(deal) for deal in deals.values()):
        opened["deals"] = {deal_id: _open_deal(deal, opener) for deal_id, deal in deals.items()}
    return opened


def _is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"sealed"}


def _sealed_texts(deal: Document) -> list[tuple[str, str, Any]]:
    """``(subject, field, sealed)`` of each sealed note and evidence of a deal."""
    found = [(i["stakeholder_id"], "note", i["note"]) for i in deal.get("influences", {}).values()]
    found += [(q.get("stakeholder_id"), "evidence", q["evidence"]) for q in deal.get("qualification", {}).values()]
    return [(subject, field, value) for subject, field, value in found if subject and _is_sealed(value)]


def _open_deal(deal: Document, opener: PersonalOpener) -> Document:
    def text(subject: str | None, field: str, value: Any) -> Any:
        if subject is None or not _is_sealed(value):
            return value
        opened = opener.open(subject, field, value)
        return ERASED if opened is None else opened

    return {
        **deal,
        "influences": {
            k: {**i, "note": text(i["stakeholder_id"], "note", i["note"])} for k, i in deal["influences"].items()
        },
        "qualification": {
            k: {**q, "evidence": text(q.get("stakeholder_id"), "evidence", q["evidence"])}
            for k, q in deal["qualification"].items()
        },
    }

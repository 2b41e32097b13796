"""Checkpoints of the account view: copies of an account's document as it stood
after every so many of its events.

The account view as of a moment (services.time_travel) replays the account's
events; with checkpoints it starts from the newest copy of the document that
holds only events up to that moment. Three kinds of documents per account, next
to ``account:<id>`` and written in the same transaction as it:

``covered:<id>``
    what the document holds: each entity's version, the number of events and the
    latest event time (in microseconds since 1970, cheaper to keep per event than
    text); kept from the account's creation on (a view built before checkpoints
    existed has none, and takes none until a rebuild)
``checkpoints:<id>``
    the checkpoints taken, ``{"taken": [{"events", "latest_at"}]}``
``checkpoint:<id>:<n>``
    a copy of the document after the account's n-th event, with the coverage it
    was taken at: ``{"events", "latest_at", "versions", "document"}``

A checkpoint holds the stakeholders' names like the document does, so erasing a
person erases them from every checkpoint of the account too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.account import GlobalAccount
from domain.stakeholder import Stakeholder
from domain.values import ERASED
from projections.encoding import deep_copy, format_time
from projections.facts import EventFacts
from projections.ports import Document, ViewRecorder

DEFAULT_CHECKPOINT_INTERVAL = 1000
COVERED_PREFIX = "covered:"
CHECKPOINTS_PREFIX = "checkpoints:"
CHECKPOINT_PREFIX = "checkpoint:"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
KEYS_PER_READ = 500
"""Checkpoints read per query when an erasure rewrites them (SQLite limits a query's parameters)."""


def covered_key(account_id: UUID | str) -> str:
    return f"{COVERED_PREFIX}{account_id}"


def checkpoints_key(account_id: UUID | str) -> str:
    return f"{CHECKPOINTS_PREFIX}{account_id}"


def checkpoint_key(account_id: UUID | str, events: int) -> str:
    return f"{CHECKPOINT_PREFIX}{account_id}:{events:012d}"


def checkpoint_changes(
    view: ViewRecorder,
    account_id: UUID | str,
    event: EventFacts,
    document: Document,
    covered: Document | None,
    interval: int,
) -> dict[str, Document | None]:
    """The event counted in the account's coverage, a checkpoint when one is due
    (every ``interval`` events of the account; never for 0), and, for an erasure,
    the checkpoints that held the person's name."""
    changes: dict[str, Document | None] = {}
    if issubclass(event.event_class, Stakeholder.PersonalDataErased):
        changes.update(erase_from_checkpoints(view, account_id, event.entity))
    if covered is None:
        if not issubclass(event.event_class, GlobalAccount.Created):
            return changes  # built before checkpoints: this account's coverage is unknown
        covered = {"events": 0, "latest_us": (event.timestamp - EPOCH) // MICROSECOND, "versions": {}}
    covered["versions"][event.entity] = event.version
    covered["events"] += 1
    covered["latest_us"] = max(covered["latest_us"], (event.timestamp - EPOCH) // MICROSECOND)
    changes[covered_key(account_id)] = covered
    if interval and covered["events"] % interval == 0:
        events = sum(covered["versions"].values())
        latest_at = format_time(EPOCH + covered["latest_us"] * MICROSECOND)
        taken = view.document(checkpoints_key(account_id))
        taken = taken or {"taken": []}
        taken["taken"].append({"events": events, "latest_at": latest_at})
        changes[checkpoints_key(account_id)] = taken
        changes[checkpoint_key(account_id, events)] = {
            "events": events,
            "latest_at": latest_at,
            "versions": dict(covered["versions"]),
            "document": deep_copy(document),  # the document changes in place from the next event on
        }
    return changes


def erase_from_checkpoints(view: ViewRecorder, account_id: UUID | str, person: str) -> dict[str, Document | None]:
    """The account's checkpoints that still hold the person's name, with it erased."""
    taken = view.documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
    keys = [checkpoint_key(account_id, entry["events"]) for entry in (taken or {"taken": []})["taken"]]
    erased: dict[str, Document | None] = {}
    for start in range(0, len(keys), KEYS_PER_READ):
        for key, checkpoint in view.documents(keys[start : start + KEYS_PER_READ]).items():
            entry = checkpoint["document"]["stakeholders"].get(person)
            if entry is not None and entry["personal"] != {"name": ERASED}:
                entry["personal"] = {"name": ERASED}
                erased[key] = checkpoint
    return erased


def newest_checkpoint(
    view: ViewRecorder, account_id: UUID, moment: datetime, versions: Mapping[UUID, int]
) -> Document | None:
    """The newest checkpoint of the account that holds only events up to ``versions``
    (each entity's version at ``moment``), or ``None``.

    Candidates are those whose latest event is not after the moment; the versions
    are checked too, because they come from the audit trail, which may lag behind
    this view."""
    taken = view.documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
    if taken is None:
        return None
    until = format_time(moment)
    wanted = {str(entity): version for entity, version in versions.items()}
    for entry in sorted(taken["taken"], key=lambda entry: -entry["events"]):
        if entry["latest_at"] > until:
            continue
        key = checkpoint_key(account_id, entry["events"])
        checkpoint = view.documents([key]).get(key)
        if checkpoint and all(version <= wanted.get(e, 0) for e, version in checkpoint["versions"].items()):
            return checkpoint
    return None

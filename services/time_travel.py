"""Time travel: an account as it stood at a moment, and what changed between two.

Which version of each entity existed at the moment comes from the audit trail
(indexed by account and time); each aggregate is then loaded at that version
through ``eventsourcing``'s repository, which starts from the nearest snapshot,
so long histories stay fast. The account view as of the moment is rebuilt from
just that account's events up to those versions, with the same projection code
that builds the live view, starting from the newest checkpoint the live view
kept of the account before the moment (``GAM_VIEW_CHECKPOINT_INTERVAL``), so
only the events after it are read and replayed.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking

from domain.base import GamAggregate, GamEvent
from domain.values import ERASED
from infra.event_facts import FactsDecoder
from infra.history_reads import event_ranges, latest_snapshots
from infra.mapping import GamMapper
from infra.personal_keys import LookedUpKeys
from infra.sealed_reads import PersonalOpener, open_people
from projections.account_view import (
    AccountReplayProjection,
    AccountViewProjection,
    account_key,
    evolve_document,
    newest_checkpoint,
    read_account_view,
)
from projections.encoding import format_time
from projections.exchange_rates import PLANNING_RATES, ExchangeRates
from projections.facts import EventFacts, facts_of
from projections.ports import AuditRow, Document
from services.app import GamApplication
from services.entity_models import entity_json
from services.projector import Projector, batched, view_recorder_class


@dataclass(frozen=True)
class AccountAsOf:
    account_id: UUID
    as_of: datetime
    versions: dict[UUID, int]
    aggregates: dict[UUID, GamAggregate]
    document: Document | None

    def view(self, *, rates: ExchangeRates = PLANNING_RATES) -> dict[str, Any] | None:
        """The account view as it read at that moment (its 'now' is the moment itself)."""
        if self.document is None:
            return None
        return read_account_view(self.document, now=self.as_of, rates=rates)

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": str(self.account_id),
            "as_of": format_time(self.as_of),
            "entities": {
                str(entity_id): {
                    "type": aggregate.entity_type,
                    "version": aggregate.version,
                    "state": aggregate_state(aggregate),
                }
                for entity_id, aggregate in sorted(self.aggregates.items(), key=lambda item: str(item[0]))
            },
            "account_view": self.view(),
        }


def aggregate_state(aggregate: GamAggregate) -> dict[str, Any]:
    """The entity's public state (``services.entity_models``), personal data included: this is for compliance."""
    return entity_json(aggregate)


def account_as_of(
    app: GamApplication,
    projector: Projector,
    account_id: UUID,
    moment: datetime,
    *,
    with_view: bool = True,
    from_checkpoint: bool = True,
) -> AccountAsOf:
    """The account, its plans, stakeholders and deals, and (unless ``with_view`` is
    false) its account view, at ``moment``.

    The view is replayed from the account view's newest checkpoint that holds only
    events up to the moment, or (none such, or ``from_checkpoint`` false) from the
    account's first event; both give the same document. Every entity's snapshot is
    read in one go, and its events once, for both the entity and the view
    (``infra.history_reads``)."""
    versions = projector.view("audit_trail").versions_at(account_id, moment)
    with_view = with_view and account_id in versions
    checkpoint = None
    view_name = AccountViewProjection.view_name
    if with_view and from_checkpoint and view_name in projector.projections:
        checkpoint = newest_checkpoint(projector.view(view_name), account_id, moment, versions)
    covered = {UUID(entity): version for entity, version in checkpoint["versions"].items()} if checkpoint else {}
    snapshots = latest_snapshots(app.snapshots.recorder, versions) if app.snapshots is not None else {}
    snapshotted = {entity: snapshot.originator_version for entity, snapshot in snapshots.items()}
    first_needed = {
        entity: min(snapshotted.get(entity, 0), covered.get(entity, 0)) if with_view else snapshotted.get(entity, 0)
        for entity in versions
    }
    stored = event_ranges(app.recorder, {entity: (first_needed[entity], v) for entity, v in versions.items()})
    mapper = _mapper_for_read(app, versions)
    decoder = FactsDecoder(mapper)
    aggregates: dict[UUID, GamAggregate] = {}
    view_facts: dict[UUID, list[EventFacts]] = {}
    for entity, rows in stored.items():
        # the entity needs domain events after its snapshot; the view needs facts after its
        # checkpoint, read straight from the JSON where the entity does not need the event
        events = {r.originator_version: mapper.to_domain_event(r) for r in rows
                  if r.originator_version > snapshotted.get(entity, 0)}  # fmt: skip
        snapshot = mapper.to_domain_event(snapshots[entity]) if entity in snapshots else None
        aggregates[entity] = _aggregate_at(snapshot, list(events.values()))
        if with_view:
            view_facts[entity] = _facts(decoder, rows, events, after=covered.get(entity, 0))
    document = None
    if with_view:
        if checkpoint is None:
            document = _view_document(app, account_id, view_facts)
        else:
            document = _view_from_checkpoint(app, account_id, view_facts, checkpoint)
    if document is not None:  # checkpoints keep people's data sealed; an as-of read opens it
        document = open_people(document, PersonalOpener(app.personal_keys, app.mapper.transcoder))
    return AccountAsOf(account_id, moment, versions, aggregates, document)


def _mapper_for_read(app: GamApplication, entities: Collection[UUID]) -> GamMapper:
    """The application's mapper, with the keys of every entity read looked up at once."""
    mapper = copy.copy(cast(GamMapper, app.mapper))
    mapper.keys = LookedUpKeys(app.personal_keys, list(entities))
    return mapper


def _aggregate_at(snapshot: Any, events: Sequence[Any]) -> GamAggregate:
    """The entity from its snapshot (if any) and the events after it: what the
    library's repository does, without its per-event protocol check (a tenth of an
    as-of's time)."""
    aggregate = None if snapshot is None else snapshot.mutate(None)
    for event in events:
        aggregate = event.mutate(aggregate)
    if aggregate is None:  # the audit trail named a version the store does not hold
        raise LookupError("no events for an entity the audit trail names")
    return cast(GamAggregate, aggregate)


def _facts(
    decoder: FactsDecoder, rows: Sequence[StoredEvent], events: dict[int, Any], *, after: int
) -> list[EventFacts]:
    """The view's facts of the entity's events after ``after``: from the domain event
    where one was built, else straight from the stored JSON (personal data left sealed,
    as the live view keeps it: :func:`open_people` opens it at the end)."""
    facts = []
    for row in rows:
        if row.originator_version <= after:
            continue
        event = events.get(row.originator_version)
        one = (facts_of(event) if isinstance(event, GamEvent) else None) if event is not None else decoder.decode(row)
        if one is not None:
            facts.append(one)
    return facts


def _view_from_checkpoint(
    app: GamApplication, account_id: UUID, histories: dict[UUID, list[EventFacts]], checkpoint: Document
) -> Document:
    """The checkpoint's document with the events after it (``histories``: each entity's,
    up to its version) replayed onto it: the same document as the full replay
    (:func:`_view_document`), since each entity's part of it depends only on that
    entity's events in version order, and the checkpoint holds a prefix of each
    entity's events. Its position is the number of events replayed, as in the full
    replay."""
    document: Document = checkpoint["document"]
    _erase_where_keys_are_gone(app, document)
    document["position"] = checkpoint["events"]
    for position, event in enumerate(in_replay_order(account_id, histories.values()), start=checkpoint["events"] + 1):
        if evolve_document(document, event) is not None:
            document["position"] = position
    return document


def _erase_where_keys_are_gone(app: GamApplication, document: Document) -> None:
    """A checkpoint holds the names as they read when it was taken. A person erased
    since reads as erased, as their sealed events now do in the full replay, even
    before the view has processed the erasure (and erased them from its checkpoints)."""
    people = {UUID(pid): person for pid, person in document["stakeholders"].items()
              if person["personal"] != {"name": ERASED}}  # fmt: skip
    for person_id, key in app.personal_keys.keys(list(people)).items():
        if key is None:
            people[person_id]["personal"] = {"name": ERASED}


def _view_document(app: GamApplication, account_id: UUID, histories: dict[UUID, list[EventFacts]]) -> Document | None:
    """Replay the account's events (``histories``: each entity's from its first, up to
    its version) into a private, in-memory account view."""
    projection = AccountReplayProjection(view=view_recorder_class("memory", "account_view")())
    with batched([projection]):  # one in-memory batch: no per-event copies or commits
        for position, facts in enumerate(in_replay_order(account_id, histories.values()), start=1):
            projection.view.record(projection.change_for(facts, position), Tracking(app.name, position))
    return projection.view.documents([account_key(account_id)]).get(account_key(account_id))


def in_replay_order(account_id: UUID, histories: Iterable[Sequence[EventFacts]]) -> list[EventFacts]:
    """The account's events (``histories``: each entity's, in version order) in the
    order a replay applies them: the account's creation, the other creations, then
    the rest by time.

    Each event changes only its own entity's part of the account view, so entities
    may interleave in any order, but within an entity the order is the version
    order, as the live view (which follows the log) applied them: an event stamped
    earlier than its predecessor (clocks of two servers disagree) sorts with that
    predecessor. And the account comes first: its first plan is started in the same
    command, with the same timestamp, and a plan replayed before its account is lost.
    """
    keyed: list[tuple[tuple[bool, bool, datetime, int], EventFacts]] = []
    for history in histories:
        latest: datetime | None = None
        for event in history:
            latest = event.timestamp if latest is None else max(latest, event.timestamp)
            creation, not_the_account = event.version == 1, event.entity_id != account_id
            keyed.append(((not creation, not_the_account, latest, event.version), event))
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any


def diff(before: Document | None, after: Document | None, path: str = "") -> list[Change]:
    """Every leaf that differs between two account view documents, by path."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for key in sorted(set(before) | set(after)):
            if key == "position":
                continue
            changes += diff(before.get(key), after.get(key), f"{path}/{key}")
        return changes
    return [] if before == after else [Change(path or "/", before, after)]


def describe(change: Change, names: dict[str, str]) -> str:
    """A path with ids replaced by names where the account knows them; whole
    entities that appeared or went away are named, not dumped."""
    readable = "/".join(names.get(part, part) for part in change.path.split("/"))
    if change.before is None and isinstance(change.after, dict):
        return f"{readable}: added"
    if change.after is None and isinstance(change.before, dict):
        return f"{readable}: removed"
    return f"{readable}: {change.before!r} → {change.after!r}"


def names_in(document: Document | None) -> dict[str, str]:
    if document is None:
        return {}
    names = {uid: unit["name"] for uid, unit in document.get("units", {}).items()}
    for plan in document.get("plans", {}).values():
        names |= {oid: o["title"] for oid, o in plan.get("objectives", {}).items()}
    names |= {did: d["title"] for did, d in document.get("deals", {}).items()}
    # a person by their name (``[erased]`` after erasure), as the audit trail names them
    names |= {sid: p["personal"]["name"] for sid, p in document.get("stakeholders", {}).items()}
    return names


ENTITY_COLLECTIONS_IN_PATHS = frozenset({"plans", "stakeholders", "deals"})


def who_changed(change: Change, account_id: UUID, rows: Sequence[AuditRow]) -> list[dict[str, Any]]:
    """The events between the two moments that made this change: those of the entity
    the path is in (an account's own fields, units and team are the account's) that
    changed a field named like the path's last part; all of that entity's events in
    the window when none did (a field the view derives). Each says who, when and why."""
    parts = change.path.split("/")
    entity = parts[2] if len(parts) > 2 and parts[1] in ENTITY_COLLECTIONS_IN_PATHS else str(account_id)
    leaf = parts[-1]
    own = [row for row in rows if str(row.entity_id) == entity]
    matching = [row for row in own if any(str(c["field"]).split(".")[-1] == leaf for c in row.changes)]
    return [
        {"position": row.position, "at": format_time(row.occurred_at), "actor": row.actor, "reason": row.reason,
         "event_type": row.event_type}
        for row in (matching or own)
    ]  # fmt: skip

"""Every aggregate and event type of the model, in one place (for schemas,
projections that must handle them all, and tests that check coverage), and the
pure helpers that read an event as data: its type, its entity's type, its
business fields."""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.account import GlobalAccount
from domain.base import GamAggregate, GamEvent
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder

AGGREGATES: tuple[type[GamAggregate], ...] = (GlobalAccount, AccountPlan, Stakeholder, Deal)


def event_classes() -> list[type[GamEvent]]:
    """The event classes each aggregate declares, in declaration order."""
    found: list[type[GamEvent]] = []
    for aggregate in AGGREGATES:
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, GamEvent) and value not in found:
                found.append(value)
    return found


SELF = "originator_id"
"""The subject of a personal field that is about the event's own entity (the stakeholder)."""

PERSONAL_DATA_FIELDS: dict[type[GamEvent], dict[str, str]] = {
    Stakeholder.Identified: {"personal": SELF},
    Stakeholder.PersonalDataCorrected: {"personal": SELF},
    Stakeholder.InteractionLogged: {"summary": SELF},
    Deal.BuyingInfluenceAttached: {"note": "stakeholder_id"},
    Deal.QualificationAssessed: {"evidence": "stakeholder_id"},
}
"""Event fields that hold a person's data (name, contact details, free text about them),
by event class, each with the field that names its *subject*: the person whose key
seals it and whose erasure takes it. ``SELF`` is the event's own entity (a stakeholder's
events); a deal's buying-influence note and the evidence on its economic buyer or
champion belong to the stakeholder they name (``stakeholder_id``). Evidence that names
no one (``stakeholder_id`` None) is business text, kept in clear. They are kept apart so
they can be sealed at rest, redacted in the audit trail and on Kafka, and erased."""


def personal_fields(event_class: type[GamEvent]) -> Mapping[str, str]:
    """Field → the field naming its subject, for one event class (empty for most)."""
    return PERSONAL_DATA_FIELDS.get(event_class, {})


def subject_in(subject_field: str, fields: Mapping[str, Any], entity_id: Any) -> Any:
    """The subject's id as ``fields`` hold it (``entity_id`` for ``SELF``); None: no one's."""
    return entity_id if subject_field == SELF else fields.get(subject_field)


def personal_subjects(event: GamEvent) -> dict[str, UUID]:
    """The personal fields ``event`` holds a value in, each with its subject's id: what
    is sealed under whose key (an absent note, or evidence about no one, is no one's)."""
    found: dict[str, UUID] = {}
    for field, subject_field in personal_fields(type(event)).items():
        subject = getattr(event, subject_field)
        if subject is not None and getattr(event, field) is not None:
            found[field] = subject
    return found


@dataclass(frozen=True)
class PersonalState:
    """Where an aggregate's snapshot state holds a person's data: the state field sealed
    whole (``record_field`` None), or that field of each record in a list or dict of
    records, sealed under the subject the record's ``subject`` field names."""

    record_field: str | None = None
    subject: str = SELF


PERSONAL_STATE_FIELDS: dict[type[GamAggregate], dict[str, PersonalState]] = {
    Stakeholder: {"personal": PersonalState(), "interactions": PersonalState("summary")},
    Deal: {
        "influences": PersonalState("note", "stakeholder_id"),
        "qualification": PersonalState("evidence", "stakeholder_id"),
    },
}
"""Snapshot state that holds a person's data, by aggregate class, so a snapshot holds
nothing a destroyed key does not take with it, and an erased person's records keep
everything else (a deal's roles and degrees, an interaction's channel)."""


METADATA_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "actor", "correlation_id",
     "causation_id", "reason", "traceparent"}
)  # fmt: skip
"""The fields every event has besides its business fields: the library's and our metadata.
``traceparent`` is not a field of the event classes: the service layer adds it to an
event's stored state when it commits it (the W3C trace context of that commit)."""


@functools.cache
def aggregate_of(event_class: type) -> type[GamAggregate] | None:
    """``Deal.Opened`` → ``Deal``: the aggregate an event class is declared in
    (``None`` for a class declared in none). Remembered per class."""
    outer_name = event_class.__qualname__.split(".")[0]
    outer = getattr(sys.modules[event_class.__module__], outer_name, None)
    return outer if isinstance(outer, type) and issubclass(outer, GamAggregate) else None


def entity_type_of_class(event_class: type) -> str:
    """``Deal.Opened`` → ``deal``; ``unknown`` for an event of no aggregate."""
    aggregate = aggregate_of(event_class)
    return aggregate.entity_type if aggregate else "unknown"


def entity_type_of(event: object) -> str:
    """The type of the entity an event belongs to: ``deal``."""
    return entity_type_of_class(type(event))


def event_type_of(event: object) -> str:
    """Stable, readable event type: ``Deal.StageAdvanced``."""
    return type(event).__qualname__


def payload_of(event: object) -> dict[str, Any]:
    """The event's business fields, without the library's and our metadata."""
    return {k: v for k, v in vars(event).items() if k not in METADATA_FIELDS}

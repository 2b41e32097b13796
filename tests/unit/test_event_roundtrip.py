"""Property: every event type comes back from the application's mapper and from
the real (in-memory) store equal to what went in: same type, equal fields, and
strictly the same data (Decimal text, tuples, datetimes' offsets)."""

from __future__ import annotations

import dataclasses
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings

from domain.base import GamEvent
from domain.catalog import AGGREGATES, event_classes
from domain.values import PersonalData
from services.app import GamApplication
from tests.unit.strategies import (
    all_event_classes,
    assert_same_event,
    declared_event_classes,
    event_field_hints,
    for_event,
)
from tests.unit.type_names import PERSONAL_DATA_FIELDS

EVENT_CLASSES = all_event_classes()
EVENT_STRATEGIES = {cls: for_event(cls) for cls in EVENT_CLASSES}
CREATION_EVENTS = {"GlobalAccount.Created", "AccountPlan.Started", "Stakeholder.Identified", "Deal.Opened"}


def test_every_event_type_is_enumerated_and_has_a_strategy() -> None:
    assert len(EVENT_CLASSES) >= 45
    names = {cls.__qualname__ for cls in EVENT_CLASSES}
    assert names >= CREATION_EVENTS
    # Every class declared in domain/ is covered by the class the store hands back for its topic.
    for declared in declared_event_classes():
        assert any(issubclass(effective, declared) for effective in EVENT_CLASSES), declared
    # Every aggregate has events, and the catalogue (schemas, projections) lists exactly these.
    assert {cls.__qualname__.split(".")[0] for cls in EVENT_CLASSES} == {a.__name__ for a in AGGREGATES}
    assert set(event_classes()) == set(EVENT_CLASSES)
    for cls in EVENT_CLASSES:
        assert cls in EVENT_STRATEGIES
        assert {"actor", "correlation_id", "causation_id", "reason", "timestamp"} <= set(event_field_hints(cls))


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=get_topic)
def test_every_event_type_round_trips_through_the_mapper_and_the_store(
    memory_app: GamApplication, event_class: type[GamEvent]
) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event=EVENT_STRATEGIES[event_class])
    def check(event: GamEvent) -> None:
        stored = memory_app.mapper.to_stored_event(event)
        assert isinstance(stored.state, bytes)
        reloaded = memory_app.mapper.to_domain_event(stored)
        assert_same_event(reloaded, event)
        personal = PERSONAL_DATA_FIELDS.get(event_class.__qualname__, frozenset())
        if personal:  # sealed under the subject's key: no plaintext at rest
            for field in personal:
                value = getattr(event, field)
                if isinstance(value, PersonalData):
                    assert memory_app.mapper.transcoder.encode(value) not in stored.state
        else:  # stable: a reloaded event stores the same bytes
            assert memory_app.mapper.to_stored_event(reloaded) == stored

        # Through the store; a fresh id, since hypothesis repeats ids across examples.
        event = dataclasses.replace(event, originator_id=uuid4())
        memory_app.events.put([event])
        (back,) = memory_app.events.get(event.originator_id)
        assert_same_event(back, event)

    check()

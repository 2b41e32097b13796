"""Property: every event type survives the mapper and a real store unchanged
(unicode, large and oddly scaled Decimals, dates, empty and long strings)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings

from domain.base import GamEvent
from domain.catalog import event_classes
from infra.settings import Settings
from services.app import GamApplication
from tests.event_strategies import for_event

EVENT_CLASSES = event_classes()


def decimals_as_text(value: Any) -> Any:
    """Decimal('1.10') == Decimal('1.1'); comparing text proves nothing was rounded."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [decimals_as_text(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: decimals_as_text(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def assert_same(reloaded: GamEvent, original: GamEvent) -> None:
    assert type(reloaded) is type(original)
    assert reloaded == original
    assert {k: decimals_as_text(v) for k, v in vars(reloaded).items()} == {
        k: decimals_as_text(v) for k, v in vars(original).items()
    }


def test_the_catalogue_lists_every_event_type() -> None:
    """eventsourcing re-creates nested event classes on their aggregate; the
    catalogue holds the effective ones, one for every class declared in domain/."""
    declared = {c for c in GamEvent.__subclasses__() if c.__module__.startswith("domain.")}
    declared |= {s for c in list(declared) for s in c.__subclasses__() if s.__qualname__ != c.__qualname__}
    assert len(EVENT_CLASSES) == 46
    for cls in declared:
        assert any(issubclass(effective, cls) for effective in EVENT_CLASSES), cls.__qualname__


@pytest.fixture(scope="module")
def app() -> GamApplication:
    return GamApplication(Settings(store="memory").eventsourcing_env())


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_every_event_type_round_trips_through_the_mapper_and_the_store(
    app: GamApplication, event_class: type[GamEvent]
) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event=for_event(event_class))
    def check(event: GamEvent) -> None:
        assert_same(app.mapper.to_domain_event(app.mapper.to_stored_event(event)), event)
        event = dataclasses.replace(event, originator_id=uuid4())  # hypothesis repeats ids across examples
        app.events.put([event])
        stored = list(app.events.get(event.originator_id, gt=event.originator_version - 1))
        assert len(stored) == 1
        assert_same(stored[0], event)

    check()

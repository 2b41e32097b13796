"""The replay and round-trip properties on SQLite and PostgreSQL: other
application objects, reading only what the first one stored, rebuild every
aggregate exactly (with and without snapshots) and read every event type back
unchanged."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Repository
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from domain.base import GamAggregate, GamEvent
from domain.errors import InvalidValue
from domain.values import PersonalData
from services import handlers as h
from services.app import GamApplication
from tests.conftest import AppFactory
from tests.support import meta
from tests.unit.strategies import ReplayMachine, all_event_classes, assert_same_event, for_event

SNAPSHOT_INTERVAL = 3
EVENT_CLASSES = all_event_classes()


def test_aggregates_rebuilt_by_other_applications_equal_those_that_decided(app_factory: AppFactory) -> None:
    writer = app_factory(snapshot_interval=SNAPSHOT_INTERVAL)
    with_snapshots = app_factory(snapshot_interval=SNAPSHOT_INTERVAL)
    events_only = app_factory(snapshot_interval=0)

    class OnDurableStore(ReplayMachine):
        """Every run writes a new account into the same store (ids never repeat)."""

        def make_app(self) -> GamApplication:
            return writer

        def rebuilders(self) -> dict[str, Callable[[UUID], Any]]:
            return {
                "second application, latest snapshot and later events": Repository(
                    event_store=with_snapshots.events, snapshot_store=with_snapshots.snapshots
                ).get,
                "third application, events only": Repository(event_store=events_only.events).get,
                "second application's load() (cached, fast-forwarded)": lambda entity_id: with_snapshots.load(
                    GamAggregate, entity_id
                ),
            }

        def snapshot_store(self) -> Any:
            return with_snapshots.snapshots

    run_state_machine_as_test(
        OnDurableStore,
        settings=settings(
            max_examples=8, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )


def test_every_event_type_round_trips_through_the_durable_store(app_factory: AppFactory) -> None:
    writer, reader = app_factory(), app_factory()

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(events=st.tuples(*(for_event(cls) for cls in EVENT_CLASSES)))
    def check(events: tuple[GamEvent, ...]) -> None:
        # One event of every type in one transaction; fresh ids, since hypothesis repeats them.
        stored = [dataclasses.replace(event, originator_id=uuid4()) for event in events]
        writer.events.put(stored)
        for event in stored:
            (back,) = reader.events.get(event.originator_id)
            assert_same_event(back, event)

    check()


@pytest.mark.parametrize("field", ["legal_basis", "actor"])
def test_an_erasure_with_a_nul_character_is_refused_and_stores_nothing(app_factory: AppFactory, field: str) -> None:
    """Found by ReplayMachine on PostgreSQL: a NUL in the legal basis or the actor of
    an erasure was accepted, PersonalDataErased was stored, and then PostgreSQL's key
    table (text columns) refused it, so the key survived. Every domain text now
    refuses NUL before anything is stored, and the person's data stays readable."""
    app = app_factory()
    account, hq, person = uuid4(), uuid4(), uuid4()
    h.create_account(
        app,
        meta(),
        account_id=account,
        hq_unit_id=hq,
        name="Acme",
        industry="Tools",
        hq_country="FR",
        reporting_currency="EUR",
        tier="tier_1",
        governance_model="coordinated",
    )
    personal = PersonalData("Ann Lee", "ann.lee@customer.example")
    h.identify_stakeholder(
        app, meta(), stakeholder_id=person, account_id=account, unit_id=hq, title="CFO", personal=personal
    )
    before = app.recorder.max_notification_id()
    actor = "compliance\x00" if field == "actor" else "compliance"
    basis = "GDPR Art. 17\x00" if field == "legal_basis" else "GDPR Art. 17"
    with pytest.raises(InvalidValue) as refused:
        h.erase_personal_data(app, meta(actor), stakeholder_id=person, legal_basis=basis)
    assert refused.value.field == field
    assert app.recorder.max_notification_id() == before
    identified = next(iter(app_factory().events.get(person)))
    assert identified.personal == personal

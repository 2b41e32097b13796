"""Property: a catch-up reads a stored event as the same facts the follower builds
from the domain event (``infra.event_facts`` straight from the JSON against
``projections.facts.facts_of`` after the mapper), for every event type, with
the strategies' hardest values (long integers, special text, Decimal exponents),
with or without the trace context a traced commit stores beside the metadata;
personal data stays sealed in the facts and opens to the same values."""

from __future__ import annotations

import dataclasses
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import GamEvent
from domain.catalog import personal_subjects
from infra.event_facts import FactsDecoder
from infra.sealed_reads import PersonalOpener
from projections.encoding import may_hold_a_long_integer, to_json_value
from projections.facts import facts_of
from services.app import GamApplication
from services.envelope import message_of
from tests.unit.strategies import all_event_classes, for_event

EVENT_CLASSES = all_event_classes()
EVENT_STRATEGIES = {cls: for_event(cls) for cls in EVENT_CLASSES}
TRACEPARENTS = st.none() | st.builds(
    lambda trace, span: f"00-{trace:032x}-{span:016x}-01",
    st.integers(1, 2**128 - 1),
    st.integers(1, 2**64 - 1),
)


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=get_topic)
def test_a_stored_event_decodes_to_the_facts_of_the_domain_event(
    memory_app: GamApplication, event_class: type[GamEvent]
) -> None:
    decoder = FactsDecoder(memory_app.mapper)

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event=EVENT_STRATEGIES[event_class], traceparent=TRACEPARENTS)
    def check(event: GamEvent, traceparent: str | None) -> None:
        if traceparent is not None:
            object.__setattr__(event, "traceparent", traceparent)  # as services.app stores it
        stored = memory_app.mapper.to_stored_event(event)
        reloaded = memory_app.mapper.to_domain_event(stored)
        expected = facts_of(reloaded)
        assert expected.traceparent == traceparent
        assert "traceparent" not in expected.payload
        decoded = decoder.decode(stored)
        assert decoded is not None
        personal = personal_subjects(event)  # each under its subject's key, not always the event's entity
        assert all(set(decoded.payload[name]) == {"sealed"} for name in personal)  # kept sealed for the views
        opener = PersonalOpener(memory_app.personal_keys, memory_app.mapper.transcoder)
        opened = {
            name: to_json_value(opener.open(str(subject), name, decoded.payload[name]))
            for name, subject in personal.items()
        }
        assert dataclasses.replace(decoded, payload={**decoded.payload, **opened}) == expected == facts_of(event)
        if not may_hold_a_long_integer(stored.state):
            assert decoder.from_json(event_class, stored) == decoded  # not through the mapper

    check()


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=get_topic)
def test_the_relay_publishes_from_the_stored_json_the_message_of_the_domain_event(
    memory_app: GamApplication, event_class: type[GamEvent]
) -> None:
    """The relay reads events straight from their JSON with personal data left sealed;
    the message it builds is the one the event read through the mapper gives, its
    personal data left sealed too."""
    decoder = FactsDecoder(memory_app.mapper, keep_sealed=True)

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event=EVENT_STRATEGIES[event_class])
    def check(event: GamEvent) -> None:
        stored = memory_app.mapper.to_stored_event(event)
        facts = decoder.decode(stored)
        assert facts is not None
        account = uuid4()
        through_mapper = decoder.through_mapper(stored)
        assert through_mapper is not None
        expected = message_of(through_mapper, account_id=account, position=7)
        assert message_of(facts, account_id=account, position=7) == expected

    check()


def test_an_event_of_another_class_has_no_facts(memory_app: GamApplication) -> None:
    decoder = FactsDecoder(memory_app.mapper)
    assert decoder.decode(StoredEvent(uuid4(), 1, get_topic(dataclasses.Field), b"{}")) is None

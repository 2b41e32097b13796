"""The published contract: a committed JSON Schema for every event type, equal to
what the code generates, and every published message valid against it, with no
personal data in clear: each personal field sealed, naming whose key opens it."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.base import GamEvent, event_id_for, event_id_text
from domain.catalog import event_classes, personal_subjects
from domain.deal import Deal
from domain.stakeholder import Stakeholder
from infra.event_facts import FactsDecoder
from infra.personal_keys import key_id_of, open_with
from services.app import GamApplication
from services.demo import seed_account
from services.envelope import cloud_event_type, message_of
from services.event_schemas import SCHEMA_DIR, cloud_event_type_of, generated_schemas


def test_every_event_type_has_a_committed_schema_equal_to_the_generated_one() -> None:
    generated = generated_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert len(generated) == len(event_classes()) == 47
    missing = sorted(set(generated) - set(committed))
    stale = sorted(name for name in generated if name in committed and committed[name] != generated[name])
    extra = sorted(set(committed) - set(generated))
    assert (missing, stale, extra) == ([], [], []), "run `gam schemas` and commit schemas/events/"


@pytest.fixture(scope="module")
def app() -> GamApplication:
    from infra.settings import Settings

    app = GamApplication(Settings(store="memory").eventsourcing_env())
    seed_account(app, 0)
    return app


@pytest.fixture(scope="module")
def published(app: GamApplication) -> list[tuple[GamEvent, dict[str, Any]]]:
    """Every event of a seeded demo account, as the relay publishes it (read from the
    stored JSON, personal data left sealed), beside the event as the domain reads it."""
    decode = FactsDecoder(app.mapper, keep_sealed=True).decode
    out = []
    for notification in app.recorder.select_notifications(start=1, limit=10**6):
        event = app.mapper.to_domain_event(notification)
        facts = decode(notification)
        assert isinstance(event, GamEvent)
        assert facts is not None
        message = message_of(facts, account_id=None, position=notification.id)
        out.append((event, json.loads(message.value)))
    return out


def test_every_published_message_validates_against_its_schema(published: list) -> None:  # type: ignore[type-arg]
    schemas = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMA_DIR.glob("*.json")}
    for event, envelope in published:
        schema = schemas[cloud_event_type(event)]
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(envelope)
        assert envelope["id"] == str(event.event_id)


def test_each_record_is_keyed_by_its_account_and_its_headers_repeat_the_envelope(app: GamApplication) -> None:
    """Consumers route and drop duplicates by the headers without parsing the value."""
    decode = FactsDecoder(app.mapper, keep_sealed=True).decode
    account_id = uuid4()
    for notification in app.recorder.select_notifications(start=1, limit=10**6):
        facts = decode(notification)
        assert facts is not None
        for account, key in ((account_id, str(account_id)), (None, str(facts.entity_id))):
            message = message_of(facts, account_id=account, position=notification.id)
            envelope = json.loads(message.value)
            assert message.key == key.encode()
            assert envelope["gamaccount"] == (None if account is None else str(account))
            assert message.headers == [
                ("content-type", b"application/cloudevents+json; charset=utf-8"),
                ("ce_type", envelope["type"].encode()),
                ("ce_id", str(event_id_for(facts.entity_id, facts.version)).encode()),
                ("schema-version", envelope["dataschema"].rsplit(":v", 1)[1].encode()),
                ("correlation-id", str(facts.correlation_id).encode()),
            ]
            assert envelope["id"] == message.headers[2][1].decode()
            assert envelope["gamcorrelation"] == str(facts.correlation_id)
            assert envelope["subject"] == f"{envelope['type'].split('.')[1]}/{facts.entity_id}"


@given(st.uuids(), st.integers(min_value=1, max_value=2**63 - 1))
def test_the_published_event_id_is_the_events_uuid5(entity_id: UUID, version: int) -> None:
    assert event_id_text(str(entity_id), version) == str(event_id_for(entity_id, version))


def test_a_message_that_breaks_the_schema_is_caught(published: list) -> None:  # type: ignore[type-arg]
    event, envelope = next((e, m) for e, m in published if type(e).__name__ == "StageAdvanced")
    schema = json.loads((SCHEMA_DIR / f"{cloud_event_type_of(type(event))}.json").read_text(encoding="utf-8"))
    broken = {**envelope, "data": {**envelope["data"], "probability": "high"}}  # type: ignore[dict-item]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_personal_data_never_leaves_in_clear(published: list[tuple[GamEvent, dict[str, Any]]]) -> None:
    secrets: set[str] = set()
    for event, _ in published:
        if isinstance(event, Stakeholder.Identified):
            secrets |= {v for v in (event.personal.name, event.personal.email, event.personal.phone) if v}
        if isinstance(event, Stakeholder.InteractionLogged):
            secrets.add(event.summary)
        if isinstance(event, Deal.BuyingInfluenceAttached) and event.note:
            secrets.add(event.note)  # about the stakeholder it names: sealed under their key
    assert len(secrets) > 40
    for event, envelope in published:
        text = json.dumps(envelope, ensure_ascii=False)
        assert not any(secret in text for secret in secrets), type(event).__qualname__


def test_a_sealed_field_names_its_subject_and_key_and_opens_with_that_key(
    app: GamApplication, published: list[tuple[GamEvent, dict[str, Any]]]
) -> None:
    opened = 0
    for event, envelope in published:
        for name, subject_id in personal_subjects(event).items():  # a deal's note: the person it names
            sealed = envelope["data"][name]
            subject = str(subject_id)
            assert (sealed["subject"], sealed["key_id"], sealed["aad"]) == (
                subject,
                key_id_of(subject),
                f"{subject}/{name}",
            )
            key = app.personal_keys.key(subject_id, create=False)
            assert key is not None
            plaintext = open_with(key, sealed["aad"], sealed["sealed"])
            assert app.mapper.transcoder.decode(plaintext) == getattr(event, name)
            opened += 1
    assert opened >= 40

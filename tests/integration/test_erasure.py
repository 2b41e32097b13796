"""Erasure end to end: a person's data is sealed at rest, and after their key is
destroyed every replay, view, export and downstream message shows them erased,
while every other fact stays and the hash chain still verifies."""

from __future__ import annotations

import json
import sqlite3
import uuid

import psycopg
import pytest
from psycopg import sql

from domain.deal import Deal
from domain.errors import SubjectErased
from domain.stakeholder import Stakeholder
from domain.values import ERASED, PersonalData
from infra.hash_chain import verify_chain
from infra.kafka import create_producer
from infra.personal_keys import KEY_TABLE
from infra.settings import Settings
from projections.account_view import account_key
from services import handlers as h
from services.app import GamApplication
from services.audit_export import export_rows, render
from services.bus import Session
from services.demo import demo_id, seed_account
from services.projector import Projector
from services.relay import Relay
from services.time_travel import account_as_of
from tests.conftest import AppFactory
from tests.integration.test_kafka_relay import read_topic
from tests.support import meta

SECRETS = ("Zelda Quixote", "zelda.q@customer.example", "+41 79 555 0199", "Zelda mentioned her divorce")


def raw_bytes(settings: Settings) -> bytes:
    """Everything the events tables hold, as an intruder with the database would read it."""
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            return b"".join(bytes(r[0]) for r in conn.execute("SELECT state FROM stored_events"))
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {0}").format(sql.Identifier(settings.postgres_schema or "public")))
        rows = conn.execute("SELECT state FROM gam_events UNION ALL SELECT state FROM gam_snapshots").fetchall()
        return b"".join(bytes(r[0]) for r in rows)


def key_row(settings: Settings, subject: uuid.UUID) -> tuple[object, ...]:
    """The subject's row in the key store, a file outside the events' database."""
    query = f"SELECT wrapped, erased_by, legal_basis FROM {KEY_TABLE} WHERE subject = ?"
    with sqlite3.connect(settings.key_store_file() or "") as conn:
        return tuple(conn.execute(query, (str(subject),)).fetchone())


@pytest.mark.kafka
def test_erasure_end_to_end(durable_settings: Settings, kafka_bootstrap: str) -> None:
    settings = durable_settings.model_copy(update={"kafka_bootstrap_servers": kafka_bootstrap})
    app = GamApplication(settings.eventsourcing_env())
    seeded = seed_account(app, 0)
    zelda = uuid.uuid4()
    h.identify_stakeholder(app, meta(), stakeholder_id=zelda, account_id=seeded.account_id,
                           unit_id=demo_id(0, "unit", "HQ"), title="Head of Procurement",
                           personal=PersonalData(SECRETS[0], SECRETS[1], SECRETS[2]))  # fmt: skip
    h.change_buying_role(app, meta(), stakeholder_id=zelda, role="decision_maker")
    m = meta()
    h.log_interaction(app, m, stakeholder_id=zelda, interaction_id=uuid.uuid4(), occurred_at=m.at, channel="meeting",
                      summary=SECRETS[3])  # fmt: skip
    h.attach_buying_influence(app, meta(), deal_id=seeded.deal_ids[2], stakeholder_id=zelda, role="economic_buyer",
                              degree="high")  # fmt: skip
    before_erasure = m.at  # the test clock, not the wall clock
    projector = Projector.open(app, settings)
    projector.catch_up()
    topic = f"erasure-{uuid.uuid4().hex[:8]}"
    Relay(app, settings, create_producer(settings), topic=topic).run(until_caught_up=True)

    assert not any(s.encode() in raw_bytes(settings) for s in SECRETS), "personal data must be sealed at rest"
    assert app.load(Stakeholder, zelda).personal.name == SECRETS[0]  # readable while the key exists

    h.erase_personal_data(app, meta(actor="dpo@vendor.example"), stakeholder_id=zelda, legal_basis="GDPR Art. 17 #4711")
    projector.catch_up()
    Relay(app, settings, create_producer(settings), topic=topic).run(until_caught_up=True)

    fresh = GamApplication(settings.model_copy(update={"aggregate_cache_size": 0}).eventsourcing_env())
    person = fresh.load(Stakeholder, zelda)
    assert (person.personal, [i.summary for i in person.interactions]) == (PersonalData(ERASED), [ERASED])
    assert (person.title, person.buying_role, person.erased) == ("Head of Procurement", "decision_maker", True)
    assert any(i.stakeholder_id == zelda for i in fresh.repository.get(seeded.deal_ids[2]).influences.values())
    with pytest.raises(SubjectErased):
        h.correct_personal_data(fresh, meta(), stakeholder_id=zelda, personal=PersonalData("Zelda again"))

    as_of = account_as_of(fresh, projector, seeded.account_id, before_erasure)  # even the past reads as erased
    assert as_of.aggregates[zelda].personal.name == ERASED
    live_view = projector.view("account_view").documents([account_key(seeded.account_id)])
    projector.rebuild()
    rebuilt_view = projector.view("account_view").documents([account_key(seeded.account_id)])
    audit = "".join(render(export_rows(projector, account_id=seeded.account_id, since=None, until=None), "jsonl"))
    messages = [r.value.decode() for r in read_topic(kafka_bootstrap, topic, at_least=1)]
    for text in (json.dumps(live_view), json.dumps(rebuilt_view), audit, json.dumps(as_of.as_json()), *messages):
        assert not any(secret in text for secret in SECRETS)
    person_view = rebuilt_view[account_key(seeded.account_id)]["stakeholders"][str(zelda)]
    assert (person_view["personal"], person_view["buying_role"]) == ({"name": ERASED}, "decision_maker")
    assert "GDPR Art. 17 #4711" in audit
    assert any(json.loads(m)["type"] == "gam.stakeholder.PersonalDataErased" for m in messages)

    assert verify_chain(fresh.recorder).intact
    key, erased_by, legal_basis = key_row(settings, zelda)
    assert (key, erased_by, legal_basis) == (None, "dpo@vendor.example", "GDPR Art. 17 #4711")
    h.erase_personal_data(fresh, meta(), stakeholder_id=zelda, legal_basis="again")  # re-running is safe
    for application in (app, fresh):
        application.close()
    projector.close()


def deal_noted_about_zelda(app: GamApplication) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A seeded account whose deal carries a note about a new person: (account, deal, person)."""
    seeded = seed_account(app, 0)
    zelda = uuid.uuid4()
    hq = demo_id(0, "unit", "HQ")
    h.identify_stakeholder(
        app, meta(), stakeholder_id=zelda, account_id=seeded.account_id, unit_id=hq, title="CFO",
        personal=PersonalData(SECRETS[0]),
    )  # fmt: skip
    h.attach_buying_influence(
        app, meta(), deal_id=seeded.deal_ids[2], stakeholder_id=zelda, role="economic_buyer", degree="high",
        note=SECRETS[3],
    )  # fmt: skip
    return seeded.account_id, seeded.deal_ids[2], zelda


def notes_on(deal: Deal, person: uuid.UUID) -> list[str | None]:
    return [i.note for i in deal.influences.values() if i.stakeholder_id == person]


def test_another_process_that_had_the_deal_cached_reads_its_note_erased(app_factory: AppFactory) -> None:
    """The erasure adds no event to the deal, so fast-forwarding a cached copy (the
    library's way) found nothing new and served the note in clear."""
    first, second = app_factory(), app_factory()
    _, deal, zelda = deal_noted_about_zelda(first)
    assert notes_on(second.load(Deal, deal), zelda) == [SECRETS[3]]  # now cached in the second process

    h.erase_personal_data(first, meta(), stakeholder_id=zelda, legal_basis="GDPR Art. 17")
    assert notes_on(second.load(Deal, deal), zelda) == [ERASED]


def test_a_command_that_commits_past_an_erasure_leaves_no_clear_note_in_its_cache(app_factory: AppFactory) -> None:
    """The bus trusts its cache and learns what others stored only at its commit: an
    erasure among those events makes it forget everything, its own deal too."""
    first, second = app_factory(), app_factory()
    _, deal, zelda = deal_noted_about_zelda(first)
    assert notes_on(Session(second).load(Deal, deal), zelda) == [SECRETS[3]]  # cached, the log known up to here

    h.erase_personal_data(first, meta(), stakeholder_id=zelda, legal_basis="GDPR Art. 17")
    h.change_deal_probability(second, meta(), deal_id=deal, probability=40)  # decided on the cached deal
    session = Session(second, trust_cache=True)  # the next command asks the store nothing first
    assert session.known is not None
    assert notes_on(session.load(Deal, deal), zelda) == [ERASED]

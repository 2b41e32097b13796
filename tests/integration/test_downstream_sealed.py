"""Downstream gets personal data sealed, not redacted: on a real tansu broker and a
SQLite store, a relayed message holds no clear personal data and names whose key
opens each sealed field; a service with the ``personal_data`` scope fetches that key
(every fetch recorded) and opens the fields, a service without it gets 403 and shows
``[sealed]``; after the erasure the key endpoint answers 410 and a consumer that had
the key forgets it at the erasure event."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.commands import ErasePersonalData
from domain.stakeholder import Stakeholder
from infra.kafka import create_producer
from infra.personal_keys import key_id_of
from infra.settings import Settings
from services.api.app import create_app
from services.bootstrap import Runtime
from services.demo import SeededAccount, seed_account
from services.relay import Relay
from services.subscriber import ERASED, SEALED, RecordProcessor, SealedOpener, describe
from tests.api_support import ADMIN, SECRET, token
from tests.integration.test_kafka_relay import read_topic
from tests.support import meta

pytestmark = pytest.mark.kafka
CRM_KEY = "crm-sync-key-" + "x" * 24
REPORTING_KEY = "reporting-key-" + "y" * 24


@dataclass
class Downstream:
    client: TestClient
    runtime: Runtime
    settings: Settings
    seeded: SeededAccount
    names: dict[UUID, str]
    """Each stakeholder's name, as the domain reads it."""
    secrets: set[str]
    """Every name, e-mail address, phone number and interaction summary held."""

    def relay(self) -> list[Any]:
        """Publish what is new; every record on the topic, oldest first per partition."""
        relay = Relay(self.runtime.app, self.settings, create_producer(self.settings))
        try:
            relay.run(until_caught_up=True)
        finally:
            relay.producer.close()
            relay.close()
        records = read_topic(self.settings.kafka_bootstrap_servers, self.settings.kafka_topic, at_least=1)
        return sorted(records, key=lambda r: json.loads(r.value)["gamposition"])

    def api_get(self, key: str) -> Any:
        def get(path: str) -> tuple[int, bytes]:
            answer = self.client.get(path, headers={"X-API-Key": key})
            return answer.status_code, answer.content

        return get


@pytest.fixture
def downstream(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Downstream]:
    keys_file = tmp_path / "api-keys.json"
    keys_file.write_text(
        json.dumps(
            [
                {"sha256": hashlib.sha256(CRM_KEY.encode()).hexdigest(), "sub": "crm-sync", "roles": ["personal_data"]},
                {"sha256": hashlib.sha256(REPORTING_KEY.encode()).hexdigest(), "sub": "reporting", "roles": ["viewer"]},
            ]
        )
    )
    settings = Settings(
        store="sqlite",
        sqlite_path=tmp_path / "gam.db",
        jwt_secret=SECRET,
        api_keys_file=keys_file,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=f"downstream-{uuid.uuid4().hex[:8]}",
    )
    api = create_app(settings)
    runtime: Runtime = api.state.runtime
    seeded = seed_account(runtime.app, 0)
    people = [runtime.app.load(Stakeholder, sid) for sid in seeded.stakeholder_ids]
    names = {p.id: p.personal.name for p in people}
    secrets = {v for p in people for v in (p.personal.name, p.personal.email, p.personal.phone) if v}
    secrets |= {i.summary for p in people for i in p.interactions}
    with TestClient(api) as client:
        yield Downstream(client, runtime, settings, seeded, names, secrets)


def _identified(records: list[Any], subject: UUID) -> Any:
    return next(
        r for r in records if json.loads(r.value)["type"] == "gam.stakeholder.Identified"
        and json.loads(r.value)["subject"] == f"stakeholder/{subject}"
    )  # fmt: skip


def test_a_consumer_with_the_scope_opens_what_others_see_sealed_until_the_erasure(downstream: Downstream) -> None:
    records = downstream.relay()
    person = downstream.seeded.stakeholder_ids[0]
    name = downstream.names[person]

    # No clear personal data on the wire; each sealed field names its subject and key.
    wire = b"".join(r.value for r in records)
    assert len(downstream.secrets) > 20
    assert not [s for s in downstream.secrets if s.encode() in wire]
    sealed = json.loads(_identified(records, person).value)["data"]["personal"]
    assert (sealed["subject"], sealed["key_id"]) == (str(person), key_id_of(person))

    # A service with the personal_data scope opens it, fetching each person's key once.
    shown: list[dict[str, Any]] = []
    crm = SealedOpener(downstream.api_get(CRM_KEY))
    process = RecordProcessor(shown.append, opener=crm)
    assert all(process(r) for r in records)
    opened = next(e for e in shown if e["subject"] == f"stakeholder/{person}")
    assert opened["data"]["personal"]["name"] == name
    assert name in describe(opened)
    summaries = [e["data"]["summary"] for e in shown if e["type"] == "gam.stakeholder.InteractionLogged"]
    assert summaries
    assert all(isinstance(s, str) and s not in (SEALED, ERASED) for s in summaries)
    assert crm.fetches == len({e["subject"] for e in shown if e["type"] == "gam.stakeholder.Identified"})

    # Every fetch is recorded: who, whose key, when.
    fetched = downstream.client.get("/compliance/personal-key-fetches", headers=ADMIN).json()["fetches"]
    assert len(fetched) == crm.fetches
    assert {f["requested_by"] for f in fetched} == {"crm-sync"}
    assert str(person) in {f["stakeholder_id"] for f in fetched}
    report = downstream.client.get(f"/compliance/stakeholders/{person}/subject-access", headers=ADMIN).json()
    assert [f["requested_by"] for f in report["key_fetches"]] == ["crm-sync"], "the person learns who got their key"

    # Without the scope: 403 as problem+json, and the consumer shows [sealed].
    refused = downstream.client.get(f"/compliance/personal-keys/{person}", headers={"X-API-Key": REPORTING_KEY})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    person_token = downstream.client.get(
        f"/compliance/personal-keys/{person}", headers=token("dpo@vendor.example", "compliance")
    )
    assert person_token.status_code == 403, "only a service API key holds the scope"
    reporting = SealedOpener(downstream.api_get(REPORTING_KEY))
    assert reporting.opened(json.loads(_identified(records, person).value))["data"]["personal"] == SEALED
    assert SEALED in describe(reporting.opened(json.loads(_identified(records, person).value)))
    unknown = downstream.client.get(f"/compliance/personal-keys/{uuid.uuid4()}", headers={"X-API-Key": CRM_KEY})
    assert unknown.status_code == 404
    assert len(downstream.client.get("/compliance/personal-key-fetches", headers=ADMIN).json()["fetches"]) == len(
        fetched
    ), "refusals disclose nothing and are not recorded as fetches"

    # The erasure: the consumer that holds the key forgets it when the event passes.
    downstream.runtime.bus.handle(
        ErasePersonalData(stakeholder_id=person, legal_basis="GDPR Art. 17 #12"), meta(actor="dpo@vendor.example")
    )
    gone = downstream.client.get(f"/compliance/personal-keys/{person}", headers={"X-API-Key": CRM_KEY})
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert key_id_of(person) in crm.keys
    after = downstream.relay()
    fetches_before = crm.fetches
    for record in after[len(records) :]:
        process(record)
    assert key_id_of(person) not in crm.keys
    redelivered = crm.opened(json.loads(_identified(after, person).value))
    assert redelivered["data"]["personal"] == ERASED
    assert crm.fetches == fetches_before, "an erasure is final: nothing to ask"

    # A consumer that never had the key hears 410 and shows [erased]; others still open.
    fresh = SealedOpener(downstream.api_get(CRM_KEY))
    assert fresh.opened(json.loads(_identified(after, person).value))["data"]["personal"] == ERASED
    other = downstream.seeded.stakeholder_ids[1]
    assert (
        fresh.opened(json.loads(_identified(after, other).value))["data"]["personal"]["name"] == downstream.names[other]
    )

"""Schema evolution: an account created before ``governance_model`` existed
(GlobalAccount.Created v1, written as the old code wrote it) still loads."""

from __future__ import annotations

import json
from uuid import uuid4

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.account import GlobalAccount
from domain.deal import Deal
from domain.values import GovernanceModel
from infra.event_facts import FactsDecoder
from services import handlers as h
from services.app import GamApplication
from tests.conftest import AppFactory
from tests.support import meta


def _v1_created_state(account_id: object, hq_unit_id: object) -> bytes:
    """The exact JSON a v1 event had: no governance_model, no class_version key."""
    return json.dumps(
        {
            "timestamp": {"_type_": "datetime_iso", "_data_": "2025-01-02T03:04:05+00:00"},
            "originator_topic": get_topic(GlobalAccount),
            "actor": "legacy-import",
            "correlation_id": {"_type_": "uuid_hex", "_data_": uuid4().hex},
            "causation_id": None,
            "reason": "migrated from the CRM",
            "name": "Old Account AG",
            "industry": "Chemicals",
            "hq_country": "CH",
            "reporting_currency": "CHF",
            "tier": "tier_2",
            "hq_unit_id": {"_type_": "uuid_hex", "_data_": hq_unit_id.hex},  # type: ignore[attr-defined]
            "hq_unit_name": "Basel HQ",
        },
        separators=(",", ":"),
    ).encode()


def test_v1_account_created_event_loads_with_the_assumed_governance_model(app_factory: AppFactory) -> None:
    writer = app_factory()
    account_id, hq_unit_id = uuid4(), uuid4()
    writer.recorder.insert_events(
        [
            StoredEvent(
                originator_id=account_id,
                originator_version=1,
                topic=get_topic(GlobalAccount.Created),
                state=_v1_created_state(account_id, hq_unit_id),
            )
        ]
    )

    account = app_factory().load(GlobalAccount, account_id)

    assert GlobalAccount.Created.class_version == 3
    assert account.team == {}  # taken on before accounts had a lead GAM from their first event
    assert account.governance_model == GovernanceModel.COORDINATED
    assert account.name == "Old Account AG"
    assert account.units[hq_unit_id].name == "Basel HQ"
    events = list(writer.events.get(account_id))
    assert events[0].governance_model == "coordinated"
    assert events[0].reason == "migrated from the CRM"


def test_a_v1_account_takes_new_commands_and_new_events_are_written_at_v3(app_factory: AppFactory) -> None:
    app = app_factory()
    account_id, hq_unit_id = uuid4(), uuid4()
    app.recorder.insert_events(
        [StoredEvent(account_id, 1, get_topic(GlobalAccount.Created), _v1_created_state(account_id, hq_unit_id))]
    )
    h.add_unit(
        app,
        meta(),
        account_id=account_id,
        unit_id=uuid4(),
        name="DACH",
        level="region",
        parent_id=hq_unit_id,
        code="DACH",
    )

    assert app_factory().load(GlobalAccount, account_id).version == 2
    fresh_id = uuid4()
    h.create_account(
        app, meta(), account_id=fresh_id, hq_unit_id=uuid4(), name="New AG", industry="Pharma",
        hq_country="CH", reporting_currency="CHF", tier="tier_1", governance_model="central_control",
    )  # fmt: skip
    stored = app.recorder.select_events(fresh_id, limit=1)[0]
    assert json.loads(stored.state)["class_version"] == 3


def test_a_v1_qualification_assessed_names_no_stakeholder_and_its_evidence_stays_business_text(
    memory_app: GamApplication,
) -> None:
    """Evidence assessed before ``stakeholder_id`` existed named no one: it was stored in clear
    and reads as it was, in the domain and in the views' facts."""
    deal_id = uuid4()
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2025-01-02T03:04:05+00:00"},
        "originator_topic": get_topic(Deal),
        "actor": "legacy-import",
        "correlation_id": {"_type_": "uuid_hex", "_data_": uuid4().hex},
        "causation_id": None,
        "reason": None,
        "element": "champion",
        "status": "confirmed",
        "evidence": "Our champion pushes the offer",
    }
    stored = StoredEvent(deal_id, 2, get_topic(Deal.QualificationAssessed), json.dumps(state).encode())
    memory_app.recorder.insert_events([stored])

    (event,) = memory_app.events.get(deal_id)
    assert isinstance(event, Deal.QualificationAssessed)
    assert (event.stakeholder_id, event.evidence) == (None, "Our champion pushes the offer")
    facts = FactsDecoder(memory_app.mapper).decode(stored)
    assert facts is not None
    assert facts.payload["stakeholder_id"] is None
    assert facts.payload["evidence"] == "Our champion pushes the offer"

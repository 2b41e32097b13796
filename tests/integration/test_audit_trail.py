"""The audit trail answers the compliance questions on SQLite and PostgreSQL alike:
by account, entity, actor, event type and time range, a page at a time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from domain.deal import Deal
from infra.settings import Settings
from projections.ports import AuditQuery
from services.app import GamApplication
from services.demo import GAM, SeededAccount, seed_account
from services.projector import Projector
from services.read_models import ReadModels
from tests.views import EVERYTHING


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GamApplication, Projector, SeededAccount, SeededAccount]]:
    """Two seeded accounts and their audit trail, shared by this module's read-only tests."""
    if request.param == "sqlite":
        settings = Settings(store="sqlite", sqlite_path=tmp_path_factory.mktemp("audit") / "gam.db")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        schema = f"audit_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        settings = Settings(
            store="postgres", postgres_dsn=dsn, postgres_schema=schema, postgres_pool_size=2,
            key_store_path=tmp_path_factory.mktemp("audit-keys") / "gam.keys",
        )  # fmt: skip
    app = GamApplication(settings.eventsourcing_env())
    first, second = seed_account(app, 0), seed_account(app, 1)
    projector = Projector.open(app, settings, ["audit_trail"])
    projector.catch_up()
    yield app, projector, first, second
    projector.close()
    app.close()


def _all(projector: Projector, **filters: object) -> list:  # type: ignore[type-arg]
    return projector.view("audit_trail").select_audit(AuditQuery(limit=EVERYTHING, **filters))  # type: ignore[arg-type]


def test_one_row_per_event_with_metadata(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, projector, first, _ = seeded
    rows = _all(projector)
    assert len(rows) == app.recorder.max_notification_id()
    events = list(app.events.get(first.deal_ids[0]))
    deal_rows = _all(projector, entity_id=first.deal_ids[0])
    assert [r.version for r in deal_rows] == [e.originator_version for e in events]
    for row, event in zip(deal_rows, events, strict=True):
        assert (row.actor, row.correlation_id, row.reason) == (event.actor, event.correlation_id, event.reason)
        assert row.occurred_at == event.timestamp
        assert row.entity_type == "deal"
        assert row.account_id == first.account_id


def test_by_account_and_by_actor_and_by_type(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, projector, first, second = seeded
    mine, theirs = _all(projector, account_id=first.account_id), _all(projector, account_id=second.account_id)
    assert len(mine) + len(theirs) == app.recorder.max_notification_id()
    assert len(mine) == first.commands + 1  # onboarding stores two events
    assert {r.actor for r in _all(projector, actor="cro@vendor.example")} == {"cro@vendor.example"}
    approvals = _all(projector, event_type="AccountPlan.Approved")
    assert [r.entity_id for r in approvals] == [first.plan_id, second.plan_id]
    assert all(r.actor == "cro@vendor.example" for r in approvals)
    assert _all(projector, actor=GAM, event_type="AccountPlan.Approved") == []


def test_time_range_is_half_open(seeded: tuple) -> None:  # type: ignore[type-arg]
    _, projector, first, _ = seeded
    rows = _all(projector, account_id=first.account_id)
    start, end = rows[10].occurred_at, rows[20].occurred_at
    window = _all(projector, account_id=first.account_id, since=start, until=end)
    assert [r.position for r in window] == [r.position for r in rows[10:20]]
    assert _all(projector, account_id=first.account_id, until=rows[0].occurred_at) == []
    later = _all(projector, account_id=first.account_id, since=rows[-1].occurred_at + timedelta(microseconds=1))
    assert later == []


def test_cursor_pagination_walks_every_row_once(seeded: tuple) -> None:  # type: ignore[type-arg]
    _, projector, first, _ = seeded
    reads = ReadModels(projector)
    seen: list[int] = []
    cursor = 0
    while True:
        page = reads.audit_trail(AuditQuery(account_id=first.account_id, after_position=cursor, limit=97)).data
        if not page:
            break
        seen.extend(r.position for r in page)
        cursor = page[-1].position
    assert seen == [r.position for r in _all(projector, account_id=first.account_id)]


def test_changes_name_before_and_after(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, projector, first, _ = seeded
    reopened = first.deal_ids[9]
    history = ReadModels(projector).entity_history(reopened).data
    deal = app.load(Deal, reopened)
    won = next(r for r in history if r.event_type == "Deal.Won")
    assert won.changes[0]["field"] == "final_amount"
    assert won.changes[0]["before"] is None
    assert won.changes[0]["after"]["currency"] == deal.amount.currency
    stage_moves = [r for r in history if r.event_type == "Deal.StageAdvanced"]
    assert [(c["before"], c["after"]) for r in stage_moves for c in r.changes if c["field"] == "stage"] == [
        ("prospecting", "qualification"),
        ("qualification", "solution"),
        ("solution", "proposal"),
        ("proposal", "negotiation"),
    ]
    assert history[-1].event_type == "Deal.Reopened"
    assert history[-1].reason == "Customer re-opened the tender"
    assert deal.version == history[-1].version


def test_personal_data_is_recorded_as_changed_but_not_copied(seeded: tuple) -> None:  # type: ignore[type-arg]
    app, projector, first, _ = seeded
    from domain.stakeholder import Stakeholder

    person = app.load(Stakeholder, first.stakeholder_ids[0])
    history = _all(projector, entity_id=person.id)
    identified = history[0]
    assert {"field": "personal", "before": None, "after": "[personal data]"} in identified.changes
    text = repr([r.changes for r in history])
    assert person.personal.name not in text
    assert person.interactions[0].summary not in text

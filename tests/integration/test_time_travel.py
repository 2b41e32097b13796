"""Time travel and diff on SQLite and PostgreSQL, checked against an independent
rebuild from events alone (no snapshots)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.metadata import EventMetadata
from domain.plan import plan_id_for
from infra.sealed_reads import PersonalOpener, open_people
from infra.settings import Settings
from projections.account_view import account_key
from services import handlers as h
from services.app import GamApplication
from services.demo import seed_account
from services.projector import Projector
from services.time_travel import account_as_of, diff
from tests.random_commands import World
from tests.support import meta


def test_an_account_as_it_stood_equals_a_rebuild_from_the_events_up_to_then(durable_settings: Settings) -> None:
    app = GamApplication(durable_settings.eventsourcing_env(), snapshot_interval=7)
    seeded = seed_account(app, 0)
    projector = Projector.open(app, durable_settings)
    projector.catch_up()
    independent = GamApplication(
        durable_settings.model_copy(update={"snapshot_interval": 0, "aggregate_cache_size": 0}).eventsourcing_env()
    )

    moment = datetime(2026, 9, 2, 12, 0, tzinfo=UTC)  # in the middle of the demo's history
    state = account_as_of(app, projector, seeded.account_id, moment)

    assert seeded.plan_id in state.aggregates
    assert seeded.deal_ids[0] not in state.aggregates  # opened later
    for entity_id, aggregate in state.aggregates.items():
        events = [e for e in independent.events.get(entity_id) if e.timestamp <= moment]
        assert aggregate.version == len(events)
        assert aggregate == independent.repository.get(entity_id, version=len(events))
    assert state.document is not None
    assert len(state.document["stakeholders"]) == sum(
        1 for a in state.aggregates.values() if a.entity_type == "stakeholder"
    )

    later = account_as_of(app, projector, seeded.account_id, datetime(2030, 1, 1, tzinfo=UTC))
    live = projector.view("account_view").documents([account_key(seeded.account_id)])[account_key(seeded.account_id)]
    live = open_people(live, PersonalOpener(app.personal_keys, app.mapper.transcoder))  # as a reader sees it
    assert diff(later.document, live) == []  # replaying everything gives the live view
    assert account_as_of(app, projector, seeded.account_id, datetime(2020, 1, 1, tzinfo=UTC)).document is None
    independent.close()
    app.close()


def test_diff_names_what_changed_between_two_moments(durable_settings: Settings) -> None:
    app = GamApplication(durable_settings.eventsourcing_env())
    seeded = seed_account(app, 0)
    deal = seeded.deal_ids[1]
    projector = Projector.open(app, durable_settings)
    projector.catch_up()
    before = datetime.now(UTC) + timedelta(days=1)
    m = meta()
    m = type(m)(actor="gam", at=before + timedelta(hours=1), correlation_id=m.correlation_id)
    h.move_deal_stage(app, m, deal_id=deal, to_stage="solution")
    projector.catch_up()
    changes = diff(
        account_as_of(app, projector, seeded.account_id, before).document,
        account_as_of(app, projector, seeded.account_id, before + timedelta(hours=2)).document,
    )
    assert {(c.path, c.before, c.after) for c in changes} == {
        (f"/deals/{deal}/stage", "qualification", "solution"),
        (f"/deals/{deal}/probability", 20, 40),
    }
    app.close()


def test_the_replay_applies_the_account_first_and_each_entity_in_version_order(durable_settings: Settings) -> None:
    """Two orders the replay once got wrong: an account and its first plan share a
    timestamp (one command), and the plan was replayed first (and lost) whenever the
    audit trail listed it first; and a deal reopened by a server whose clock was
    behind was replayed before it was lost."""
    app = GamApplication(durable_settings.eventsourcing_env())
    projector = Projector.open(app, durable_settings)
    account_id = next(a for a in iter(uuid.uuid4, None) if str(plan_id_for(a, "FY2027")) < str(a))
    world = World(app, account_id=account_id)
    world.start()
    world.run("open_deal", 0, 3, 0)
    deal = world.deals[0]
    lost_at = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    h.lose_deal(app, at(lost_at), deal_id=deal, loss_reason="Price")
    h.reopen_deal(app, at(lost_at - timedelta(minutes=5)), deal_id=deal)  # a clock five minutes behind
    projector.catch_up()

    state = account_as_of(app, projector, account_id, lost_at + timedelta(days=1))
    live = projector.view("account_view").documents([account_key(account_id)])[account_key(account_id)]
    assert state.document is not None
    assert list(state.document["plans"]) == [str(world.plan_id)]
    assert state.document["deals"][str(deal)]["status"] == "open"
    assert diff(state.document, live) == []
    projector.close()
    app.close()


def at(moment: datetime) -> EventMetadata:
    return EventMetadata(actor="owner@vendor.example", at=moment, correlation_id=uuid.uuid4())

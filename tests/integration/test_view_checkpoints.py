"""The account view as of a moment, started from a checkpoint, equals the full
replay from the account's first event (memory, SQLite, PostgreSQL): at random
moments, exactly at checkpoints and just before them, after a rebuild, and for a
person erased after the checkpoint was taken."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.values import ERASED, PersonalData
from infra.settings import Settings
from projections.account_view import (
    CHECKPOINT_PREFIX,
    AccountReplayProjection,
    account_view_projection,
    checkpoints_key,
    covered_key,
    newest_checkpoint,
)
from projections.audit_trail import AuditTrailProjection
from projections.encoding import dumps, parse_time
from projections.ports import AuditQuery
from services import handlers as h
from services.app import GamApplication
from services.projector import Projector, open_view
from services.time_travel import account_as_of
from tests.fresh_store import drop_store, fresh_store
from tests.random_commands import OPERATIONS, World
from tests.support import meta

EXAMPLES = {"memory": 100, "sqlite": 10, "postgres": 10}
MOMENTS = {"memory": 40, "sqlite": 10, "postgres": 10}
"""Moments compared per example: each is two as-ofs, and the SQL stores are slower."""

long_steps = st.lists(
    st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 40), st.integers(0, 40), st.integers(0, 4)),
    min_size=10,
    max_size=60,
)
MICROSECOND = timedelta(microseconds=1)
EVERYTHING = 10**9


def as_of_both_ways(app: GamApplication, projector: Projector, account_id: uuid.UUID, moment: datetime) -> bool:
    """Assert that the as-of from a checkpoint equals the full replay; True if a checkpoint was used."""
    from_checkpoint = account_as_of(app, projector, account_id, moment).document
    full_replay = account_as_of(app, projector, account_id, moment, from_checkpoint=False).document
    assert from_checkpoint == full_replay, f"as of {moment}"
    versions = projector.view("audit_trail").versions_at(account_id, moment)
    return newest_checkpoint(projector.view("account_view"), account_id, moment, versions) is not None


def checkpoint_times(projector: Projector, account_id: uuid.UUID) -> list[datetime]:
    """The latest event time each checkpoint of the account holds, oldest first."""
    taken = projector.view("account_view").documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
    return [parse_time(entry["latest_at"]) for entry in (taken or {"taken": []})["taken"]]


def event_times(projector: Projector, account_id: uuid.UUID) -> list[datetime]:
    rows = projector.view("audit_trail").select_audit(AuditQuery(account_id=account_id, limit=EVERYTHING))
    return sorted({row.occurred_at for row in rows})


def test_as_of_from_a_checkpoint_equals_the_full_replay(any_settings: Settings) -> None:
    """Random histories of two accounts, a checkpoint every 1 to 6 events, caught up at random points;
    moments drawn from: each event's time, just before it and half a second after it,
    each checkpoint's latest event time and just before it. Rebuilt, the view (its
    checkpoints too) is the same."""
    counter = iter(range(10**6))
    kind = any_settings.store

    @settings(max_examples=EXAMPLES[kind], deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps=long_steps, interval=st.integers(1, 6), data=st.data())
    def check(steps: list[tuple[str, int, int, int]], interval: int, data: st.DataObject) -> None:
        store = any_settings if kind == "memory" else fresh_store(any_settings, next(counter))
        store = store.model_copy(update={"view_checkpoint_interval": interval})
        app = GamApplication(store.eventsourcing_env())
        other, world = World(app), World(app)
        other.start()
        world.start()
        projector = Projector.open(app, store)
        for step in steps:
            world.run(*step)
            if step[3] == 0:
                other.run(*step)  # another account's events in between: positions in the log differ from counts
            if step[0] == "catch_up":
                projector.catch_up()
        projector.catch_up()

        checkpoints, times = checkpoint_times(projector, world.account_id), event_times(projector, world.account_id)
        candidates = sorted(
            {
                *times,
                *(t - MICROSECOND for t in times),
                *(t + timedelta(milliseconds=500) for t in times),
                *checkpoints,
                *(t - MICROSECOND for t in checkpoints),
            }
        )
        moments = data.draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=MOMENTS[kind], unique=True))
        for moment in moments:
            as_of_both_ways(app, projector, world.account_id, moment)
        if checkpoints:  # at the newest checkpoint's time, a checkpoint is used
            assert as_of_both_ways(app, projector, world.account_id, checkpoints[-1])

        incremental = projector.view("account_view").documents_with_prefix("")
        projector.rebuild()
        assert projector.view("account_view").documents_with_prefix("") == incremental
        projector.close()
        app.close()
        drop_store(store)

    check()


def test_a_long_history_is_replayed_from_the_checkpoint_before_the_moment(any_settings: Settings) -> None:
    """303 events, a checkpoint every 50: an as-of reads only the events after the
    newest checkpoint before the moment (fewer than 50), and equals the full replay."""
    settings = any_settings.model_copy(update={"view_checkpoint_interval": 50})
    app = GamApplication(settings.eventsourcing_env())
    world = World(app)
    world.start()
    world.run("open_deal", 0, 1, 0)
    for n in range(300):
        h.change_deal_probability(app, meta(), deal_id=world.deals[0], probability=n % 101)
    projector = Projector.open(app, settings)
    projector.catch_up()
    checkpoints = checkpoint_times(projector, world.account_id)
    assert len(checkpoints) == 6  # the account's and its plan's creation, and the deal's 301 events

    read: list[int] = []
    get = app.events.get

    def counting_get(*args: Any, **kwargs: Any) -> list[Any]:
        events = list(get(*args, **kwargs))
        read.append(len(events))
        return events

    app.events.get = counting_get  # type: ignore[method-assign]
    last = event_times(projector, world.account_id)[-1]
    for moment in [*checkpoints, *(t - MICROSECOND for t in checkpoints), last - timedelta(seconds=7), last]:
        read.clear()
        account_as_of(app, projector, world.account_id, moment, with_view=False)
        for_aggregates = sum(read)
        read.clear()
        account_as_of(app, projector, world.account_id, moment)
        assert sum(read) - for_aggregates < 50, f"as of {moment}"
        assert as_of_both_ways(app, projector, world.account_id, moment) == (moment >= checkpoints[0])
    projector.close()
    app.close()


def test_a_checkpoint_ahead_of_the_audit_trail_is_not_used(any_settings: Settings) -> None:
    """The versions at the moment come from the audit trail, which may lag behind the
    account view: a checkpoint holding events the audit trail has not seen is passed over."""
    settings = any_settings.model_copy(update={"view_checkpoint_interval": 5})
    app = GamApplication(settings.eventsourcing_env())
    world = World(app)
    world.start()
    world.run("open_deal", 0, 1, 0)
    projector = Projector.open(app, settings)
    for n in range(40):
        h.change_deal_probability(app, meta(), deal_id=world.deals[0], probability=n)
        if n == 19:
            projector.catch_up()
    Projector(app, {"account_view": projector.projections["account_view"]}).catch_up()  # the audit trail stays behind

    moment = datetime(2100, 1, 1, tzinfo=UTC)
    versions = projector.view("audit_trail").versions_at(world.account_id, moment)
    chosen = newest_checkpoint(projector.view("account_view"), world.account_id, moment, versions)
    assert chosen is not None
    assert chosen["events"] <= sum(versions.values()) == 23 < 43 // 5 * 5
    assert as_of_both_ways(app, projector, world.account_id, moment)
    projector.close()
    app.close()


def test_a_person_erased_after_a_checkpoint_reads_erased_and_leaves_no_trace_in_checkpoints(
    any_settings: Settings,
) -> None:
    """Erasure destroys the key at once; the view erases the name from the account's
    checkpoints when it processes the erasure. In between, an as-of from a
    checkpoint still reads the person as erased, like the full replay."""
    settings = any_settings.model_copy(update={"view_checkpoint_interval": 2})
    app = GamApplication(settings.eventsourcing_env())
    world = World(app)
    world.start()
    person = uuid.uuid4()
    h.identify_stakeholder(app, meta(), stakeholder_id=person, account_id=world.account_id,
                           unit_id=world.units[0][0], title="CFO", personal=PersonalData(SECRET))  # fmt: skip
    for sentiment in (-1, 0, 1, 2):
        h.rate_sentiment(app, meta(), stakeholder_id=person, sentiment=sentiment)
    moment = meta().at
    projector = Projector.open(app, settings)
    projector.catch_up()
    taken = projector.view("account_view").documents_with_prefix(CHECKPOINT_PREFIX)
    assert SECRET not in dumps(taken)  # sealed under the person's key, as in the events
    assert any(set(c["document"]["stakeholders"].get(str(person), {}).get("personal", {})) == {"sealed"}
               for c in taken.values())  # fmt: skip

    h.erase_personal_data(app, meta(actor="dpo@vendor.example"), stakeholder_id=person, legal_basis="GDPR Art. 17")
    assert as_of_both_ways(app, projector, world.account_id, moment)  # the view has not seen the erasure yet
    document = account_as_of(app, projector, world.account_id, moment).document
    assert document is not None
    assert document["stakeholders"][str(person)]["personal"] == {"name": ERASED}

    projector.catch_up()
    checkpoints = projector.view("account_view").documents_with_prefix(CHECKPOINT_PREFIX)
    assert len(checkpoints) >= 3
    assert SECRET not in dumps(checkpoints)
    assert as_of_both_ways(app, projector, world.account_id, moment)
    incremental = projector.view("account_view").documents_with_prefix("")
    projector.rebuild()
    assert projector.view("account_view").documents_with_prefix("") == incremental
    projector.close()
    app.close()


SECRET = "Zelda Quixote"


def test_a_view_built_before_checkpoints_takes_none_for_accounts_it_already_held() -> None:
    """Without the coverage from the account's creation on, a checkpoint could not say
    what it holds: such an account gets none until the view is rebuilt (a new account does)."""
    settings = Settings(store="memory", view_checkpoint_interval=2)
    app = GamApplication(settings.eventsourcing_env())
    old = World(app)
    old.start()
    old.run("open_deal", 0, 1, 0)
    view, audit = open_view(settings, "account_view"), AuditTrailProjection(view=open_view(settings, "audit_trail"))
    Projector(app, {"account_view": AccountReplayProjection(view=view), "audit_trail": audit}).catch_up()
    assert not view.documents_with_prefix(covered_key(""))

    projector = Projector(app, {"account_view": account_view_projection(2)(view=view), "audit_trail": audit})
    for n in range(6):
        h.change_deal_probability(app, meta(), deal_id=old.deals[0], probability=n)
    new = World(app)
    new.start()
    new.run("open_deal", 0, 1, 0)
    projector.catch_up()
    assert not checkpoint_times(projector, old.account_id)
    assert checkpoint_times(projector, new.account_id)
    for world in (old, new):
        assert as_of_both_ways(app, projector, world.account_id, datetime(2100, 1, 1, tzinfo=UTC)) == (world is new)
    projector.rebuild()
    assert checkpoint_times(projector, old.account_id)
    app.close()

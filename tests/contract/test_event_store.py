"""The event store's contract: the recorder of a ``GamApplication`` (and the
application's ``commit`` and ``load`` on top of it), on memory, SQLite and
PostgreSQL, as ``infra/settings.py`` chooses them.

What the application relies on: events are stored and loaded back as stored, in
version order; a version already stored is a conflict that stores nothing of its
batch (so a command changing several aggregates is all or nothing); every stored
event gets a position in the notification log, positions increase in the order
events were stored, and the log is read back in that order, a page at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from domain.account import GlobalAccount
from domain.errors import AlreadyExists, ConcurrencyConflict, NotFound
from domain.plan import AccountPlan
from infra.hash_chain import PostgresChainedRecorder, SQLiteChainedRecorder, verify_chain
from infra.history_reads import event_ranges, latest_snapshots
from infra.settings import Settings
from services.app import GamApplication
from tests.contract.stores import MemoryStore, PostgresStore, SQLiteStore
from tests.support import meta

RACERS = 8


def event(
    originator_id: UUID, version: int, topic: str = "contract:Happened", state: bytes | None = None
) -> StoredEvent:
    body = state if state is not None else f'{{"v":{version},"text":"ünïcödé"}}'.encode()
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=body)


def stored(recorder: ApplicationRecorder, originator_id: UUID, **selection: object) -> list[tuple[object, ...]]:
    return [
        (e.originator_id, e.originator_version, e.topic, e.state)
        for e in recorder.select_events(originator_id, **selection)  # type: ignore[arg-type]
    ]


def as_tuples(events: list[StoredEvent]) -> list[tuple[object, ...]]:
    return [(e.originator_id, e.originator_version, e.topic, e.state) for e in events]


def new_account(account_id: UUID | None = None) -> GlobalAccount:
    return GlobalAccount.create(
        account_id=account_id or uuid4(), hq_unit_id=uuid4(), name="Acme", industry="Chemicals", hq_country="DE",
        reporting_currency="EUR", tier="tier_1", governance_model="coordinated", meta=meta(),
    )  # fmt: skip


def hq_of(account: GlobalAccount) -> UUID:
    return account.tree().hq().unit_id


class EventStoreContract:
    recorder_class: type[ApplicationRecorder]

    @pytest.fixture
    def opened(self) -> Iterator[list[GamApplication]]:
        apps: list[GamApplication] = []
        yield apps
        for app in apps:
            app.close()

    @pytest.fixture
    def app(self, settings: Settings, opened: list[GamApplication]) -> GamApplication:
        app = GamApplication(settings.eventsourcing_env())
        opened.append(app)
        return app

    @pytest.fixture
    def recorder(self, app: GamApplication) -> ApplicationRecorder:
        return app.recorder

    def test_the_application_records_with_this_adapter(self, recorder: ApplicationRecorder) -> None:
        assert type(recorder) is self.recorder_class

    def test_a_new_store_has_no_events_and_no_position(self, recorder: ApplicationRecorder) -> None:
        assert recorder.max_notification_id() is None
        assert recorder.select_notifications(start=None, limit=10) == []
        assert recorder.select_notifications(start=1, limit=10, topics=["contract:Happened"]) == []
        assert recorder.select_events(uuid4()) == []

    def test_events_are_loaded_back_as_stored_in_version_order(self, recorder: ApplicationRecorder) -> None:
        entity, other = uuid4(), uuid4()
        first = [event(entity, 1, "contract:Created"), event(entity, 2, state=b"\x00\xff binary \xc3")]
        recorder.insert_events(first)
        recorder.insert_events([event(other, 1)])
        later = [event(entity, 3), event(entity, 4), event(entity, 5, "contract:Closed")]
        recorder.insert_events(later)
        every = as_tuples(first + later)
        assert stored(recorder, entity) == every
        assert stored(recorder, entity, gt=2) == every[2:]
        assert stored(recorder, entity, lte=2) == every[:2]
        assert stored(recorder, entity, gt=1, lte=3) == every[1:3]
        assert stored(recorder, entity, desc=True, limit=2) == every[:2:-1]  # the newest first
        assert stored(recorder, entity, lte=4, desc=True, limit=1) == [every[3]]
        assert stored(recorder, entity, limit=1) == [every[0]]
        assert stored(recorder, other) == as_tuples([event(other, 1)])

    def test_many_entities_ranges_read_at_once_equal_each_read_alone(self, app: GamApplication) -> None:
        """``infra.history_reads``: what an as-of reads in one query on PostgreSQL is what
        the library's recorder reads entity by entity, for events and for snapshots."""
        first, second, untouched = uuid4(), uuid4(), uuid4()
        for recorder in (app.recorder, app.snapshots.recorder):
            recorder.insert_events([event(first, v) for v in range(1, 8)] + [event(second, v) for v in range(1, 4)])
            ranges = {first: (2, 5), second: (0, 3), untouched: (0, 9)}
            assert event_ranges(recorder, ranges) == {
                first: list(recorder.select_events(first, gt=2, lte=5)),
                second: list(recorder.select_events(second, lte=3)),
                untouched: [],
            }
            assert [e.originator_version for e in event_ranges(recorder, ranges)[first]] == [3, 4, 5]
            newest = latest_snapshots(recorder, {first: 4, second: 9, untouched: 2})
            assert {entity: e.originator_version for entity, e in newest.items()} == {first: 4, second: 3}
            assert newest[first] == event(first, 4)

    def test_a_version_already_stored_is_a_conflict_and_stores_nothing_of_its_batch(
        self, recorder: ApplicationRecorder
    ) -> None:
        entity, bystander = uuid4(), uuid4()
        recorder.insert_events([event(entity, 1), event(entity, 2)])
        before = recorder.max_notification_id()
        for batch in (
            [event(entity, 2, state=b"{}")],
            [event(bystander, 1), event(entity, 3), event(entity, 2, state=b"{}")],
            [event(entity, 3), event(entity, 3, state=b"{}")],  # twice in one batch
        ):
            with pytest.raises(IntegrityError):
                recorder.insert_events(batch)
            assert recorder.max_notification_id() == before
            assert [e.originator_version for e in recorder.select_events(entity)] == [1, 2]
            assert recorder.select_events(bystander) == []
        assert [n.originator_version for n in recorder.select_notifications(start=1, limit=10)] == [1, 2]
        assert verify_chain(recorder).intact  # no link left behind by a refused batch (SQLite, PostgreSQL)
        positions = recorder.insert_events([event(entity, 3)])
        assert positions
        assert positions[0] > (before or 0)

    def test_racing_writers_of_one_version_one_wins(self, settings: Settings, opened: list[GamApplication]) -> None:
        """Each racer has an application of its own, as processes would (the memory
        store is per application, so there they share one)."""
        first = GamApplication(settings.eventsourcing_env())
        opened.append(first)
        if settings.store == "memory":
            racers = [first] * RACERS
        else:
            racers = [GamApplication(settings.eventsourcing_env()) for _ in range(RACERS)]
            opened.extend(racers)
        entity = uuid4()
        first.recorder.insert_events([event(entity, 1)])
        barrier = threading.Barrier(RACERS)
        outcomes: list[str] = []

        def write(app: GamApplication, n: int) -> None:
            barrier.wait()
            try:
                app.recorder.insert_events([event(entity, 2, state=f'{{"racer":{n}}}'.encode())])
                outcomes.append("stored")
            except IntegrityError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=write, args=(app, n)) for n, app in enumerate(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["conflict"] * (RACERS - 1) + ["stored"]
        assert [e.originator_version for e in first.recorder.select_events(entity)] == [1, 2]
        assert len(first.recorder.select_notifications(start=1, limit=100)) == 2

    def test_the_log_lists_every_event_once_in_the_order_stored(self, recorder: ApplicationRecorder) -> None:
        a, b, c = uuid4(), uuid4(), uuid4()
        batches = [
            [event(a, 1, "contract:Created")],
            [event(b, 1, "contract:Created"), event(a, 2)],
            [event(c, 1, "contract:Created")],
            [event(b, 2), event(c, 2), event(a, 3, "contract:Closed")],
        ]
        positions: list[int] = []
        for batch in batches:
            returned = recorder.insert_events(batch)
            assert returned is not None
            assert len(returned) == len(batch)
            positions.extend(returned)
        assert positions == sorted(set(positions))  # increasing, never reused
        assert recorder.max_notification_id() == positions[-1]
        log = recorder.select_notifications(start=1, limit=100)
        assert [n.id for n in log] == positions
        assert as_tuples(list(log)) == as_tuples([e for batch in batches for e in batch])

        paged: list[Notification] = []
        start = 1
        while page := recorder.select_notifications(start=start, limit=2):
            assert len(page) <= 2
            paged.extend(page)
            start = page[-1].id + 1
        assert paged == log
        assert recorder.select_notifications(start=positions[2], limit=100) == log[2:]
        assert recorder.select_notifications(start=positions[2], limit=100, inclusive_of_start=False) == log[3:]
        assert recorder.select_notifications(start=1, limit=100, stop=positions[4]) == log[:5]
        assert recorder.select_notifications(start=positions[-1] + 1, limit=100) == []
        created = recorder.select_notifications(start=1, limit=100, topics=["contract:Created"])
        assert [n.originator_id for n in created] == [a, b, c]
        both = recorder.select_notifications(start=1, limit=100, topics=["contract:Created", "contract:Closed"])
        assert [n.id for n in both] == [n.id for n in log if n.topic != "contract:Happened"]

    def test_a_committed_aggregate_loads_equal_and_its_position_is_in_the_log(self, app: GamApplication) -> None:
        account = new_account()
        created = app.commit(account)
        account.rename_unit(unit_id=hq_of(account), name="Head office", meta=meta())
        renamed = app.commit(account)
        assert (created.version, renamed.version) == (1, 2)
        assert renamed.position > created.position
        assert renamed.position == app.recorder.max_notification_id()
        log = app.recorder.select_notifications(start=created.position, limit=10)
        assert [(n.id, n.originator_id, n.originator_version) for n in log] == [
            (created.position, account.id, 1),
            (renamed.position, account.id, 2),
        ]
        loaded = app.load(GlobalAccount, account.id)
        assert loaded == account
        assert loaded.tree().hq().name == "Head office"
        with pytest.raises(NotFound):
            app.load(GlobalAccount, uuid4())
        with pytest.raises(ConcurrencyConflict):
            app.load(GlobalAccount, account.id, expected_version=1)

    def test_a_stale_aggregate_is_a_conflict_naming_both_versions_and_stores_nothing(self, app: GamApplication) -> None:
        account = new_account()
        app.commit(account)
        mine, theirs = app.load(GlobalAccount, account.id), app.load(GlobalAccount, account.id)
        mine.rename_unit(unit_id=hq_of(account), name="Mine", meta=meta())
        theirs.rename_unit(unit_id=hq_of(account), name="Theirs", meta=meta())
        app.commit(mine)
        before = app.recorder.max_notification_id()
        with pytest.raises(ConcurrencyConflict) as conflict:
            app.commit(theirs)
        assert (conflict.value.entity_id, conflict.value.expected_version, conflict.value.actual_version) == (
            account.id,
            1,
            2,
        )
        assert app.recorder.max_notification_id() == before
        assert app.load(GlobalAccount, account.id).tree().hq().name == "Mine"

    def test_aggregates_committed_together_are_stored_together_or_not_at_all(self, app: GamApplication) -> None:
        account = new_account()
        app.commit(account)
        stale = app.load(GlobalAccount, account.id)
        moved = app.load(GlobalAccount, account.id)
        moved.rename_unit(unit_id=hq_of(account), name="Moved on", meta=meta())
        app.commit(moved)
        plan = AccountPlan.start(account_id=account.id, fiscal_period="FY2027", meta=meta())
        stale.rename_unit(unit_id=hq_of(account), name="Stale", meta=meta())
        before = app.recorder.max_notification_id()
        with pytest.raises(ConcurrencyConflict):
            app.commit(plan, stale)
        assert app.recorder.max_notification_id() == before
        assert not app.exists(plan.id)
        both = app.commit(AccountPlan.start(account_id=account.id, fiscal_period="FY2027", meta=meta()),
                          app.load(GlobalAccount, account.id))  # fmt: skip
        assert both.position == app.recorder.max_notification_id()
        assert app.exists(plan.id)

    def test_creating_an_entity_that_exists_is_refused_and_stores_nothing(self, app: GamApplication) -> None:
        account = new_account()
        app.commit(account)
        before = app.recorder.max_notification_id()
        with pytest.raises(AlreadyExists):
            app.commit(new_account(account.id))
        assert app.recorder.max_notification_id() == before
        assert app.stored_version(account.id) == 1


class DurableEventStoreContract(EventStoreContract):
    """A store in a database outlives the application object: another process reads
    every event and position, and writes after it."""

    def test_another_application_reads_every_event_and_position(
        self, settings: Settings, app: GamApplication, opened: list[GamApplication]
    ) -> None:
        account = new_account()
        result = app.commit(account)
        other = GamApplication(settings.eventsourcing_env())
        opened.append(other)
        assert other.load(GlobalAccount, account.id) == account
        assert other.recorder.max_notification_id() == result.position
        assert other.recorder.select_notifications(start=1, limit=10) == app.recorder.select_notifications(
            start=1, limit=10
        )
        later = other.recorder.insert_events([event(uuid4(), 1)])
        assert later
        assert later[0] > result.position
        assert app.recorder.max_notification_id() == later[0]


class TestMemoryEventStore(MemoryStore, EventStoreContract):
    recorder_class = POPOApplicationRecorder


class TestSQLiteEventStore(SQLiteStore, DurableEventStoreContract):
    recorder_class = SQLiteChainedRecorder


class TestPostgresEventStore(PostgresStore, DurableEventStoreContract):
    recorder_class = PostgresChainedRecorder

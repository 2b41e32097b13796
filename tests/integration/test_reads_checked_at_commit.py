"""The bus trusts its cache and lets the commit check the reads (``infra.read_check``).

Two applications on one durable store stand for two processes: the second has the
account, plan or deal cached when the first changes it. Whatever the second then
decides must rest on the current state, whether it wrote the stale aggregate
(caught by the event's unique version), only read it (the account whose unit tree
a rule reads: caught by the read check), or was refused on it. And when nobody else
writes, the bus asks the store nothing before a command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg.pq import TransactionStatus

from domain import errors
from domain.account import GlobalAccount
from domain.plan import AccountPlan
from domain.values import Target
from infra.hash_chain import COMMIT_FUNCTION, verify_chain
from infra.read_check import ReadCheck, StaleRead
from services import handlers as h
from services.app import GamApplication
from services.bootstrap import bootstrap
from services.bus import Session
from tests.conftest import AppFactory
from tests.support import meta
from tests.unit.builders import DUE, Org, build_org, stored


def org_on_two_apps(app_factory: AppFactory) -> tuple[Org, GamApplication]:
    """An organisation built by one application, and a second one that has it all cached."""
    first = app_factory()
    org = build_org(first)
    second = app_factory()
    with_cache = Session(second)  # refreshes, then caches what it loads
    with_cache.load(GlobalAccount, org.account)
    with_cache.load(AccountPlan, org.plan)
    return org, second


def objective_kwargs(org: Org, unit: UUID) -> dict[str, Any]:
    """A new objective for ``unit``, as the command's fields."""
    return {"plan_id": org.plan, **objective_fields(unit)}


def objective_fields(unit: UUID) -> dict[str, Any]:
    """A new objective for ``unit``, as the plan's decision takes it."""
    return {
        "objective_id": uuid4(),
        "unit_id": unit,
        "title": "Grow digital services",
        "description": "",
        "target": Target("revenue", Decimal(1_000_000), "EUR"),
        "due_date": DUE,
        "linked_objective_id": None,
    }


def test_a_rule_reads_the_unit_tree_as_another_process_left_it(app_factory: AppFactory) -> None:
    """The account is only read (the plan is written): a unit closed elsewhere stops the objective."""
    org, second = org_on_two_apps(app_factory)
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    before = stored(second)
    with pytest.raises(errors.UnitClosed):
        h.set_objective(second, meta(), **objective_kwargs(org, org.houston))
    assert stored(second) == before
    lyon = objective_kwargs(org, org.lyon)
    h.set_objective(second, meta(), **lyon)
    objectives = org.app.load(AccountPlan, org.plan).objectives
    assert lyon["objective_id"] in objectives
    assert not any(o.unit_id == org.houston for o in objectives.values())


def test_a_change_to_an_aggregate_another_process_changed_lands_on_top_of_it(app_factory: AppFactory) -> None:
    org, second = org_on_two_apps(app_factory)
    org.objective(org.hq)
    theirs = org.app.load(AccountPlan, org.plan).version
    result = h.set_objective(second, meta(), **objective_kwargs(org, org.paris))
    assert result.version == theirs + 1
    assert len(org.app.load(AccountPlan, org.plan).objectives) == 2


def test_a_refusal_on_a_stale_cache_is_decided_again_on_the_current_state(app_factory: AppFactory) -> None:
    """The objective exists only in the other process's write; the cached plan does not know it."""
    org, second = org_on_two_apps(app_factory)
    objective = org.objective(org.hq)
    h.cascade_objective(second, meta(), plan_id=org.plan, objective_id=objective, from_unit_id=org.hq,
                        to_unit_ids=(org.emea,))  # fmt: skip
    assert (objective, org.emea) in org.app.load(AccountPlan, org.plan).directives


def test_a_caught_up_process_asks_the_store_nothing_before_a_command(app_factory: AppFactory) -> None:
    org, second = org_on_two_apps(app_factory)
    asked: list[int] = []
    max_id: Callable[[], int | None] = second.recorder.max_notification_id

    def counting() -> int | None:
        asked.append(1)
        return max_id()

    second.recorder.max_notification_id = counting  # type: ignore[method-assign]
    for unit in (org.paris, org.lyon, org.houston):
        h.set_objective(second, meta(), **objective_kwargs(org, unit))
    assert asked == []
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    h.set_objective(second, meta(), **objective_kwargs(org, org.lyon))  # the commit finds the account stale
    assert asked == [1]  # the second try brings the cache up to date, once


def test_a_commit_with_stale_reads_stores_nothing_and_names_what_was_stale(app_factory: AppFactory) -> None:
    org, second = org_on_two_apps(app_factory)
    session = Session(second, trust_cache=True)
    account = session.load(GlobalAccount, org.account)
    plan = session.load(AccountPlan, org.plan)
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    plan.set_objective(tree=account.tree(), meta=meta(), **objective_fields(org.houston))
    before = stored(second)
    with pytest.raises(StaleRead) as raised:
        session.commit()
    assert (raised.value.entity_id, raised.value.read_version) == (org.account, account.version)
    assert raised.value.stored_version == account.version + 1
    assert stored(second) == before
    assert verify_chain(second.recorder).intact


def test_the_hash_chain_holds_across_writers_and_gaps_left_by_refused_commits(app_factory: AppFactory) -> None:
    """Each application remembers the newest link it committed; another writer, or a
    rolled-back insert that used up a position, must make it read the link back."""
    org, second = org_on_two_apps(app_factory)
    for app in (org.app, second, second, org.app, second):
        h.set_objective(app, meta(), **objective_kwargs(org, org.paris))
    session = Session(second, trust_cache=True)
    plan = session.load(AccountPlan, org.plan)
    h.set_objective(org.app, meta(), **objective_kwargs(org, org.lyon))
    plan.set_objective(tree=session.load(GlobalAccount, org.account).tree(), meta=meta(), **objective_fields(org.paris))
    with pytest.raises(errors.ConcurrencyConflict):  # the plan's next version is taken: rolled back
        session.commit()
    for app in (second, org.app, second):
        h.set_objective(app, meta(), **objective_kwargs(org, org.paris))
    verified = verify_chain(second.recorder)
    assert verified.intact, verified
    assert verified.checked == len(second.recorder.select_notifications(start=1, limit=100_000))


def test_the_check_passes_when_nothing_was_stored_in_between() -> None:
    check = ReadCheck(known=7, versions={uuid4(): 3})

    def nothing_to_select(start: int, stop: int) -> list[tuple[int, UUID, int, str]]:
        raise AssertionError("no query when the position before ours is the one known")

    check.verify(8, nothing_to_select, nothing_to_select)
    assert check.between == []


def test_the_check_lists_what_was_stored_in_between_and_refuses_newer_versions_of_reads() -> None:
    read, other = uuid4(), uuid4()
    check = ReadCheck(known=7, versions={read: 3})
    check.verify(10, lambda start, stop: [(8, other.hex, 5, "t"), (9, str(read), 3, "u")], no_first_events)
    assert check.between == [(8, other, "t"), (9, read, "u")]
    with pytest.raises(StaleRead) as raised:
        ReadCheck(known=7, versions={read: 3}).verify(
            10, lambda start, stop: [(8, other, 5, "t"), (9, read, 4, "t")], no_first_events
        )
    assert (raised.value.entity_id, raised.value.read_version, raised.value.stored_version) == (read, 3, 4)


def no_first_events(entities: Sequence[UUID]) -> list[StoredEvent]:
    raise AssertionError("no query when no verdict depends on an entity's first event")


class WatchingPeople:
    """A watch that leaves every identified person to their first event: stale if theirs is ``ours``."""

    def __init__(self, ours: bytes) -> None:
        self.ours = ours

    def __call__(self, entity: UUID, version: int, topic: str) -> bool | None:
        return None if topic == "identified" else False

    def stale_given(self, first: StoredEvent) -> bool:
        return first.state == self.ours


def test_a_watch_that_needs_an_entitys_first_event_gets_it_in_one_query() -> None:
    mine, theirs, gone, other = uuid4(), uuid4(), uuid4(), uuid4()
    between = [(8, mine, 1, "identified"), (9, other, 4, "t"), (10, theirs, 1, "identified")]
    firsts = {mine: StoredEvent(mine, 1, "identified", b"ours"), theirs: StoredEvent(theirs, 1, "identified", b"x")}
    asked: list[list[UUID]] = []

    def select_first(entities: Sequence[UUID]) -> list[StoredEvent]:
        asked.append(list(entities))
        return [firsts[e] for e in entities if e in firsts]

    passing = ReadCheck(known=7, versions={}, watched=WatchingPeople(ours=b"none of these"))
    passing.verify(11, lambda start, stop: between, select_first)
    assert asked == [[mine, theirs]]
    with pytest.raises(StaleRead) as raised:
        ReadCheck(known=7, versions={}, watched=WatchingPeople(ours=b"ours")).verify(
            11, lambda start, stop: between, select_first
        )
    assert (raised.value.entity_id, raised.value.read_version, raised.value.stored_version) == (mine, 0, 1)
    with pytest.raises(StaleRead):  # no first event found: counted as stale, to be safe
        ReadCheck(known=7, versions={}, watched=WatchingPeople(ours=b"none")).verify(
            9, lambda start, stop: [(8, gone, 1, "identified")], select_first
        )


def test_an_error_during_the_commit_is_never_decided_again(app_factory: AppFactory) -> None:
    """The store may have stored the events before failing (an ambiguous commit): deciding
    again on fresh state would apply the command twice, so the error goes to the caller."""
    org, second = org_on_two_apps(app_factory)
    commit = second.commit
    calls: list[int] = []

    def failing(*aggregates: Any, **kwargs: Any) -> Any:
        calls.append(1)
        h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)  # the log moves on meanwhile
        raise ConnectionError("the store went away during COMMIT")

    second.commit = failing  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        h.set_objective(second, meta(), **objective_kwargs(org, org.lyon))
    assert calls == [1]
    second.commit = commit  # type: ignore[method-assign]


@pytest.mark.postgres
def test_a_command_is_stored_checked_linked_and_committed_in_one_statement(
    postgres_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands queue on the events table's lock: the lock, the read check, the insert, the
    links and the commit are one statement, sent whole once its arguments are made (a
    pipeline sends each statement as it goes, so the lock was held while Python made the
    next). After it the transaction is over. A command with free text, whose personal-data
    guard judges the events in between in Python, sends the same statement in a
    transaction, reads its answer, and sends COMMIT after. A stale read is still caught
    (above)."""
    runtime = bootstrap(postgres_settings)
    try:
        app = runtime.app
        org = build_org(app)
        objective = org.objective(org.hq)
        after_sync: list[TransactionStatus] = []
        executed: list[tuple[str, TransactionStatus]] = []
        sync, execute = psycopg.Pipeline.sync, psycopg.Cursor.execute

        def counted_sync(pipeline: psycopg.Pipeline) -> None:
            sync(pipeline)
            after_sync.append(pipeline._conn.info.transaction_status)

        def counted_execute(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            result = execute(cursor, query, *args, **kwargs)
            text = query.as_string(cursor.connection) if hasattr(query, "as_string") else str(query)
            executed.append((text, cursor.connection.info.transaction_status))
            return result

        monkeypatch.setattr(psycopg.Pipeline, "sync", counted_sync)
        monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
        h.cascade_objective(app, meta(), plan_id=org.plan, objective_id=objective, from_unit_id=org.hq,
                            to_unit_ids=(org.emea,))  # fmt: skip
        stores = [(text, status) for text, status in executed if "gam_events" in text or "_new_events" in text]
        assert len(stores) == 1, executed
        text, status = stores[0]
        assert COMMIT_FUNCTION in text
        assert status == TransactionStatus.IDLE  # committed by the statement itself
        assert after_sync == []  # no pipeline
        after_sync.clear()
        executed.clear()
        h.set_objective(app, meta(), **objective_kwargs(org, org.paris))  # a title: free text, watched
        assert after_sync == [TransactionStatus.INTRANS]  # COMMIT follows, once the guard has judged
        stores = [text for text, _ in executed if "gam_events" in text or "_new_events" in text]
        assert len(stores) == 1
        assert COMMIT_FUNCTION in stores[0]  # the lock is taken by the function here too
        monkeypatch.undo()
        assert verify_chain(app.recorder).intact
    finally:
        runtime.close()

"""The wait for the store's write lock, measured apart from the commit: on SQLite and
PostgreSQL, a commit that finds another writer holding the lock reports that wait in
``gam_store_write_lock_wait_seconds``, and an uncontended one reports next to none."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from prometheus_client import REGISTRY

from domain.commands import CreateAccount
from infra.hash_chain import PostgresChainedRecorder
from infra.settings import Settings
from services.bootstrap import bootstrap
from tests.support import meta

HELD_SECONDS = 0.4


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def create_account() -> CreateAccount:
    return CreateAccount(name="Nordwind", industry="Machinery", hq_country="DE", reporting_currency="EUR")


def hold_write_lock(settings: Settings, taken: threading.Event) -> Callable[[], None]:
    """Another writer: takes the store's write lock, keeps it ``HELD_SECONDS``, lets go."""
    if settings.store == "sqlite":
        connection = sqlite3.connect(settings.sqlite_path, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN IMMEDIATE")
        release = connection.rollback
        close = connection.close
    else:
        assert settings.postgres_dsn is not None
        pg = psycopg.connect(settings.postgres_dsn)
        pg.execute(f'LOCK TABLE "{settings.postgres_schema}".gam_events IN EXCLUSIVE MODE')
        release = pg.rollback
        close = pg.close
    taken.set()

    def let_go() -> None:
        time.sleep(HELD_SECONDS)
        release()
        close()

    return let_go


def test_the_wait_for_the_write_lock_is_measured_apart_from_the_commit(durable_settings: Settings) -> None:
    runtime = bootstrap(durable_settings)
    try:
        bus = runtime.bus
        bus.handle(create_account(), meta())  # the tables exist from here on
        count, total = (
            sample("gam_store_write_lock_wait_seconds_count"),
            sample("gam_store_write_lock_wait_seconds_sum"),
        )
        bus.handle(create_account(), meta())
        assert sample("gam_store_write_lock_wait_seconds_count") == count + 1
        assert sample("gam_store_write_lock_wait_seconds_sum") - total < HELD_SECONDS / 2

        taken = threading.Event()
        let_go = hold_write_lock(durable_settings, taken)
        other = threading.Thread(target=let_go)
        other.start()
        total = sample("gam_store_write_lock_wait_seconds_sum")
        commits = sample("gam_commit_duration_seconds_sum")
        bus.handle(create_account(), meta())
        other.join()
        waited = sample("gam_store_write_lock_wait_seconds_sum") - total
        assert HELD_SECONDS * 0.75 <= waited <= sample("gam_commit_duration_seconds_sum") - commits
    finally:
        runtime.close()


@pytest.mark.postgres
def test_a_commit_gives_up_waiting_for_the_lock_after_the_configured_timeout(postgres_settings: Settings) -> None:
    """The commit takes the table lock inside its one statement, with the library's
    ``lock_timeout`` (``POSTGRES_LOCK_TIMEOUT``, in seconds; 0 waits for ever) set for it."""
    runtime = bootstrap(postgres_settings)
    try:
        runtime.bus.handle(create_account(), meta())  # the tables and functions exist from here on
        recorder = runtime.app.recorder
        assert isinstance(recorder, PostgresChainedRecorder)
        taken = threading.Event()
        let_go = hold_write_lock(postgres_settings, taken)
        event = StoredEvent(uuid4(), 1, "gam.test:Nothing", b"{}")
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            conn.execute("SET statement_timeout = '5s'")  # if the lock's timeout were ignored
            started = time.perf_counter()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                cursor.execute(recorder._commit_statement, (1, [event.originator_id], [1], [event.topic],
                                                            [event.state], None, None, None))  # fmt: skip
            waited = time.perf_counter() - started
            conn.execute("RESET statement_timeout")
        let_go()
        assert 0.9 <= waited < 3
    finally:
        runtime.close()

"""Tamper evidence on SQLite and PostgreSQL: editing or deleting a stored event
row directly in the database is found, at its position."""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from domain.errors import ConcurrencyConflict
from infra.hash_chain import verify_chain
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from services.demo import demo_id, seed_account
from tests.support import meta


def _execute(settings: Settings, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL against the store's own database, as an intruder with write access would."""
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            return conn.execute(statement.replace("%s", "?"), params).fetchall()
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {0}").format(sql.Identifier(settings.postgres_schema or "public")))
        cursor = conn.execute(statement, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _id_column(settings: Settings) -> str:
    return "rowid" if settings.store == "sqlite" else "notification_id"


def _events_table(settings: Settings) -> str:
    """The library names the table after the store kind (SQLite) or the application (PostgreSQL)."""
    return "stored_events" if settings.store == "sqlite" else "gam_events"


@pytest.fixture
def seeded(durable_settings: Settings) -> GamApplication:
    app = GamApplication(durable_settings.eventsourcing_env())
    seed_account(app, 0)
    return app


def test_an_untouched_store_verifies(seeded: GamApplication) -> None:
    report = verify_chain(seeded.recorder)
    assert report.intact
    assert report.checked == seeded.recorder.max_notification_id() == 580


def test_an_edited_event_row_is_named_by_position(seeded: GamApplication, durable_settings: Settings) -> None:
    column = _id_column(durable_settings)
    table = _events_table(durable_settings)
    (position, state), *_ = _execute(durable_settings, f"SELECT {column}, state FROM {table} WHERE {column} = 314")
    tampered = bytes(state).replace(b'"actor":"', b'"actor":"mallory-as-')  # type: ignore[arg-type]
    assert tampered != bytes(state)  # type: ignore[arg-type]
    _execute(durable_settings, f"UPDATE {table} SET state = %s WHERE {column} = %s", (tampered, position))

    report = verify_chain(seeded.recorder)
    assert (report.first_broken, report.problem) == (314, "event or link altered")
    assert report.checked == 313


def test_a_deleted_event_row_is_detected(seeded: GamApplication, durable_settings: Settings) -> None:
    column = _id_column(durable_settings)
    _execute(durable_settings, f"DELETE FROM {_events_table(durable_settings)} WHERE {column} = 200")
    report = verify_chain(seeded.recorder)
    assert (report.first_broken, report.problem) == (200, "event missing (its row was deleted)")


def test_deleting_an_event_and_its_link_breaks_the_next_link(
    seeded: GamApplication, durable_settings: Settings
) -> None:
    column = _id_column(durable_settings)
    _execute(durable_settings, f"DELETE FROM {_events_table(durable_settings)} WHERE {column} = 50")
    _execute(durable_settings, "DELETE FROM gam_event_chain WHERE position = 50")
    report = verify_chain(seeded.recorder)
    assert (report.first_broken, report.problem) == (51, "event or link altered")


def test_rolled_back_conflicts_leave_no_false_alarm(seeded: GamApplication, durable_settings: Settings) -> None:
    deal = demo_id(0, "deal", 1)
    stale = seeded.load(type(seeded.repository.get(deal)), deal)
    h.change_deal_probability(seeded, meta(), deal_id=deal, probability=33)
    stale.change_close_date(expected_close=date(2028, 1, 1), meta=meta())
    with pytest.raises(ConcurrencyConflict):
        seeded.commit(stale)
    h.change_deal_amount(seeded, meta(), deal_id=deal, amount=type(stale.amount)(Decimal(1), stale.amount.currency))
    assert verify_chain(seeded.recorder).intact

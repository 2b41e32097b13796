"""A reader that has read the whole log (the views' follower, the relay) is woken by the
NOTIFY of the next commit, and keeps listening across a dropped connection."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from infra.settings import Settings
from services.app import GamApplication
from services.demo import seed_account
from services.projector import commit_notifications

pytestmark = pytest.mark.postgres

NEVER = 120.0
"""A wait this long ends only by a notification in these tests."""


def waiting(notifications: object) -> threading.Thread:
    waiter = threading.Thread(target=notifications.wait, args=(NEVER,), daemon=True)  # type: ignore[attr-defined]
    waiter.start()
    return waiter


def test_a_commit_wakes_a_waiting_reader_and_a_dropped_connection_is_opened_again(
    postgres_settings: Settings,
) -> None:
    app = GamApplication(postgres_settings.eventsourcing_env())
    notifications = commit_notifications(postgres_settings, app)
    assert notifications is not None
    notifications.wait(0.01)  # opens the connection and LISTENs
    waiter = waiting(notifications)
    seed_account(app, 0)
    waiter.join(timeout=NEVER / 2)
    assert not waiter.is_alive()

    with psycopg.connect(postgres_settings.postgres_conninfo(), autocommit=True) as admin:
        listening = "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()"
        (dropped,) = admin.execute(listening).fetchall()
        ended = admin.execute("SELECT pg_terminate_backend(%s)", dropped).fetchall()
        assert ended == [(True,)]
        # finds the connection gone (closes it and sleeps), then opens a new one; until that
        # one LISTENs, a commit notifies nobody (a waiter that opened it after the commit waited on)
        deadline = time.monotonic() + NEVER / 2
        while not [row for row in admin.execute(listening).fetchall() if row != dropped]:
            assert time.monotonic() < deadline, "no new connection LISTENs"
            notifications.wait(0.01)
    waiter = waiting(notifications)
    seed_account(app, 1)
    waiter.join(timeout=NEVER / 2)
    assert not waiter.is_alive()
    notifications.close()
    app.close()


def test_sqlite_has_no_notifications_so_readers_poll(tmp_path: object) -> None:
    settings = Settings(store="sqlite", sqlite_path=f"{tmp_path}/gam.db")
    app = GamApplication(settings.eventsourcing_env())
    assert commit_notifications(settings, app) is None
    app.close()

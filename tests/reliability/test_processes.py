"""gam's processes as an operator runs them together on one PostgreSQL: they fit in
its default connection limit, and ``gam project`` stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.settings import Settings
from services.app import GamApplication
from tests.reliability.conftest import fresh_settings
from tests.reliability.harness import ApiServer, Client, GamProcess, Ledger, Load, gam_env, small_account, wait_for

pytestmark = pytest.mark.postgres

DEFAULT_MAX_CONNECTIONS = 100
"""PostgreSQL's default ``max_connections`` (3 of them reserved for superusers)."""


@pytest.fixture
def own_database(postgres_dsn: str) -> Iterator[str]:
    """A database of its own, so its connections are counted apart from everyone else's."""
    name = f"rel_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(postgres_dsn, dbname=name)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def connections(dsn: str) -> int:
    database = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(make_conninfo(dsn, dbname="postgres")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_api_projector_and_relay_together_stay_well_inside_postgresql_default_connection_limit(
    own_database: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Each view and each follower used to open a pool of ``GAM_POSTGRES_POOL_SIZE`` connections:
    ``gam project`` alone kept 62 open, and the three processes more than PostgreSQL's default limit."""
    settings = fresh_settings(own_database, kafka_bootstrap_servers=kafka_bootstrap)
    app = GamApplication(settings.eventsourcing_env())
    account = small_account(app)
    app.close()
    env = gam_env(settings)
    api = ApiServer(env, tmp_path)
    processes = [
        GamProcess("projector", ["project"], env, tmp_path),
        GamProcess("relay", ["relay"], env, tmp_path),
        api,
    ]
    try:
        for process in processes:
            process.start()
        wait_for(lambda: "following new events" in processes[0].log.read_text(), 60, "the projector to follow")
        wait_for(lambda: "relaying to" in processes[1].log.read_text(), 60, "the relay to start")
        ledger = Ledger()
        targets = [t for group in account.targets().values() for t in group]
        load = Load([Client(api.base_url, ledger, targets, seed=n) for n in range(8)])
        load.start(max_commands=15)
        load.join()
        time.sleep(1.0)
        opened = connections(own_database)
        assert ledger.acknowledged
    finally:
        for process in processes:
            process.stop()
    assert opened <= 60, f"{opened} connections open with the API, the projector and the relay running"
    assert opened < DEFAULT_MAX_CONNECTIONS - 3 - 20  # room for a migration, a psql, a second API


def test_gam_project_on_postgresql_stops_cleanly_on_ctrl_c(settings: Settings, tmp_path: Path) -> None:
    """It used to end with a traceback (``Not already entered subscription context manager``)."""
    app = GamApplication(settings.eventsourcing_env())
    small_account(app)
    app.close()
    projector = GamProcess("projector", ["project"], gam_env(settings), tmp_path)
    projector.start()
    wait_for(lambda: "following new events" in projector.log.read_text(), 60, "the projector to follow")
    time.sleep(0.5)
    assert projector.process is not None
    projector.process.send_signal(signal.SIGINT)
    assert projector.process.wait(timeout=30) == 0, projector.tail()
    assert "stopped" in projector.tail(5)
    assert "Traceback" not in projector.log.read_text()

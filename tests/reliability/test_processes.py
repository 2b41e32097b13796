"""gam's processes as an operator runs them together on one PostgreSQL: they fit in
its default connection limit, they can all start at once on a fresh schema, one of
them at a time writes the views, and ``gam project`` stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infra.idempotency import idempotency_for
from infra.settings import Settings
from infra.views_lease import ViewsLease
from services.app import GamApplication
from services.projector import Projector
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import (
    ApiServer,
    Client,
    GamProcess,
    Ledger,
    Load,
    gam_env,
    small_account,
    views_equal_a_rebuild,
    wait_for,
)

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


def _stacks(pid: int) -> str:
    """How a live process takes signals (its ``Sig*`` masks: SIGINT is bit 2) and every
    thread's stack, where py-spy is installed."""
    status = Path(f"/proc/{pid}/status")
    masks = [line for line in status.read_text().splitlines() if line.startswith("Sig")] if status.exists() else []
    handler, blocked = signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, [])
    ours = f"this test process: SIGINT handler {handler!r}, blocked {blocked}"
    spy = shutil.which("py-spy")
    if spy is None:
        return "\n".join([*masks, ours, "(install py-spy to see where it stood)"])
    dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    return "\n".join([*masks, ours, dump])


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
    try:
        code = projector.process.wait(timeout=30)
    except subprocess.TimeoutExpired:  # what it was doing, rather than only that it hung
        stacks = _stacks(projector.pid)
        projector.process.kill()
        pytest.fail(f"gam project was still running 30 s after Ctrl-C:\n{projector.tail()}\n{stacks}")
    assert code == 0, projector.tail()
    assert "stopped" in projector.tail(5)
    assert "Traceback" not in projector.log.read_text()


def test_one_views_lease_per_schema_freed_with_its_holders_connection(settings: Settings) -> None:
    first, second = ViewsLease(settings), ViewsLease(settings)
    other_schema = ViewsLease(settings.model_copy(update={"postgres_schema": settings.postgres_schema + "_b"}))
    try:
        assert first.writer() is None
        assert first.holds()
        assert not second.holds()
        assert second.writer() == f"gam views lease {os.getpid()}"  # which process writes: for operators
        assert other_schema.holds()  # views of another schema are another lease
        assert first.holds()  # holding it again is asking whether it still holds
        first.release()
        assert second.holds()
        with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as admin:  # the holder's connection dies
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = "
                "(hashtext(%s)::bigint & 4294967295)",
                (second.key,),
            )
        assert not second.holds()  # it notices, and gives the lease up
        assert first.holds()
    finally:
        for lease in (first, second, other_schema):
            lease.release()


def test_api_and_gam_project_together_keep_one_writer_of_the_views_and_both_keep_running(
    settings: Settings, tmp_path: Path
) -> None:
    """Both used to write the views: gam project died with an IntegrityError whenever the
    API's follower got to a batch first (five times in 40 s of load), and a batch could
    apply an event twice to a document its rival had just advanced."""
    app = GamApplication(settings.eventsourcing_env())
    account = small_account(app)
    env = gam_env(settings)
    api = ApiServer(env, tmp_path)
    projector = GamProcess("projector", ["project"], env, tmp_path)
    ledger = Ledger()
    targets = [t for group in account.targets().values() for t in group]
    load = Load([Client(api.base_url, ledger, targets, seed=n) for n in range(6)])
    try:
        api.start()
        projector.start()
        load.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and projector.alive():
            time.sleep(0.2)
        load.finish()
        alive = projector.alive()
        last = app.recorder.max_notification_id() or 0
        views = Projector.open(app, settings)
        wait_for(lambda: min(views.positions().values()) >= last, 60, "the views to catch up")
        views.close()
    finally:
        load.stop.set()
        api.stop()
        projector.stop()
    assert alive, projector.tail()
    assert "Error" not in projector.log.read_text(), projector.tail()
    assert len(ledger.acknowledged) > 50
    assert views_equal_a_rebuild(app, settings)
    app.close()


def test_processes_starting_together_on_a_fresh_schema_all_create_their_tables(postgres_dsn: str) -> None:
    """``docker compose up`` starts the API, the projector and the relay at once; five of
    six used to die creating tables side by side ("tuple concurrently updated",
    "duplicate key value violates unique constraint pg_type_typname_nsp_index")."""
    settings = fresh_settings(postgres_dsn, postgres_pool_size=1)  # six of them share the session's server
    starting = 6
    barrier = threading.Barrier(starting)
    errors: list[str] = []

    def start() -> None:
        try:
            barrier.wait()
            app = GamApplication(settings.eventsourcing_env())
            views = Projector.open(app, settings)
            idempotency = idempotency_for(settings)
            for opened in (idempotency, views, app):
                opened.close()
        except Exception as error:
            errors.append(repr(error)[:200])

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    drop_schema(settings)
    assert errors == []

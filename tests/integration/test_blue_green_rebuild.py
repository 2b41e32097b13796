"""Blue/green rebuilds (``gam rebuild``): a new generation of each view is built beside
the live one while readers and the follower go on with the live one; it takes over in
one transaction once it has caught up, and the follower's next events land in it.

On PostgreSQL, a reader in a thread reads the account view and its audit trail all
along a rebuild and the follower writes new events meanwhile: every answer is the
whole view. On SQLite, ``gam rebuild`` killed with SIGKILL half way leaves the live
generation serving, and running it again resumes the generation it left.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventsourcing.persistence import Tracking
from prometheus_client import REGISTRY

from infra.settings import Settings
from infra.views_lease import RebuildLock, RebuildLockLost, RebuildRunning
from projections.account_view import account_key
from projections.ports import AuditQuery, Generations, ViewChange
from services import projector as projector_module
from services.app import GamApplication
from services.observability.readiness import describe, progress_source
from services.parallel_rebuild import rebuild_group, rebuild_groups, rebuild_in_processes
from services.projector import Projector, rebuild_views
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import Account, gam_env, small_account
from tests.views import dump_views


@pytest.fixture
def pg_settings(postgres_dsn: str) -> Iterator[Settings]:
    chosen = fresh_settings(postgres_dsn, postgres_pool_size=2)
    yield chosen
    drop_schema(chosen)


def _from_scratch(app: GamApplication, settings: Settings) -> dict[str, object]:
    """The views as a rebuild from the first event makes them (a generation of its own)."""
    projector = Projector.open(app, settings)
    try:
        projector.rebuild()
        return dump_views(projector)
    finally:
        projector.close()


@pytest.mark.postgres
def test_readers_see_the_whole_live_view_all_along_a_rebuild_and_the_follower_moves_to_the_new_generation(
    pg_settings: Settings,
) -> None:
    account: Account
    app = GamApplication(pg_settings.eventsourcing_env())
    follower = Projector.open(app, pg_settings)  # gam serve's (or gam project's) follower
    rebuilder = Projector.open(app, pg_settings)  # gam rebuild, with its own connections
    reader = Projector.open(app, pg_settings, ["account_view", "audit_trail"])
    seen: list[tuple[bool, int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            document = reader.view("account_view").documents([account_key(account.account_id)])
            rows = reader.view("audit_trail").select_audit(AuditQuery(account_id=account.account_id, limit=10**6))
            seen.append((bool(document), len(rows)))
            time.sleep(0.005)

    during: list[dict[str, object]] = []

    def mid_rebuild(name: str, done: int, total: int) -> None:
        if during:
            return
        with pytest.raises(RebuildRunning, match="another gam rebuild is running"):  # a second one is refused
            RebuildLock(pg_settings).acquire()
        small_account(app)  # new events while the new generation is built ...
        follower.catch_up()  # ... followed into the live one
        during.append(describe(progress_source(app, follower.positions, None, follower.generations)()))

    try:
        account = small_account(app)
        events = app.recorder.max_notification_id() or 0
        follower.catch_up()
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        rebuild_views(rebuilder, pg_settings, progress=mid_rebuild, batch=3)
        stop.set()
        thread.join(timeout=30)

        assert len(seen) > 3
        assert all(present and rows == events for present, rows in seen), sorted(set(seen))
        views = during[0]["views"]
        assert isinstance(views, dict)
        assert views["account_view"]["generation"] == 1
        assert views["account_view"]["rebuild"]["generation"] > 1
        assert 0 < views["account_view"]["rebuild"]["position"] < events
        generations = {name: g.live for name, g in follower.generations().items()}
        assert set(generations.values()) == {2, 3, 4}  # one number per view, never reused
        assert all(g.building is None for g in follower.generations().values())

        small_account(app)
        follower.catch_up()  # refused in the old generation, then applied in the new one
        last = app.recorder.max_notification_id()
        assert set(follower.positions().values()) == {last}
        assert all(follower.view(n).generation == generations[n] for n in generations)
        assert dump_views(follower) == _from_scratch(app, pg_settings)
    finally:
        stop.set()
        for projector in (reader, rebuilder, follower):
            projector.close()
        app.close()


def _gam(settings: Settings, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=gam_env(settings, COLUMNS="120"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_rebuild_killed_half_way_leaves_the_live_views_serving_and_a_second_run_resumes_it(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", key_store_path=tmp_path / "gam.keys")
    app = GamApplication(settings.eventsourcing_env())
    live = Projector.open(app, settings)
    try:
        for _ in range(3):  # ~40 events: at one a batch, the rebuild takes long enough to be caught half way
            small_account(app)
        events = app.recorder.max_notification_id() or 0
        live.catch_up()
        before = dump_views(live)
        process = _gam(settings, tmp_path, "rebuild", "--batch", "1")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if any(0 < (g.building_position or 0) < events for g in live.generations().values()):
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL, process.stdout.read() if process.stdout else ""

        left = live.generations()
        assert all(g.live == 1 and g.building for g in left.values())
        assert dump_views(live) == before  # the live generation serves on, untouched
        assert set(live.positions().values()) == {events}

        rebuild_views(live, settings)  # gam rebuild again: the lock went with the killed process
        after = live.generations()
        assert {n: (g.live, g.building) for n, g in after.items()} == {n: (g.building, None) for n, g in left.items()}
        assert dump_views(live) == before
        assert set(live.positions().values()) == {events}
    finally:
        live.close()
        app.close()


def test_readyz_shows_each_views_generation_and_a_rebuild_in_progress() -> None:
    app = GamApplication(Settings(store="memory").eventsourcing_env())
    projector = Projector.in_memory(app)
    small_account(app)
    projector.catch_up()
    last = projector.position("strategy_flow")
    source = progress_source(app, projector.positions, None, projector.generations)
    view = projector.view("strategy_flow")
    view.at_generation(view.start_generation()).record(ViewChange(), Tracking(app.name, 3))  # a rebuild under way
    views = describe(source())["views"]
    assert views["account_view"]["generation"] == 1
    assert "rebuild" not in views["account_view"]
    assert views["strategy_flow"]["generation"] == 1
    assert views["strategy_flow"]["rebuild"] == {"generation": 2, "position": 3, "lag": last - 3}
    projector.rebuild(["strategy_flow"])  # resumes it, and it takes over
    views = describe(source())["views"]
    assert views["strategy_flow"]["generation"] == 2
    assert views["strategy_flow"]["position"] == last
    assert "rebuild" not in views["strategy_flow"]
    assert view.generations() == Generations(live=2)


def test_an_index_a_newer_gam_adds_to_the_audit_trail_is_made_on_the_live_generation_at_start(
    tmp_path: Path,
) -> None:
    """A deployment whose live audit rows are a later generation's table gets the index
    the as-of's lookup needs when gam starts, not at the next rebuild."""
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")
    app = GamApplication(settings.eventsourcing_env())
    try:
        account = small_account(app)
        projector = Projector.open(app, settings, ["audit_trail"])
        rebuild_views(projector, settings)
        live = projector.view("audit_trail").generation
        expected = projector.view("audit_trail").versions_at(account.account_id, datetime.now(UTC))
        projector.close()
        assert live > 1
        index = f"gam_audit_{live}_account_entity"
        with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
            db.execute(f"DROP INDEX {index}")

        started = Projector.open(app, settings, ["audit_trail"])
        with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
            assert db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (index,)).fetchone()
        assert started.view("audit_trail").versions_at(account.account_id, datetime.now(UTC)) == expected
        assert len(expected) > 4
        started.close()
    finally:
        app.close()


def test_views_are_shared_out_between_processes_by_what_they_cost() -> None:
    projections = {name: type(projection) for name, projection in Projector.in_memory(
        GamApplication(Settings(store="memory").eventsourcing_env())
    ).projections.items()}  # fmt: skip
    assert rebuild_groups(projections, 2) == [["audit_trail"], ["account_view", "strategy_flow"]]
    assert rebuild_groups(projections, 1) == [["audit_trail", "account_view", "strategy_flow"]]
    assert sorted(rebuild_groups(projections, 8)) == [["account_view"], ["audit_trail"], ["strategy_flow"]]


def test_a_rebuild_shared_out_between_processes_builds_the_same_views_and_each_takes_over(
    durable_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, and on SQLite, where the processes take turns at the file's write lock."""
    monkeypatch.setattr(projector_module, "PARALLEL_REBUILD_EVENTS", 10)  # a small store, shared out all the same
    app = GamApplication(durable_settings.eventsourcing_env())
    follower = Projector.open(app, durable_settings)
    rebuilder = Projector.open(app, durable_settings)
    reported: dict[str, list[tuple[int, int]]] = {}
    try:
        small_account(app)
        small_account(app)
        follower.catch_up()
        before = {name: g.live for name, g in follower.generations().items()}
        events = app.recorder.max_notification_id() or 0

        rebuilding: set[float | None] = set()

        def report(name: str, done: int, total: int) -> None:
            reported.setdefault(name, []).append((done, total))
            rebuilding.add(REGISTRY.get_sample_value("gam_view_rebuilding", {"view": name}))

        processed = rebuild_views(rebuilder, durable_settings, progress=report, processes=2)

        assert processed == 3 * events  # each view's events, counted as one process counts them
        after = follower.generations()
        assert all(after[name].live > before[name] and after[name].building is None for name in before)
        assert multiprocessing.active_children() == []
        assert {name: seen[-1] for name, seen in reported.items()} == dict.fromkeys(before, (events, events))
        assert rebuilding == {1.0}  # this process's metrics say a rebuild runs, all along
        assert {REGISTRY.get_sample_value("gam_view_catch_up_progress_ratio", {"view": n}) for n in before} == {1.0}
        small_account(app)
        follower.catch_up()  # the follower's next write moves it to the new generations
        assert dump_views(follower) == _from_scratch(app, durable_settings)
    finally:
        for projector in (rebuilder, follower):
            projector.close()
        app.close()


@pytest.mark.postgres
def test_a_lost_rebuild_lock_stops_every_rebuilding_process_and_leaves_the_live_views(pg_settings: Settings) -> None:
    app = GamApplication(pg_settings.eventsourcing_env())
    projector = Projector.open(app, pg_settings)
    try:
        small_account(app)
        projector.catch_up()
        before, live = dump_views(projector), {name: g.live for name, g in projector.generations().items()}

        def lock_lost(name: str, done: int, total: int) -> None:
            raise RebuildLockLost("the rebuild lock's connection broke")

        with pytest.raises(RebuildLockLost):
            rebuild_in_processes(projector, pg_settings, list(live), lock_lost, batch=1, processes=2)
        assert multiprocessing.active_children() == []  # stopped, not left building
        assert {name: g.live for name, g in projector.generations().items()} == live
        assert dump_views(projector) == before

        rebuild_in_processes(projector, pg_settings, list(live), batch=1, processes=2)  # resumes, or starts
        assert all(g.live > live[name] for name, g in projector.generations().items())
        assert dump_views(projector) == before
    finally:
        projector.close()
        app.close()


def test_a_rebuilding_process_that_fails_says_why(tmp_path: Path) -> None:
    """What a child sends back when it cannot rebuild (here: its database is not there)."""
    unreachable = Settings(
        store="postgres",
        postgres_dsn=f"postgresql:///gam?host={tmp_path / 'no-such-socket'}",
        key_store_path=tmp_path / "gam.keys",
        postgres_connect_timeout=1,
    )
    receiving, sending = multiprocessing.Pipe(duplex=False)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the driver raises is passed on
        rebuild_group(unreachable, ["audit_trail"], False, 10, sending)
    outcome, why = receiving.recv()
    assert outcome == "failed"
    assert "no-such-socket" in str(why)

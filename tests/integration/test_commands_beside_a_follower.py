"""The commands that bring views up to date (``gam demo``, ``rebuild``, ``replay``,
``diff``, ``audit export``, ``audit verify --account``) run beside a live follower
on PostgreSQL, as an operator runs them with ``gam serve`` or ``gam project`` up.

Each of them used to write the views without holding the views lease, racing the
follower: ``gam demo`` died on a deadlock, a duplicate audit-trail key or a tracking
conflict and could leave an event counted twice; ``gam rebuild`` died on a tracking
conflict and left the views empty while the tracking said they were caught up.
Now only the lease holder writes the views: the others wait for it to reach the
position they need, or take the lease when nobody holds it; a rebuild writes only a
new generation of each view, beside the live one the follower keeps writing, and it
takes over in one transaction (``test_blue_green_rebuild.py``).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from infra.settings import Settings
from infra.views_lease import WANTED_CHECK_SECONDS, ViewsLease
from projections.account_view import account_key
from projections.ports import AuditQuery
from services.api import app as api_app
from services.app import GamApplication
from services.bootstrap import bootstrap
from services.demo import demo_id, seed_account
from services.projector import Projector
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import ApiServer, GamProcess, gam_env, small_account, views_equal_a_rebuild, wait_for
from tests.views import dump_views

pytestmark = pytest.mark.postgres

DEMO_ACCOUNT = demo_id(0, "account")
DEMO_EVENTS = 580


@pytest.fixture
def settings(postgres_dsn: str) -> Iterator[Settings]:
    chosen = fresh_settings(postgres_dsn, postgres_pool_size=2)
    yield chosen
    drop_schema(chosen)


@pytest.fixture
def app(settings: Settings) -> Iterator[GamApplication]:
    application = GamApplication(settings.eventsourcing_env())
    yield application
    application.close()


def gam(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One ``gam`` command, run to its end as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=gam_env(settings, COLUMNS="120"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def follower(kind: str, settings: Settings, workdir: Path) -> GamProcess:
    env = gam_env(settings)
    return ApiServer(env, workdir) if kind == "serve" else GamProcess("projector", ["project"], env, workdir)


@contextmanager
def live(process: GamProcess, settings: Settings) -> Iterator[GamProcess]:
    """The follower running and holding the views lease; stopped afterwards, and it must
    have reported no error while it ran."""
    lease = ViewsLease(settings)
    try:
        process.start()
        wait_for(lambda: lease.writer() is not None, 60, "the follower to take the views lease")
        yield process
    finally:
        process.stop()
    log = process.log.read_text()
    assert "Error" not in log, process.tail()
    assert "Traceback" not in log, process.tail()


@contextmanager
def writing(app: GamApplication) -> Iterator[None]:
    """Events keep arriving (a small account onboarded about five times a second) while
    the block runs: enough that the command meets a moving log, not so many that the
    follower's catching up is what the test waits for."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            while not stop.is_set():
                small_account(app, deals=2, people=2, objectives=1)
                stop.wait(0.2)
        except BaseException as error:  # reported by the test
            failures.append(error)

    thread = threading.Thread(target=run, name="writer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not failures, failures


def caught_up(app: GamApplication, settings: Settings) -> None:
    """Wait until the follower has brought every view to the end of the log."""
    views = Projector.open(app, settings)
    try:
        last = app.recorder.max_notification_id() or 0
        wait_for(lambda: min(views.positions().values()) >= last, 60, "the follower to catch up")
    finally:
        views.close()


def succeeded(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stdout


def test_views_lease_waiters_are_seen_by_the_holder(settings: Settings) -> None:
    holder, rebuilder = ViewsLease(settings), ViewsLease(settings)
    try:
        assert holder.holds()
        assert not holder.wanted()
        waiting = threading.Thread(target=rebuilder.acquire, kwargs={"timeout": 30})
        waiting.start()
        wait_for(holder.wanted, 10, "the holder to see the waiter")
        holder.release()
        waiting.join(timeout=30)
        assert rebuilder.holds()
        assert not holder.holds()  # released to a waiter, it cannot take the lease back
    finally:
        holder.release()
        rebuilder.release()


def test_a_holder_asks_whether_the_lease_is_wanted_at_most_every_tenth_of_a_second(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower asks between catch-ups, every few milliseconds under load: one look at
    ``pg_locks`` per :data:`WANTED_CHECK_SECONDS`, not one per catch-up."""
    holder = ViewsLease(settings)
    try:
        assert holder.holds()
        connection = holder._connection
        assert connection is not None
        asked: list[object] = []
        execute = connection.execute

        def counted(query: Any, *args: Any, **kwargs: Any) -> Any:
            asked.append(query)
            return execute(query, *args, **kwargs)

        monkeypatch.setattr(connection, "execute", counted)
        started = time.monotonic()
        answers = [holder.wanted() for _ in range(50)]
        if time.monotonic() - started < WANTED_CHECK_SECONDS:
            assert len(asked) == 1
        assert answers == [False] * 50
        time.sleep(WANTED_CHECK_SECONDS)
        holder.wanted()
        assert 2 <= len(asked) <= 3
    finally:
        holder.release()


def test_an_idle_api_follower_is_woken_by_the_commit_not_by_its_poll(
    settings: Settings, app: GamApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gam serve``'s follower waits for a commit's NOTIFY, as ``gam project`` does: with its
    poll and its longest wait both set to a minute, a command still reaches the views."""
    monkeypatch.setattr(api_app, "FOLLOW_SECONDS", 60)
    monkeypatch.setattr(api_app, "WAKE_SECONDS", 60)
    runtime = bootstrap(settings).open("projector", "lease")
    views = api_app.ViewsFollower(runtime)
    views.start()
    try:
        time.sleep(0.5)  # it found nothing and waits (listening since its first wait)
        small_account(app, deals=1, people=1, objectives=1)
        position = app.recorder.max_notification_id() or 0
        assert position > 0
        projector = runtime.projector
        wait_for(lambda: min(projector.positions().values()) >= position, 20, "the views to reach the commit")
    finally:
        views.stop()
        runtime.close()


def test_demo_beside_a_live_follower(settings: Settings, app: GamApplication, tmp_path: Path) -> None:
    """Beside ``gam serve``'s follower; the rebuild below runs beside ``gam project``'s
    (both followers take the same lease, and running each test beside both doubled
    the file's time, already the suite's second longest)."""
    with live(follower("serve", settings, tmp_path), settings):
        out = succeeded(gam(settings, tmp_path, "demo"))
        caught_up(app, settings)
    assert "seeded demo account #0" in out
    assert f"Audit trail: {DEMO_EVENTS} events for the account" in out
    assert f"position {DEMO_EVENTS}" in out
    assert views_equal_a_rebuild(app, settings)


def test_rebuild_beside_a_live_follower_never_shows_lost_views(
    settings: Settings, app: GamApplication, tmp_path: Path
) -> None:
    seed_account(app, 0)
    seen: list[tuple[bool, int]] = []
    stop = threading.Event()

    def read() -> None:
        """What a reader of the views sees all along the rebuild: the account view and its audit trail."""
        views = Projector.open(app, settings, ["account_view", "audit_trail"])
        try:
            while not stop.is_set():
                document = views.view("account_view").documents([account_key(DEMO_ACCOUNT)])
                rows = views.view("audit_trail").select_audit(AuditQuery(account_id=DEMO_ACCOUNT, limit=10**6))
                seen.append((bool(document), len(rows)))
                time.sleep(0.02)
        finally:
            views.close()

    with live(follower("project", settings, tmp_path), settings):
        caught_up(app, settings)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        with writing(app):
            out = succeeded(gam(settings, tmp_path, "rebuild"))
        caught_up(app, settings)
        stop.set()
        reader.join(timeout=30)
    assert "rebuilt account_view, audit_trail, strategy_flow" in out
    assert seen
    assert all(present and rows == DEMO_EVENTS for present, rows in seen), sorted(set(seen))
    assert views_equal_a_rebuild(app, settings)


def _replay(account: str, _: Path) -> tuple[list[str], Callable[[str], None]]:
    def check(out: str) -> None:
        assert "as of 2027-01-01" in out
        assert "Account view: Nordwind Industrial Group" in out

    return ["replay", "--account", account, "--as-of", "2027-01-01T00:00:00"], check


def _diff(account: str, _: Path) -> tuple[list[str], Callable[[str], None]]:
    def check(out: str) -> None:
        assert out.rstrip().splitlines()[-1].endswith(" changes")
        assert int(out.rstrip().splitlines()[-1].split()[0]) > 0

    return ["diff", "--account", account, "--from", "2026-09-02T00:00:00", "--to", "2026-09-03T12:00:00"], check


def _export(account: str, tmp_path: Path) -> tuple[list[str], Callable[[str], None]]:
    output = tmp_path / "export.jsonl"

    def check(_: str) -> None:
        assert len(output.read_text().splitlines()) == DEMO_EVENTS

    return ["audit", "export", "--account", account, "--output", str(output)], check


def test_reading_commands_beside_a_live_follower(settings: Settings, app: GamApplication, tmp_path: Path) -> None:
    """``replay``, ``diff`` and ``audit export`` in turn, beside one follower (a
    follower and a seeded store each would triple the test's time for nothing)."""
    seed_account(app, 0)
    commands = [command(str(DEMO_ACCOUNT), tmp_path) for command in (_replay, _diff, _export)]
    with live(follower("project", settings, tmp_path), settings):
        with writing(app):
            outs = [succeeded(gam(settings, tmp_path, *args)) for args, _ in commands]
        caught_up(app, settings)
    for (_, check), out in zip(commands, outs, strict=True):
        check(out)
    assert views_equal_a_rebuild(app, settings)


def test_audit_verify_naming_the_accounts_first_affected_event_beside_a_live_follower(
    settings: Settings, app: GamApplication, tmp_path: Path
) -> None:
    seed_account(app, 0)
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:  # an intruder edits a link
        conn.execute(
            sql.SQL("UPDATE {0}.gam_event_chain SET link = %s WHERE position = 100").format(
                sql.Identifier(settings.postgres_schema or "public")
            ),
            (b"\0" * 32,),
        )
    with live(follower("project", settings, tmp_path), settings):
        with writing(app):
            out = succeeded(gam(settings, tmp_path, "audit", "verify", "--account", str(DEMO_ACCOUNT)), code=1)
        caught_up(app, settings)
    assert "chain broken at position 100" in out
    assert f"first affected event of account {DEMO_ACCOUNT}: position 100" in out
    assert views_equal_a_rebuild(app, settings)


def test_a_rebuild_that_fails_half_way_leaves_the_views_and_their_positions_as_they_were(
    settings: Settings, app: GamApplication
) -> None:
    seed_account(app, 0)
    projector = Projector.open(app, settings)
    try:
        projector.catch_up()
        before, positions = dump_views(projector), projector.positions()

        def crash(name: str, done: int, total: int) -> None:
            msg = f"killed at {name} {done}/{total}"
            raise RuntimeError(msg)

        with pytest.raises(RuntimeError, match="killed at"):
            projector.rebuild(progress=crash)  # after the first batch has been written
        assert projector.positions() == positions == dict.fromkeys(positions, DEMO_EVENTS)
        assert dump_views(projector) == before
    finally:
        projector.close()

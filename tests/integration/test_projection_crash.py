"""A projection process killed with SIGKILL mid-stream and restarted ends with
views equal to a rebuild: no event skipped, none applied twice (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from infra.settings import Settings
from projections.ports import AuditQuery
from services.app import GamApplication
from services.demo import seed_account
from services.projector import Projector
from tests.views import EVERYTHING, dump_views

ROOT = Path(__file__).resolve().parents[2]


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAM_")}
    env.update({"GAM_STORE": settings.store, "PYTHONPATH": str(ROOT)})
    if settings.store == "sqlite":
        env["GAM_SQLITE_PATH"] = str(settings.sqlite_path)
    else:
        env["GAM_POSTGRES_DSN"] = settings.postgres_dsn or ""
        env["GAM_POSTGRES_SCHEMA"] = settings.postgres_schema or ""
        env["GAM_KEY_STORE_PATH"] = str(settings.key_store_file())
    return env


def _wait_until(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_projector_killed_mid_stream_resumes_to_views_equal_to_a_rebuild(
    durable_settings: Settings, tmp_path: Path
) -> None:
    app = GamApplication(durable_settings.eventsourcing_env())
    seed_account(app, 0)  # some history before the projector starts
    observer = Projector.open(app, durable_settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "project", "--seconds", "300"],
        cwd=tmp_path,
        env=_env(durable_settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    writer = threading.Thread(target=lambda: [seed_account(app, i) for i in (1, 2)])
    try:
        _wait_until(lambda: observer.position("audit_trail") >= 580)  # caught up, now following
        writer.start()  # new events while the projector follows them
        _wait_until(lambda: observer.position("account_view") > 700 or process.poll() is not None)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        writer.join()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    killed_at = observer.positions()
    assert min(killed_at.values()) < (app.recorder.max_notification_id() or 0), "the kill must land mid-stream"

    seed_account(app, 3)  # more history while it was down
    resumed = Projector.open(app, durable_settings)
    resumed.catch_up()
    last = app.recorder.max_notification_id()
    assert set(resumed.positions().values()) == {last}

    audit = resumed.view("audit_trail").select_audit(AuditQuery(limit=EVERYTHING))
    assert [row.position for row in audit] == list(range(1, (last or 0) + 1))  # each event once, none skipped
    incremental = dump_views(resumed)

    resumed.rebuild()
    assert dump_views(resumed) == incremental
    resumed.close()
    observer.close()
    app.close()

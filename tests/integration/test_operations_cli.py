"""gam's processes as an operator starts them: failing to start says why in one
line and exits; ``gam project`` shows its progress on a metrics port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.kafka_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://gam:hunter2-password@127.0.0.1:1/gam"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAM_")}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "120", **extra}


def _gam(*args: str, cwd: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env=_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


def test_an_unreachable_database_at_start_is_one_line_naming_it_and_a_quick_exit(tmp_path: Path) -> None:
    result, seconds = _gam("serve", cwd=tmp_path, GAM_STORE="postgres", GAM_POSTGRES_DSN=UNREACHABLE)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "host 127.0.0.1 port 1" in lines[0]
    assert "Connection refused" in lines[0]
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert seconds < 30  # the interpreter's start on a busy machine; it used to wait 30 s on the pool alone


def test_start_up_failures_are_json_lines_too_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    socket_dsn = "postgresql://gam@/gam?host=/nonexistent/socket-dir"
    result, _ = _gam("project", cwd=tmp_path, GAM_STORE="postgres", GAM_POSTGRES_DSN=socket_dsn, GAM_LOG_FORMAT="json")
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stderr.strip().splitlines()]  # JSON lines only
    (logged,) = [record for record in records if record["level"] == "critical"]
    assert logged["process"] == "project"
    assert "socket directory /nonexistent/socket-dir" in logged["message"]
    debug, _ = _gam("store", "--debug", cwd=tmp_path, GAM_STORE="postgres", GAM_POSTGRES_DSN=socket_dsn)
    assert debug.returncode != 0
    assert "OperationalError" in debug.stderr
    assert len(debug.stderr.splitlines()) > 1


def test_a_short_jwt_secret_is_refused_at_start(tmp_path: Path) -> None:
    result, _ = _gam("serve", cwd=tmp_path, GAM_JWT_SECRET="abc")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "GAM_JWT_SECRET" in line
    assert "at least 32 bytes" in line


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_gam_project_serves_its_metrics_and_readiness_on_a_port(tmp_path: Path) -> None:
    seeded, _ = _gam("demo", cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    project = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "project", "--seconds", "60"],
        cwd=tmp_path,
        env=_env(GAM_METRICS_PORT=str(port), GAM_LOG_FORMAT="json"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                assert time.monotonic() < deadline, "the metrics port never opened"
                time.sleep(0.2)
        assert status == 200, body
        ready = json.loads(body)
        assert ready["log_position"] == 580
        assert {view["lag"] for view in ready["views"].values()} == {0}
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        assert samples[("gam_log_position", ())] == 580
        assert samples[("gam_view_position", (("view", "audit_trail"),))] == 580
        assert samples[("gam_view_lag_events", (("view", "account_view"),))] == 0
    finally:
        project.terminate()
        project.wait(timeout=30)
    for line in (project.stderr.read() if project.stderr else "").splitlines():
        json.loads(line)  # every line the process logged is one JSON object

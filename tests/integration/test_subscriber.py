"""``gam subscribe``, the reference downstream consumer, against a real broker:
a consumer group that prints events, commits what it processed, and resumes there."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from infra.kafka import create_producer
from infra.settings import Settings
from services.app import GamApplication
from services.demo import demo_id, seed_account
from services.relay import Relay
from services.subscriber import Deduplicator

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[2]


def _subscribe(bootstrap: str, topic: str, *args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAM_")}
    env.update(PYTHONPATH=str(ROOT), GAM_KAFKA_BOOTSTRAP_SERVERS=bootstrap, GAM_KAFKA_MAX_POLL_INTERVAL_MS="3000")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "subscribe", "--topic", topic, "--seconds", "40", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("#")]


def test_reference_consumer_reads_commits_and_resumes(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"subscribe-{uuid.uuid4().hex[:8]}"
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", kafka_bootstrap_servers=kafka_bootstrap)
    app = GamApplication(settings.eventsourcing_env())
    seed_account(app, 0)
    seed_account(app, 1)
    Relay(app, settings, create_producer(settings), topic=topic).run(until_caught_up=True)
    account = str(demo_id(1, "account"))

    first = _subscribe(kafka_bootstrap, topic, "--group", "crm", "--account", account, "--max-events", "10")
    again = _subscribe(kafka_bootstrap, topic, "--group", "crm", "--account", account, "--max-events", "5")

    assert len(first) == 10
    assert "gam.account.Created" in first[0]
    assert "Nordwind Industrial Group #1" in first[0]
    positions = [int(line.split()[0].lstrip("#")) for line in first + again]
    assert positions == sorted(positions)
    assert len(set(positions)) == 15, "the second run resumes after what the first committed"
    app.close()


def test_deduplicator_drops_replays_by_subject_version() -> None:
    dedup = Deduplicator()

    def envelope(subject: str, version: int) -> dict[str, object]:
        return {"subject": subject, "data": {"version": version}}

    assert [dedup.is_new(envelope("deal/1", v)) for v in (1, 2, 2, 1, 3)] == [True, True, False, False, True]
    assert dedup.is_new(envelope("deal/2", 1))

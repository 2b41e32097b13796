"""``gam import`` killed with SIGKILL half-way on PostgreSQL, where each batch is stored by
a thread of its own while the next is decided: run again, it applies every line exactly
once (the batch that was committed with its progress unrecorded is found by its
correlation id, the one being stored when the process died is either whole or absent)."""

from __future__ import annotations

import functools
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from domain.commands import IdentifyStakeholder, RateSentiment, RecordDeparture
from infra.hash_chain import verify_chain
from infra.settings import Settings
from services.api.command_models import command_json
from services.app import GamApplication
from tests.integration.test_import import demo_history, demo_line
from tests.reliability.harness import GamProcess, gam_env, wait_for

pytestmark = pytest.mark.postgres

RATINGS = 12_000
BATCH = 100


def history_file(path: Path) -> int:
    """The demo account's commands, then ``RATINGS`` sentiment ratings of its people, a
    minute apart; the number of events they store."""
    history = demo_history()
    lines = [demo_line(recorded) for recorded in history]
    departed = {r.command.stakeholder_id for r in history if isinstance(r.command, RecordDeparture)}
    people = [
        r.command.entity_id
        for r in history
        if isinstance(r.command, IdentifyStakeholder) and r.command.entity_id not in departed
    ]
    last = max(recorded.at for recorded in history)
    for n in range(RATINGS):
        rating = RateSentiment(stakeholder_id=people[n % len(people)], sentiment=n % 5 - 2)
        at = last + timedelta(minutes=n + 1)
        lines.append({**command_json(rating), "meta": {"at": at.isoformat(), "actor": "crm@vendor.example"}})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return len(lines) + 1  # onboarding stores two events


def lines_done(file: Path) -> int:
    progress = file.with_name(file.name + ".progress")
    return json.loads(progress.read_text())["lines_done"] if progress.exists() else 0


def _stored_past(file: Path, threshold: int, importer: GamProcess) -> bool:
    return lines_done(file) >= threshold or not importer.alive()


def test_an_import_killed_again_and_again_and_run_to_the_end_applies_every_line_once(
    settings: Settings, tmp_path: Path
) -> None:
    file = tmp_path / "history.jsonl"
    events = history_file(file)
    env = gam_env(settings)
    arguments = ["import", str(file), "--batch", str(BATCH)]
    for run, threshold in enumerate((2_000, 5_000, 8_000), start=1):
        importer = GamProcess(f"import-{run}", arguments, env, tmp_path)
        importer.start()
        stored_past = functools.partial(_stored_past, file, threshold, importer)
        wait_for(stored_past, 120, f"{threshold:,} lines stored")
        importer.kill9()
        assert threshold <= lines_done(file) < events - 1, importer.tail()

    done_before = lines_done(file)
    last = GamProcess("import-last", arguments, env, tmp_path)
    last.start()
    assert last.process is not None
    assert last.process.wait(timeout=120) == 0, last.tail()
    summary = re.search(r"(\d+) applied in \d+ batches, (\d+) already stored", last.tail().replace("\n", " "))
    assert summary is not None, last.tail()
    applied, skipped = int(summary[1]), int(summary[2])
    assert skipped >= done_before  # and more if a batch was committed as the process died
    assert applied + skipped == events - 1

    app = GamApplication(settings.eventsourcing_env())
    try:
        stored = app.recorder.select_notifications(start=1, limit=events + 10)
        keys = [(n.originator_id, n.originator_version) for n in stored]
        assert len(keys) == events, f"{len(keys)} events stored for {events}"
        assert len(set(keys)) == events
        chain = verify_chain(app.recorder)
        assert (chain.intact, chain.checked) == (True, events)
    finally:
        app.close()
    assert lines_done(file) == events - 1

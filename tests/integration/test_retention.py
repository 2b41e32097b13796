"""Retention: people who left the customer more than N days ago are erased, each by
an erasure whose legal basis is the policy; a dry run only lists them, and a second
run erases no one twice (SQLite and PostgreSQL; the CLI on SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from domain.stakeholder import Stakeholder
from domain.values import ERASED
from infra.settings import Settings
from services import handlers as h
from services.bootstrap import Runtime, bootstrap
from services.cli import cli
from services.retention import RETENTION_ACTOR, erase_leavers, leavers_due, legal_basis
from tests.support import meta
from tests.unit.builders import Org, build_org

NOW = datetime(2028, 6, 1, 12, 0, tzinfo=UTC)


def leaver(org: Org, name: str, left_on: date | None) -> UUID:
    person = org.stakeholder(name=name)
    if left_on is not None:
        h.record_departure(org.app, meta(), stakeholder_id=person, left_on=left_on)
    return person


@pytest.fixture
def runtime(durable_settings: Settings) -> Iterator[Runtime]:
    runtime = bootstrap(durable_settings)
    yield runtime
    runtime.close()


def test_leavers_past_the_period_are_erased_once_with_the_policy_as_legal_basis(runtime: Runtime) -> None:
    app = runtime.app
    org = build_org(app)
    long_gone = leaver(org, "Olga Longgone", date(2027, 5, 1))
    just_left = leaver(org, "Jens Justleft", date(2028, 5, 20))
    on_the_day = leaver(org, "Dora Boundary", (NOW - timedelta(days=365)).date())
    staying = leaver(org, "Stan Staying", None)
    already = leaver(org, "Erin Erased", date(2026, 1, 1))
    h.erase_personal_data(app, meta("dpo@vendor.example"), stakeholder_id=already, legal_basis="Art. 17 #1")
    stored = app.recorder.max_notification_id()

    due = leavers_due(app, 365, NOW.date())  # what a dry run lists
    assert [(p.stakeholder_id, p.left_on) for p in due] == [(long_gone, date(2027, 5, 1))]
    assert app.recorder.max_notification_id() == stored, "a dry run stores nothing"

    assert erase_leavers(runtime.bus, 365, due, now=NOW) == (long_gone,)
    erased = app.load(Stakeholder, long_gone)
    assert (erased.erased, erased.personal.name, erased.title) == (True, ERASED, "Chief Procurement Officer")
    erasure = list(app.events.get(long_gone))[-1]
    assert isinstance(erasure, Stakeholder.PersonalDataErased)
    assert (erasure.actor, erasure.legal_basis) == (RETENTION_ACTOR, legal_basis(365, date(2027, 5, 1)))
    assert "GAM_RETENTION_AFTER_DEPARTURE_DAYS=365" in erasure.legal_basis
    assert app.personal_keys.key(long_gone, create=False) is None
    for kept in (just_left, on_the_day, staying):
        assert app.load(Stakeholder, kept).erased is False
    assert app.load(Stakeholder, already).erased is True

    after = app.recorder.max_notification_id()
    assert leavers_due(app, 365, NOW.date()) == []
    assert app.recorder.max_notification_id() == after, "re-running erases no one twice"

    later = leavers_due(app, 365, (NOW + timedelta(days=1)).date())
    assert [p.stakeholder_id for p in later] == [on_the_day], "a day later, the boundary case is past the period"


def test_the_cli_needs_a_policy_lists_on_a_dry_run_and_erases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("GAM_STORE", "GAM_SQLITE_PATH", "GAM_RETENTION_AFTER_DEPARTURE_DAYS", "GAM_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    writer = bootstrap(Settings(store="sqlite", sqlite_path=tmp_path / "gam.db"))
    org = build_org(writer.app)
    today = datetime.now(UTC).date()
    gone = leaver(org, "Olga Longgone", today - timedelta(days=40))
    leaver(org, "Jens Justleft", today - timedelta(days=2))
    writer.close()

    no_policy = CliRunner().invoke(cli, ["retention", "run"])
    assert no_policy.exit_code != 0
    assert "GAM_RETENTION_AFTER_DEPARTURE_DAYS" in no_policy.output
    policy = {"GAM_RETENTION_AFTER_DEPARTURE_DAYS": "30"}
    dry = CliRunner().invoke(cli, ["retention", "run", "--dry-run"], env=policy)
    assert dry.exit_code == 0, dry.output
    assert f"would erase {gone}" in dry.stdout
    assert "1 would be erased" in dry.stdout
    done = CliRunner().invoke(cli, ["retention", "run"], env=policy)
    assert f"erased {gone}" in done.stdout
    assert "1 erased" in done.stdout
    again = CliRunner().invoke(cli, ["retention", "run"], env=policy)
    assert "0 erased" in again.stdout

    reader = bootstrap(Settings(store="sqlite", sqlite_path=tmp_path / "gam.db"))
    try:
        assert reader.app.load(Stakeholder, gone).erased
        assert list(reader.app.events.get(gone))[-1].actor == RETENTION_ACTOR
    finally:
        reader.close()

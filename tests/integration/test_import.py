"""Bulk import through the bus: a JSON-lines file of commands (the demo's, recorded),
validated first, stored in batches, resumable after a crash without applying
anything twice; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import UUID, uuid4

import pytest

from domain.commands import (
    AddUnit,
    ChangeDealProbability,
    Command,
    ErasePersonalData,
    IdentifyStakeholder,
    MoveDealStage,
    OpenDeal,
    RenameUnit,
)
from domain.deal import Deal
from domain.errors import ConcurrencyConflict
from domain.metadata import EventMetadata
from domain.stakeholder import Stakeholder
from infra.hash_chain import verify_chain
from infra.settings import Settings
from services import demo
from services.api.command_models import command_json
from services.app import GamApplication
from services.bootstrap import bootstrap
from services.handlers import bus_for
from services.importer import (
    ImportRefused,
    _committed_since,
    _Storing,
    batch_correlation,
    file_digest,
    import_file,
    progress_path,
)
from tests.conftest import AppFactory


@dataclass(frozen=True)
class Recorded:
    command: Command
    at: datetime
    actor: str


def demo_history() -> list[Recorded]:
    """The demo account's 579 commands, recorded instead of sent, each with its moment."""
    recorded: list[Recorded] = []

    class Recorder:
        def handle(self, command: Command, meta: EventMetadata, *_: object, **__: object) -> None:
            recorded.append(Recorded(command, meta.at, meta.actor))

    with mock.patch.object(demo, "bus_for", return_value=Recorder()):
        demo.seed_account(None, 0)  # type: ignore[arg-type]
    return recorded


def demo_commands() -> list[Command]:
    return [recorded.command for recorded in demo_history()]


def demo_line(recorded: Recorded) -> dict[str, Any]:
    """A line of a history brought over from another system: decided at its own moment
    (the demo's deals close in 2027), so the file stays valid whatever today's date is,
    and by its own actor (whoever submitted a plan did not approve it)."""
    return {**command_json(recorded.command), "meta": {"at": recorded.at.isoformat(), "actor": recorded.actor}}


def write_lines(path: Path, history: list[Recorded]) -> Path:
    path.write_text("".join(json.dumps(demo_line(recorded)) + "\n" for recorded in history))
    return path


def stored(app: GamApplication) -> list[tuple[str, int, str]]:
    """The log as (entity, version, topic): what two equal histories share."""
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    return [(str(n.originator_id), n.originator_version, n.topic) for n in notifications]


@pytest.fixture
def empty_app(app_factory: AppFactory) -> GamApplication:
    return app_factory()


def test_an_import_applies_every_line_in_batches_of_one_transaction(empty_app: GamApplication, tmp_path: Path) -> None:
    file = write_lines(tmp_path / "demo.jsonl", demo_history())
    summary = import_file(bus_for(empty_app), file, actor="importer@vendor.example", batch_size=100)
    assert (summary.lines, summary.applied, summary.skipped, summary.batches) == (579, 579, 0, 6)
    log = stored(empty_app)
    assert len(log) == 580
    assert summary.position == empty_app.recorder.max_notification_id()
    first_hundred = empty_app.recorder.select_notifications(1, 101)
    first_batch = {empty_app.mapper.to_domain_event(n).correlation_id for n in first_hundred}
    assert first_batch == {batch_correlation(file_digest(file), 1)}
    again = import_file(bus_for(empty_app), file, actor="importer@vendor.example", batch_size=100)
    assert (again.applied, again.skipped) == (0, 579)
    assert stored(empty_app) == log
    chain = verify_chain(empty_app.recorder)  # a hundred commands' events linked in one transaction
    assert (chain.intact, chain.checked) == (True, 580)


def test_a_crash_after_a_commit_whose_progress_was_lost_applies_nothing_twice(
    empty_app: GamApplication, tmp_path: Path
) -> None:
    file = write_lines(tmp_path / "demo.jsonl", demo_history())
    bus = bus_for(empty_app)
    real_save = Path.write_text
    saves = 0

    def crash_on_third_progress(self: Path, *args: object, **kwargs: object) -> int:
        nonlocal saves
        if self.name.endswith(".progress.tmp"):
            saves += 1
            if saves == 3:
                raise KeyboardInterrupt  # the process dies between the commit and the progress
        return real_save(self, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(Path, "write_text", crash_on_third_progress), pytest.raises(KeyboardInterrupt):
        import_file(bus, file, actor="importer", batch_size=100)
    assert json.loads(progress_path(file).read_text())["lines_done"] == 200
    assert len(stored(empty_app)) == 301  # the third batch is stored, its progress is not

    resumed = import_file(bus, file, actor="importer", batch_size=100)
    assert (resumed.applied, resumed.skipped) == (279, 300)
    assert len(stored(empty_app)) == 580
    versions = [(entity, version) for entity, version, _ in stored(empty_app)]
    assert len(versions) == len(set(versions))


def test_a_bad_line_refuses_the_file_before_anything_is_stored(empty_app: GamApplication, tmp_path: Path) -> None:
    history = demo_history()
    lines = [json.dumps(demo_line(recorded)) for recorded in history]
    lines[400] = json.dumps({**demo_line(history[400]), "to_stage": "nowhere"})
    file = tmp_path / "bad.jsonl"
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportRefused, match="line 401") as refused:
        import_file(bus_for(empty_app), file, actor="importer")
    assert refused.value.line == 401
    assert stored(empty_app) == []


def test_a_refused_command_stores_nothing_of_its_batch(empty_app: GamApplication, tmp_path: Path) -> None:
    history = demo_history()
    first_person = next(n for n, line in enumerate(history) if isinstance(line.command, IdentifyStakeholder))
    history.insert(first_person + 1, history[first_person])  # the second time, the id is taken
    file = write_lines(tmp_path / "twice.jsonl", history)
    refused_line = first_person + 2
    with pytest.raises(ImportRefused, match=f"line {refused_line}: already_exists"):
        import_file(bus_for(empty_app), file, actor="importer", batch_size=100)
    whole_batches = (refused_line - 1) // 100
    assert whole_batches >= 1
    assert len(stored(empty_app)) == whole_batches * 100 + 1  # onboarding stores two events


def test_a_dry_run_decides_everything_and_stores_nothing(empty_app: GamApplication, tmp_path: Path) -> None:
    file = write_lines(tmp_path / "demo.jsonl", demo_history())
    summary = import_file(bus_for(empty_app), file, actor="importer", dry_run=True, batch_size=50)
    assert (summary.applied, summary.dry_run) == (579, True)
    assert stored(empty_app) == []
    assert not progress_path(file).exists()


def test_a_history_keeps_each_line_s_actor_and_time(empty_app: GamApplication, tmp_path: Path) -> None:
    history = demo_history()
    lines = [demo_line(recorded) for recorded in history]
    lines[5]["meta"] = {"actor": "legacy-crm@vendor.example", "at": "2019-03-01T10:00:00+01:00", "reason": "migrated"}
    lines[6]["meta"] = {"actor": "bad\u0000actor"}
    file = tmp_path / "history.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ImportRefused, match="line 7: meta"):
        import_file(bus_for(empty_app), file, actor="importer")
    assert stored(empty_app) == []

    lines[6]["meta"] = {"at": history[6].at.isoformat()}
    for line in lines:  # lines without an actor of their own are the batch's; the sponsor's approval keeps hers
        if line["type"] != "approve_plan" and line["meta"].get("actor") != "legacy-crm@vendor.example":
            line["meta"].pop("actor", None)
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    import_file(bus_for(empty_app), file, actor="importer", reason="move to gam")
    events = [empty_app.mapper.to_domain_event(n) for n in empty_app.recorder.select_notifications(1, 10_000)]
    [migrated] = [e for e in events if e.actor == "legacy-crm@vendor.example"]
    assert migrated.reason == "migrated"
    assert migrated.timestamp.isoformat() == "2019-03-01T09:00:00+00:00"
    [approved] = [e for e in events if type(e).__name__ == "Approved"]
    assert approved.actor == "cro@vendor.example"
    others = {(e.actor, e.reason) for e in events if e is not migrated and e is not approved}
    assert others == {("importer", "move to gam")}


def test_a_historical_line_opens_a_deal_whose_close_date_has_passed_since(
    empty_app: GamApplication, tmp_path: Path
) -> None:
    """ "Historical" is the line's own ``meta.at``: the rule is judged at that moment."""
    history = demo_history()
    first_deal = next(n for n, line in enumerate(history) if isinstance(line.command, OpenDeal))
    lines = [demo_line(recorded) for recorded in history[: first_deal + 1]]
    lines[-1]["expected_close"] = "2026-08-31"  # the day before the demo's history starts
    file = tmp_path / "late.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(ImportRefused, match=f"line {first_deal + 1}: close_date_in_past"):
        import_file(bus_for(empty_app), file, actor="importer")
    lines[-1]["meta"] = {"at": "2026-08-01T09:00:00+00:00"}
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    import_file(bus_for(empty_app), file, actor="importer")
    assert empty_app.load(Deal, history[first_deal].command.entity_id).expected_close.isoformat() == "2026-08-31"


def test_looking_for_a_lost_batch_decodes_only_the_events_that_name_its_correlation(
    empty_app: GamApplication, tmp_path: Path
) -> None:
    """A new file's first batch looks through the whole log for a commit whose progress was
    lost; in a large store, decoding every event for that took minutes. Only events whose
    stored JSON holds the batch's correlation id are decoded."""
    history = demo_history()
    first = write_lines(tmp_path / "first.jsonl", history[:200])
    import_file(bus_for(empty_app), first, actor="importer", batch_size=100)
    stored_before = len(stored(empty_app))
    second = write_lines(tmp_path / "second.jsonl", history[200:260])
    bus = bus_for(empty_app)
    decoded: list[int] = []
    to_domain_event = empty_app.mapper.to_domain_event

    def counted(stored_event: Any) -> Any:
        decoded.append(1)
        return to_domain_event(stored_event)

    with mock.patch.object(empty_app.mapper, "to_domain_event", counted):
        absent = batch_correlation(file_digest(second), 1)
        assert _committed_since(bus, 0, absent) is None
        assert decoded == []  # 200 commands' events looked at, none decoded
        present = batch_correlation(file_digest(first), 101)
        found = _committed_since(bus, 0, present)
    carrying = [
        n.id
        for n in empty_app.recorder.select_notifications(1, 10_000)
        if empty_app.mapper.to_domain_event(n).correlation_id == present
    ]
    assert found == carrying[-1] == stored_before  # the first file's second batch ends the log
    assert len(decoded) == len(carrying)  # only its own events were decoded


def meta_of(actor: str) -> EventMetadata:
    return EventMetadata(actor=actor, at=datetime.now(UTC), correlation_id=uuid4())


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapping", "one after the other"])
def test_storing_each_batch_while_deciding_the_next_stores_what_one_after_the_other_does(
    empty_app: GamApplication, tmp_path: Path, overlap: bool
) -> None:
    """On PostgreSQL a batch is stored by a thread of its own while the next one is decided
    from copies of what the first decided; on SQLite one after the other. Either way, the
    log is the one an in-memory store gets, batch by batch, and snapshots are due where
    they were."""
    file = write_lines(tmp_path / "demo.jsonl", demo_history())
    summary = import_file(bus_for(empty_app), file, actor="importer", batch_size=50, overlap=overlap)
    reference = bootstrap(Settings(store="memory"))
    try:
        again = write_lines(tmp_path / "again.jsonl", demo_history())  # a progress file of its own
        import_file(bus_for(reference.app), again, actor="importer", batch_size=50, overlap=False)
        assert stored(empty_app) == stored(reference.app)
        assert summary.batches == 12
        for entity in {entity for entity, _, _ in stored(empty_app)}:
            ours, theirs = empty_app.repository.get(UUID(entity)), reference.app.repository.get(UUID(entity))
            assert (type(ours), ours.version) == (type(theirs), theirs.version)
    finally:
        reference.close()
    chain = verify_chain(empty_app.recorder)
    assert (chain.intact, chain.checked) == (True, 580)
    assert empty_app.snapshots is not None
    account = next(UUID(entity) for entity, version, _ in stored(empty_app) if version > 50)
    assert list(empty_app.snapshots.get(account)), "a snapshot is taken where the versions pass a multiple of 50"


def test_a_batch_decided_on_what_another_process_changed_meanwhile_is_decided_again(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    """Another process renames a unit of the account while the second batch, which reads
    the account, is decided on the copies handed over from the first: its commit finds the
    read stale and it is decided again on fresh state, and so is the third batch, which was
    decided on the second's copies. Nothing is refused, nothing applied twice."""
    app, other = app_factory(), app_factory()
    history = demo_history()
    file = write_lines(tmp_path / "demo.jsonl", history)
    account_id = history[0].command.entity_id
    unit = next(r.command for r in history if isinstance(r.command, AddUnit))

    def rename_once(done: int, _: int) -> None:
        if done == 100:  # the first batch is stored; the second is decided, not yet sent
            rename = RenameUnit(account_id=account_id, unit_id=unit.created_id, name="Nordics & Baltics")
            bus_for(other).handle(rename, meta_of("other-process@vendor.example"))

    decided_again = mock.patch.object(_Storing, "_decided_again", autospec=True, side_effect=_Storing._decided_again)
    with decided_again as again:
        summary = import_file(bus_for(app), file, actor="importer", batch_size=100, overlap=True, on_batch=rename_once)
    assert [call.args[1][0].number for call in again.call_args_list] == [101, 201]  # the second and third batches
    assert (summary.applied, summary.batches) == (579, 6)
    log = stored(app)
    assert len(log) == 581
    assert len({(entity, version) for entity, version, _ in log}) == 581
    assert verify_chain(app.recorder).intact


def test_a_batch_that_writes_what_another_process_wrote_meanwhile_stops_the_import_where_it_can_resume(
    app_factory: AppFactory, tmp_path: Path
) -> None:
    """A write-write conflict is the other process's change winning: the import stops at
    that batch, the batches before it recorded, and a re-run resumes there on fresh state."""
    app, other = app_factory(), app_factory()
    history = demo_history()
    file = write_lines(tmp_path / "demo.jsonl", history)
    opened = {r.command.entity_id for r in history[:500] if isinstance(r.command, OpenDeal)}
    deal = next(
        r.command.deal_id for r in history[500:] if isinstance(r.command, MoveDealStage) and r.command.deal_id in opened
    )  # opened before the sixth batch, moved in it

    def change_once(done: int, _: int) -> None:
        if done == 500:  # the sixth batch is decided on the fifth's copies, not yet sent
            change = ChangeDealProbability(deal_id=deal, probability=35)
            bus_for(other).handle(change, meta_of("other@vendor.example"))

    with pytest.raises(ConcurrencyConflict):
        import_file(bus_for(app), file, actor="importer", batch_size=100, overlap=True, on_batch=change_once)
    assert json.loads(progress_path(file).read_text())["lines_done"] == 500
    assert len(stored(app)) == 502  # five batches (the onboarding stores two events) and the other's change
    resumed = import_file(bus_for(app), file, actor="importer", batch_size=100, overlap=True)
    assert (resumed.applied, resumed.skipped) == (79, 500)
    assert len(stored(app)) == 581


def test_an_erasure_in_an_overlapping_import_is_stored_and_its_key_destroyed_before_the_next_batch(
    empty_app: GamApplication, tmp_path: Path
) -> None:
    """The erasure's batch is finished (stored, then the person's key destroyed) before the
    next batch is decided, and that one is decided from the store, not from copies."""
    history = demo_history()
    at, person = next(
        (at, person) for at in range(450, 560) for person in _left_alone_after(history, at)
    )  # a person no command names after that line, erased in the fifth batch
    erase = ErasePersonalData(stakeholder_id=person, legal_basis="GDPR Art. 17 request #4711")
    history.insert(at, Recorded(erase, history[at - 1].at, "dpo@vendor.example"))
    file = write_lines(tmp_path / "erasing.jsonl", history)

    summary = import_file(bus_for(empty_app), file, actor="importer", batch_size=100, overlap=True)

    assert (summary.applied, summary.batches) == (580, 6)
    assert empty_app.personal_keys.key(person, create=False) is None
    assert empty_app.load(Stakeholder, person).erased
    assert verify_chain(empty_app.recorder).intact


def _left_alone_after(history: list[Recorded], line: int) -> list[UUID]:
    """The people identified before ``line`` whom no later command names."""
    later = json.dumps([command_json(r.command) for r in history[line:]])
    return [
        r.command.entity_id
        for r in history[:line]
        if isinstance(r.command, IdentifyStakeholder) and str(r.command.entity_id) not in later
    ]

"""The attacks an insider with write access to the database can make, on SQLite and
PostgreSQL, each caught by a witness holding a checkpoint signed before; a log that
only grew passes; proofs check out with the public key alone (``docs/verify_audit_log.py``)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from infra.checkpoints import Checkpoint, open_checkpoint
from infra.hash_chain import CHAIN_TABLE, chain_links, verify_chain
from infra.merkle_store import CHECKPOINTS, LEAVES, LEVEL_SHIFT, NODES
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from services.transparency import LogInconsistent, StoreSource, TransparencyLog, WitnessAlarm, witness
from tests.integration.test_hash_chain import _events_table, _execute, _id_column
from tests.support import meta
from tests.unit.builders import build_org

VERIFIER_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_audit_log.py"


@dataclass
class Log:
    settings: Settings
    app: GamApplication
    log: TransparencyLog
    deal_id: UUID
    size: int = 0
    """Events stored when the fixture handed the log over."""

    def grow(self, events: int, start: int = 40) -> None:
        for n in range(events):
            h.change_deal_probability(self.app, meta(), deal_id=self.deal_id, probability=start + n)

    def checkpoint(self) -> Checkpoint:
        signed = self.log.step(force=True)
        assert signed is not None
        return signed

    def witness(self, held: Checkpoint) -> Checkpoint:
        """A witness reading the store afresh (a new process), holding ``held``."""
        app = GamApplication(self.settings.eventsourcing_env())
        fresh = TransparencyLog.open(app, self.settings)
        try:
            return witness(held.note, fresh.verifier, StoreSource(fresh))
        finally:
            fresh.close()
            app.close()


@pytest.fixture
def seeded(durable_settings: Settings, tmp_path: Path) -> Iterator[Log]:
    settings = durable_settings.model_copy(
        update={"signing_key_file": tmp_path / "log.key", "checkpoint_dir": tmp_path / "published"}
    )
    app = GamApplication(settings.eventsourcing_env())
    seeded = Log(settings, app, TransparencyLog.open(app, settings), build_org(app).deal())
    seeded.grow(20, start=10)
    seeded.size = app.recorder.max_notification_id() or 0
    yield seeded
    seeded.log.close()
    seeded.app.close()


def _tree_table_rows_from(settings: Settings, leaf_index: int) -> None:
    """Delete the tree's leaves from ``leaf_index`` on and every node that covers one of them."""
    _execute(settings, f"DELETE FROM {LEAVES} WHERE leaf_index >= %s", (leaf_index,))
    for level in range(40):
        first = (level << LEVEL_SHIFT) | (leaf_index >> level)
        _execute(settings, f"DELETE FROM {NODES} WHERE id >= %s AND id < %s", (first, (level + 1) << LEVEL_SHIFT))


def _relink_chain(settings: Settings, app: GamApplication) -> None:
    """Recompute every link of the linear chain from the events as they now are."""
    last = app.recorder.max_notification_id() or 0
    links = [(link, p) for p, link in chain_links(iter(app.recorder.select_notifications(start=1, limit=last)))]
    statement = f"UPDATE {CHAIN_TABLE} SET link = %s WHERE position = %s"
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            conn.executemany(statement.replace("%s", "?"), links)
        return
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(sql.SQL("SET search_path TO {0}").format(sql.Identifier(settings.postgres_schema or "public")))
        cursor.executemany(statement, links)  # type: ignore[arg-type]


def _edit_event(settings: Settings, position: int) -> None:
    column, table = _id_column(settings), _events_table(settings)
    ((state,),) = _execute(settings, f"SELECT state FROM {table} WHERE {column} = %s", (position,))
    tampered = bytes(state).replace(b'"actor":"', b'"actor":"mallory-as-')  # type: ignore[arg-type]
    assert tampered != bytes(state)  # type: ignore[arg-type]
    _execute(settings, f"UPDATE {table} SET state = %s WHERE {column} = %s", (tampered, position))


def test_a_log_that_only_grew_passes_and_the_witness_moves_on(seeded: Log) -> None:
    first = seeded.checkpoint()
    assert first.size == seeded.size > 20
    seeded.grow(3)
    second = seeded.checkpoint()
    assert seeded.witness(first).size == seeded.size + 3
    assert seeded.witness(second).note == second.note
    published = sorted(p.name for p in (seeded.settings.checkpoint_dir or Path()).iterdir())
    assert published == [f"{seeded.size:020d}.checkpoint", f"{seeded.size + 3:020d}.checkpoint"]


def test_an_edited_event_with_the_whole_chain_recomputed_is_caught(seeded: Log) -> None:
    held = seeded.checkpoint()
    _edit_event(seeded.settings, 14)
    _relink_chain(seeded.settings, seeded.app)
    assert verify_chain(seeded.app.recorder).intact  # the linear chain alone is fooled
    seeded.grow(2)
    seeded.checkpoint()  # the log keeps signing: the tree still holds the event as it was
    with pytest.raises(WitnessAlarm, match=r"^rewritten event: position 14 \(leaf 13\)"):
        seeded.witness(held)


def test_deleting_the_newest_events_with_their_links_is_caught(seeded: Log) -> None:
    held = seeded.checkpoint()
    column, table = _id_column(seeded.settings), _events_table(seeded.settings)
    _execute(seeded.settings, f"DELETE FROM {table} WHERE {column} > %s", (seeded.size - 10,))
    _execute(seeded.settings, f"DELETE FROM {CHAIN_TABLE} WHERE position > %s", (seeded.size - 10,))
    assert verify_chain(seeded.app.recorder).intact
    with pytest.raises(WitnessAlarm, match=f"^deleted events: the store holds {seeded.size - 10} events"):
        seeded.witness(held)


def test_deleting_the_newest_events_with_their_tree_and_checkpoints_is_a_rollback(seeded: Log) -> None:
    seeded.checkpoint()
    seeded.grow(5)
    held = seeded.checkpoint()
    column, table = _id_column(seeded.settings), _events_table(seeded.settings)
    for statement in (f"DELETE FROM {table} WHERE {column} > %s", f"DELETE FROM {CHAIN_TABLE} WHERE position > %s"):
        _execute(seeded.settings, statement, (seeded.size,))
    _tree_table_rows_from(seeded.settings, seeded.size)
    _execute(seeded.settings, f"DELETE FROM {CHECKPOINTS} WHERE tree_size > %s", (seeded.size,))
    assert verify_chain(seeded.app.recorder).intact
    with pytest.raises(
        WitnessAlarm, match=f"^rollback: .* covers {seeded.size} events, fewer than the {seeded.size + 5} held"
    ):
        seeded.witness(held)


def test_a_tree_rebuilt_from_edited_events_is_a_fork(seeded: Log) -> None:
    held = seeded.checkpoint()
    _edit_event(seeded.settings, 10)
    _relink_chain(seeded.settings, seeded.app)
    _tree_table_rows_from(seeded.settings, 0)
    _execute(seeded.settings, f"DELETE FROM {CHECKPOINTS}")
    seeded.grow(1)
    with pytest.raises(LogInconsistent, match="does not extend the newest published checkpoint"):
        seeded.checkpoint()  # the log itself will not sign over what it published
    insiders = TransparencyLog(seeded.app, seeded.log.store, seeded.log.signer)  # the key, not the directory
    forged = insiders.step(force=True)
    assert forged is not None
    assert forged.size == seeded.size + 1
    with pytest.raises(
        WitnessAlarm, match=f"^fork: the log of {seeded.size + 1} events does not extend .* {seeded.size} events"
    ):
        seeded.witness(held)


def _backup(settings: Settings, tmp: Path) -> None:
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as source, sqlite3.connect(tmp / "backup.db") as target:
            source.backup(target)
        return
    for table in (_events_table(settings), CHAIN_TABLE, NODES, LEAVES, CHECKPOINTS):
        _execute(settings, f"CREATE TABLE backup_{table} AS TABLE {table}")


def _restore(settings: Settings, tmp: Path) -> None:
    if settings.store == "sqlite":
        with sqlite3.connect(tmp / "backup.db") as source, sqlite3.connect(settings.sqlite_path) as target:
            source.backup(target)
        return
    for table in (_events_table(settings), CHAIN_TABLE, NODES, LEAVES, CHECKPOINTS):
        _execute(settings, f"TRUNCATE {table}")
        _execute(settings, f"INSERT INTO {table} SELECT * FROM backup_{table}")


def test_rolling_the_database_back_to_a_backup_is_caught(seeded: Log, tmp_path: Path) -> None:
    seeded.checkpoint()
    _backup(seeded.settings, tmp_path)
    seeded.grow(5)
    held = seeded.checkpoint()
    seeded.log.close()
    seeded.app.close()
    _restore(seeded.settings, tmp_path)
    seeded.app = GamApplication(seeded.settings.eventsourcing_env())
    seeded.log = TransparencyLog.open(seeded.app, seeded.settings)
    with pytest.raises(
        WitnessAlarm, match=f"^rollback: .* covers {seeded.size} events, fewer than the {seeded.size + 5} held"
    ):
        seeded.witness(held)
    seeded.grow(8, start=70)  # the restored log grows past the checkpoint held, differently
    with pytest.raises(LogInconsistent, match="newest published checkpoint"):
        seeded.checkpoint()
    TransparencyLog(seeded.app, seeded.log.store, seeded.log.signer).step(force=True)
    with pytest.raises(WitnessAlarm, match=f"^fork: the log of {seeded.size + 8} events does not extend"):
        seeded.witness(held)


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    """The auditor's script, as an auditor runs it: its own process, no gam on the path."""
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER_SCRIPT), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_proofs_verify_with_the_public_key_alone(seeded: Log, tmp_path: Path) -> None:
    older = seeded.checkpoint()
    seeded.grow(3)
    latest = seeded.checkpoint()
    key = str(seeded.log.verifier)
    (tmp_path / "old.checkpoint").write_text(older.note, encoding="utf-8")
    (tmp_path / "new.checkpoint").write_text(latest.note, encoding="utf-8")
    inclusion = seeded.log.inclusion(seeded.size + 2).as_json()
    (tmp_path / "inclusion.json").write_text(json.dumps(inclusion), encoding="utf-8")
    (tmp_path / "consistency.json").write_text(json.dumps(seeded.log.consistency(older.size).as_json()))

    checked = _verify("checkpoint", str(tmp_path / "new.checkpoint"), "--key", key)
    assert (checked.returncode, checked.stdout) == (
        0,
        f"OK: checkpoint of gam.local/events at {seeded.size + 3} events, signed by gam.local/events\n",
    )
    included = _verify("inclusion", str(tmp_path / "inclusion.json"), "--key", key)
    assert (included.returncode, included.stdout.split(":")[0]) == (0, "OK"), included.stderr
    consistent = _verify(
        "consistency", str(tmp_path / "consistency.json"), "--key", key, "--old", str(tmp_path / "old.checkpoint")
    )
    assert (consistent.returncode, consistent.stdout.split(":")[0]) == (0, "OK"), consistent.stderr

    inclusion["leaf"]["version"] += 1  # an event that is not the one logged
    (tmp_path / "forged.json").write_text(json.dumps(inclusion), encoding="utf-8")
    refused = _verify("inclusion", str(tmp_path / "forged.json"), "--key", key)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.startswith(f"FAILED: event {seeded.size + 2} is NOT included")
    (tmp_path / "forged.checkpoint").write_text(latest.note.replace(f"\n{seeded.size + 3}\n", f"\n{seeded.size + 4}\n"))
    assert "does not verify" in _verify("checkpoint", str(tmp_path / "forged.checkpoint"), "--key", key).stderr
    stranger = "gam.local/events+00000000+" + key.split("+", 2)[2]
    assert _verify("checkpoint", str(tmp_path / "new.checkpoint"), "--key", stranger).returncode == 1


def test_checkpoints_are_signed_every_n_events_or_t_seconds(seeded: Log) -> None:
    now = [0.0]
    log = TransparencyLog(seeded.app, seeded.log.store, seeded.log.signer, every_events=5, every_seconds=10,
                          clock=lambda: now[0])  # fmt: skip
    assert log.step() is not None  # the first one at once
    seeded.grow(4)
    assert log.step() is None
    seeded.grow(1)
    assert log.step().size == seeded.size + 5  # type: ignore[union-attr]
    seeded.grow(1)
    assert log.step() is None
    now[0] += 10
    assert log.step().size == seeded.size + 6  # type: ignore[union-attr]
    now[0] += 10
    assert log.step() is None  # nothing new, nothing signed


@pytest.mark.kafka
def test_checkpoints_are_published_to_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic = f"gam.checkpoints.{tmp_path.name}"
    settings = Settings(
        store="sqlite", sqlite_path=tmp_path / "gam.db", kafka_bootstrap_servers=kafka_bootstrap, checkpoint_topic=topic
    )
    app = GamApplication(settings.eventsourcing_env())
    build_org(app, with_plan=False)
    log = TransparencyLog.open(app, settings)
    try:
        signed = log.step(force=True)
        verifier, stored = log.verifier, app.recorder.max_notification_id()
    finally:
        log.close()
        app.close()
    assert signed is not None
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}])
        consumer.seek_to_beginning()
        deadline, notes = time.monotonic() + 20, []
        while not notes and time.monotonic() < deadline:
            notes = [r.value.decode() for records in consumer.poll(timeout_ms=500).values() for r in records]
    finally:
        consumer.close()
    assert notes == [signed.note]
    assert open_checkpoint(notes[0], verifier).size == signed.size == stored


def test_an_exported_slice_is_provable_on_its_own(seeded: Log, tmp_path: Path) -> None:
    from services.audit_export import export_rows, render
    from services.projector import Projector

    seeded.grow(2)
    checkpoint = seeded.checkpoint()
    seeded.grow(1)  # after the cut: in the export, not in its checkpoint
    projector = Projector.open(seeded.app, seeded.settings, ["audit_trail"])
    try:
        projector.catch_up()
        rows = list(export_rows(projector, account_id=None, since=None, until=None, transparency=seeded.log,
                                tree_size=checkpoint.size))  # fmt: skip
    finally:
        projector.close()
    assert [r["leaf_index"] for r in rows] == [*range(seeded.size + 2), None]  # the last not yet in the tree
    assert {r["tree_size"] for r in rows[:-1]} == {checkpoint.size}
    assert (rows[-1]["tree_size"], rows[-1]["inclusion_proof"]) == (None, None)
    (tmp_path / "cut.checkpoint").write_text(checkpoint.note, encoding="utf-8")
    (tmp_path / "slice.jsonl").write_text("".join(render(iter(rows[5:9]), "jsonl")), encoding="utf-8")
    key = str(seeded.log.verifier)
    checked = _verify(
        "export", str(tmp_path / "slice.jsonl"), "--key", key, "--checkpoint", str(tmp_path / "cut.checkpoint")
    )
    assert (checked.returncode, checked.stdout) == (
        0,
        f"OK: 4 of 4 rows are in the checkpoint of {checkpoint.size} events\n",
    )
    (tmp_path / "all.csv").write_text("".join(render(iter(rows), "csv")), encoding="utf-8")
    checked = _verify(
        "export", str(tmp_path / "all.csv"), "--key", key, "--checkpoint", str(tmp_path / "cut.checkpoint")
    )
    assert (
        checked.stdout == f"OK: {len(rows) - 1} of {len(rows)} rows are in the checkpoint of {checkpoint.size} events\n"
    )
    rows[6]["actor"] = "mallory"  # not bound by the leaf: the state digest is
    rows[7]["state_sha256"] = "00" * 32
    (tmp_path / "edited.jsonl").write_text("".join(render(iter(rows[5:9]), "jsonl")), encoding="utf-8")
    refused = _verify(
        "export", str(tmp_path / "edited.jsonl"), "--key", key, "--checkpoint", str(tmp_path / "cut.checkpoint")
    )
    assert (refused.returncode, refused.stderr) == (
        1,
        f"FAILED: row {rows[7]['position']} is NOT in the checkpoint of {checkpoint.size} events\n",
    )


def test_the_in_memory_store_keeps_a_log_too() -> None:
    from infra import merkle

    settings = Settings(store="memory")
    app = GamApplication(settings.eventsourcing_env())
    try:
        build_org(app).deal()
        log = TransparencyLog.open(app, settings)  # a key of its own, in memory: nothing outlives the process
        held = log.step(force=True)
        assert held is not None
        assert held.size == app.recorder.max_notification_id()
        proof = log.inclusion(3)
        data = merkle.event_leaf(3, proof.entity_id, proof.version, proof.topic, bytes.fromhex(proof.state_sha256))
        assert merkle.verify_inclusion(proof.leaf_index, held.size, merkle.leaf_hash(data), proof.proof, held.root)
        assert witness(held.note, log.verifier, StoreSource(log)).size == held.size
    finally:
        app.close()

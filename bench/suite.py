"""Every workload, every contender, one run: the figures behind ``bench/REPORT.md``.

Workloads (the same data for every contender, see ``bench.mix``):

- ``commands``: the demo's command mix for N accounts, one command per transaction;
- ``bulk_import``: a large account's history, a thousand changes per transaction;
- ``view_read``: reading the account view of that account;
- ``as_of``: the account as it stood near the end of its history;
- ``rebuild``: building the read side again from the history;
- ``relay``: publishing every change of the command mix to Kafka.

Contenders: gam through its service layer (``gam``) and through HTTP
(``gam_http``: ``gam serve`` with ``gam project`` writing the views, as
``docker-compose.yml`` runs them; ``gam_http_one_process``: ``gam serve`` writing
them itself), the plain CRUD+audit baseline (``crud``, ``bench.crud``),
PostgreSQL's own ceiling for event-sized rows (``ceiling``, ``bench.ceiling``;
for the relay, a bare kafka-python producer), and for commands the raw
``eventsourcing`` save rate of a trivial aggregate (``raw_eventsourcing``).

Each figure is the median with min–max over repeats; ratios compare medians from
the same run and are speeds (``gam_vs_crud`` 0.5 = gam takes twice as long).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ceiling import START, Ceiling
from bench.common import machine_facts, new_schema, postgres_settings, spread
from bench.core_commands import measure_raw
from bench.crud import CrudStore
from bench.mix import (
    Change,
    Command,
    Targets,
    demo_commands,
    gam_import,
    history,
    progress_reports,
    run_command,
    run_commands,
    targets,
)  # fmt: skip
from bench.relay import bare_producer_rate, relay_rate, relayed_messages
from infra.kafka import create_producer
from infra.settings import Settings
from services.app import GamApplication
from services.demo import SeededAccount
from services.parallel_rebuild import DEFAULT_PROCESSES
from services.projector import Projector, rebuild_views
from services.read_models import ReadModels
from services.time_travel import account_as_of

SEEDED_EVENTS = 580
"""Events gam stores for one demo account (579 commands; onboarding stores two)."""

LARGE_REBUILD_EVENTS = 50_000
"""Stores this large are rebuilt once (the first build of their views), not ``slow_repeats`` times."""

AS_OF_BEFORE_END = timedelta(minutes=10)
"""The as-of moment: ten changes before the end of the history, the costliest case."""


@dataclass(frozen=True)
class Sizes:
    accounts: int
    """Demo accounts in the command mix (and in the relay's log)."""
    repeats: int
    """Repeats of the cheap measurements."""
    slow_repeats: int
    """Repeats of imports, as-of queries and rebuilds."""
    scale_events: tuple[int, ...]
    """Events per account at each scaling point; the largest is the 'large account' of the table."""
    scale_accounts: tuple[int, ...]
    """Numbers of accounts (of the smallest events-per-account size) at each scaling point."""
    progress_reports: tuple[int, ...] = (200, 400, 800)
    """Progress reports on one plan at each point of the strategy flow measurement."""
    mix_commands: int | None = None
    """Cut each account's command mix to its first N commands (the smoke test's tiny size only)."""
    probes: int = 50
    """Commands timed one by one for a latency figure."""
    reads: int = 20
    """View reads timed one by one for a latency figure."""
    http_concurrency: int = 4

    @property
    def large(self) -> int:
        return max(self.scale_events)

    @property
    def relay_repeats(self) -> int:
        """The relay's repeats: three times the cheap ones. A repeat takes about a second
        for the three contenders together, and the broker's own pace moves the bare
        producer's rate by a fifth from one repeat to the next (2,363 and 2,792 messages/s
        in one process, medians of four), so a median of four did not settle the ratio."""
        return self.repeats * 3


FULL = Sizes(
    accounts=3, repeats=4, slow_repeats=2, scale_events=(1_000, 10_000, 100_000), scale_accounts=(1, 3, 9),
    progress_reports=(200, 400, 800),
)  # fmt: skip
QUICK = Sizes(
    accounts=1, repeats=2, slow_repeats=2, scale_events=(1_000, 5_000), scale_accounts=(1, 2),
    progress_reports=(100, 200), probes=20,
)  # fmt: skip
TINY = Sizes(
    accounts=1, repeats=1, slow_repeats=1, scale_events=(700,), scale_accounts=(1,), progress_reports=(),
    mix_commands=100, probes=3, reads=2, http_concurrency=1,
)  # fmt: skip
"""For the smoke test: every workload and contender, in seconds (the strategy flow finding left out)."""


@dataclass
class Run:
    """The shared parts of one run."""

    dsn: str
    bootstrap: str
    broker: str
    sizes: Sizes
    log: Callable[[str], None] = print
    skipped: dict[str, str] = field(default_factory=dict)
    _mixes: dict[int, tuple[SeededAccount, list[Command]]] = field(default_factory=dict)

    def mix(self, index: int) -> tuple[SeededAccount, list[Command]]:
        if index not in self._mixes:
            self._mixes[index] = demo_commands(index)
        return self._mixes[index]

    def targets(self, index: int) -> Targets:
        seeded, commands = self.mix(index)
        return targets(seeded, commands, index)

    def settings(self, **updates: Any) -> Settings:
        return postgres_settings(self.dsn, kafka_bootstrap_servers=self.bootstrap, **updates)

    def crud(self) -> CrudStore:
        return CrudStore.create(self.dsn, new_schema(self.dsn, "crud"))


def _rate(count: int, seconds: float) -> float:
    return count / seconds


def _median_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


def _timed_each(function: Callable[[], object], times: int) -> list[float]:
    latencies = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        latencies.append(time.perf_counter() - started)
    return latencies


def mean_event_bytes(app: GamApplication, limit: int = 5_000) -> int:
    """Mean size of gam's stored events (state column): the ceilings write rows this big."""
    notifications = app.recorder.select_notifications(start=1, limit=limit)
    return round(statistics.mean(len(n.state) for n in notifications)) if notifications else 500


class HttpUnavailable(Exception):
    """gam's HTTP API cannot take the command mix (not installed, or endpoints missing)."""


def http_commands_rate(
    settings: Settings, traces: list[list[Command]], concurrency: int, *, views_apart: bool
) -> float:
    """The HTTP contenders, pluggable: ``bench.api`` starts ``gam serve`` on a fresh store and
    replays the traces from ``concurrency`` clients (JWT, If-Match from each ETag).
    ``views_apart``: the views written by ``gam project``, as ``docker-compose.yml`` runs
    them (``gam_http``); else by the server's own follower, in its process
    (``gam_http_one_process``)."""
    try:
        from bench.api import measure_http_commands
    except ImportError as missing:
        raise HttpUnavailable(f"bench.api cannot be imported ({missing})") from None
    return measure_http_commands(settings, traces, concurrency, views_apart=views_apart).commands_per_s


# -- workload: the demo's command mix ----------------------------------------------------------------------------


@dataclass
class Kept:
    """Stores the command-mix workload leaves behind for the relay workload."""

    app: GamApplication
    settings: Settings
    crud: CrudStore
    event_bytes: int


def commands_workload(run: Run) -> tuple[dict[str, Any], Kept]:
    sizes = run.sizes
    traces = [run.mix(index)[1][: sizes.mix_commands] for index in range(sizes.accounts)]
    commands = [command for trace in traces for command in trace]
    samples: dict[str, list[float]] = {
        "gam": [], "gam_http": [], "gam_http_one_process": [], "crud": [], "raw_eventsourcing": [], "ceiling": []
    }  # fmt: skip
    kept: Kept | None = None
    for repeat in range(sizes.repeats):
        run.log(f"commands: repeat {repeat + 1}/{sizes.repeats}")
        if kept is not None:
            kept.app.close()
            kept.crud.close()
        settings = run.settings()
        app = GamApplication(settings.eventsourcing_env())
        started = time.perf_counter()
        run_commands(app, commands)
        samples["gam"].append(_rate(len(commands), time.perf_counter() - started))
        crud = run.crud()
        started = time.perf_counter()
        crud.run_all(commands)
        samples["crud"].append(_rate(len(commands), time.perf_counter() - started))
        kept = Kept(app, settings, crud, mean_event_bytes(app))
        samples["raw_eventsourcing"].append(measure_raw(run.settings(), len(commands))["saves_per_s"])
        ceiling = Ceiling.create(run.dsn)
        samples["ceiling"].append(
            _rate(len(commands), sum(ceiling.one_row_per_commit(len(commands), kept.event_bytes)))
        )
        ceiling.close()
        if "gam_http" not in run.skipped:
            try:
                for name, apart in (("gam_http", True), ("gam_http_one_process", False)):
                    rate = http_commands_rate(run.settings(), traces, sizes.http_concurrency, views_apart=apart)
                    samples[name].append(rate)
            except HttpUnavailable as why:
                run.skipped["gam_http"] = str(why)
                run.log(f"commands: gam over HTTP left out: {why}")
    assert kept is not None
    result = {
        "unit": "commands/s",
        "higher_is_better": True,
        "size": {"accounts": sizes.accounts, "commands": len(commands)},
        "event_bytes": kept.event_bytes,
        "samples": {name: values for name, values in samples.items() if values},
    }
    return result, kept


# -- workload: relay to Kafka ------------------------------------------------------------------------------------


def relay_workload(run: Run, kept: Kept) -> dict[str, Any]:
    app, settings = kept.app, kept.settings
    events = app.recorder.max_notification_id() or 0
    messages = relayed_messages(app)
    rows = kept.crud.audit_rows()
    samples: dict[str, list[float]] = {"gam": [], "crud": [], "ceiling": []}
    for repeat in range(run.sizes.relay_repeats):
        run.log(f"relay: repeat {repeat + 1}/{run.sizes.relay_repeats}")
        samples["gam"].append(relay_rate(app, settings))
        producer = create_producer(settings)
        started = time.perf_counter()
        published = kept.crud.relay(producer, f"bench-outbox-{uuid.uuid4().hex[:8]}")
        samples["crud"].append(_rate(published, time.perf_counter() - started))
        producer.close()
        samples["ceiling"].append(bare_producer_rate(settings, messages))
    return {
        "unit": "events/s",
        "higher_is_better": True,
        "size": {"accounts": run.sizes.accounts, "gam_events": events, "crud_audit_rows": rows},
        "message_bytes": round(statistics.mean(len(m.value) for m in messages)),
        "samples": samples,
    }


# -- the large account: bulk import, then reads, as-of, rebuild --------------------------------------------------


@dataclass
class Built:
    """gam and CRUD stores holding the same accounts and histories."""

    settings: Settings
    app: GamApplication
    crud: CrudStore
    accounts: list[SeededAccount]
    histories: list[list[Change]]
    gam_import_s: float
    crud_import_s: float

    @property
    def events(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def close(self) -> None:
        self.app.close()
        self.crud.close()


def build(run: Run, accounts: int, events_per_account: int) -> Built:
    """Seed the accounts (untimed) and import each one's history (timed)."""
    settings = run.settings()
    app = GamApplication(settings.eventsourcing_env())
    crud = run.crud()
    seeded_accounts, histories = [], []
    gam_s = crud_s = 0.0
    for index in range(accounts):
        seeded, commands = run.mix(index)
        run_commands(app, commands)
        crud.run_all(commands)
        changes = history(run.targets(index), max(0, events_per_account - SEEDED_EVENTS))
        gam_s += gam_import(app, changes)
        crud_s += crud.bulk_import(seeded.account_id, changes)
        seeded_accounts.append(seeded)
        histories.append(changes)
    return Built(settings, app, crud, seeded_accounts, histories, gam_s, crud_s)


def import_workload(run: Run) -> tuple[dict[str, Any], Built]:
    """Import the large account's history into fresh stores, ``slow_repeats`` times; keep the last."""
    sizes = run.sizes
    samples: dict[str, list[float]] = {"gam": [], "crud": [], "ceiling": []}
    built: Built | None = None
    for repeat in range(sizes.slow_repeats):
        run.log(f"bulk import of {sizes.large:,} events: repeat {repeat + 1}/{sizes.slow_repeats}")
        if built is not None:
            built.close()
        built = build(run, 1, sizes.large)
        changes = len(built.histories[0])
        samples["gam"].append(_rate(changes, built.gam_import_s))
        samples["crud"].append(_rate(changes, built.crud_import_s))
        ceiling = Ceiling.create(run.dsn)
        seconds, _ = ceiling.copy(changes, mean_event_bytes(built.app))
        samples["ceiling"].append(_rate(changes, seconds))
        ceiling.close()
    assert built is not None
    result = {
        "unit": "events/s",
        "higher_is_better": True,
        "size": {"events_in_account": built.events, "imported": len(built.histories[0]), "batch": 1_000},
        "samples": samples,
    }
    return result, built


def measure_point(run: Run, built: Built) -> dict[str, Any]:
    """Command latency, view read latency, as-of time and rebuild time on one built store."""
    sizes = run.sizes
    account_id = built.accounts[0].account_id
    event_bytes = mean_event_bytes(built.app)
    point: dict[str, Any] = {"accounts": len(built.accounts), "events": built.events,
                             "events_per_account": built.events // len(built.accounts)}  # fmt: skip

    # Rebuild, as gam rebuild does it (shared out between processes from 100,000 events on
    # PostgreSQL); the first build of the views counts as the first sample.
    projector = Projector.open(built.app, built.settings)
    rebuild: dict[str, list[float]] = {"gam": [], "crud": [], "ceiling": []}
    for _ in range(sizes.slow_repeats if built.events < LARGE_REBUILD_EVENTS else 1):
        started = time.perf_counter()
        rebuild_views(projector, built.settings, processes=DEFAULT_PROCESSES)
        rebuild["gam"].append(time.perf_counter() - started)
    rebuild["crud"] = [built.crud.restore_from_audit() for _ in range(sizes.slow_repeats)]

    # As-of: near the end of the first account's history, read without the aggregate cache.
    moment = (built.histories[0][-1].meta.at if built.histories[0] else START) - AS_OF_BEFORE_END
    reader = GamApplication(built.settings.model_copy(update={"aggregate_cache_size": 0}).eventsourcing_env())
    as_of: dict[str, list[float]] = {"gam": [], "gam_entities_only": [], "crud": [], "ceiling": []}
    for _ in range(sizes.slow_repeats):
        as_of["gam"] += _timed_each(lambda: account_as_of(reader, projector, account_id, moment), 1)
        as_of["gam_entities_only"] += _timed_each(
            lambda: account_as_of(reader, projector, account_id, moment, with_view=False), 1
        )
        as_of["crud"] += _timed_each(lambda: built.crud.as_of(account_id, moment), 1)
    reader.close()

    # Ceilings for as-of and rebuild: the same number of event-sized rows, read back.
    ceiling = Ceiling.create(run.dsn)
    per_account = built.events // len(built.accounts)
    _, streams = ceiling.copy(built.events, event_bytes, streams=len(built.accounts))
    until = START + timedelta(minutes=built.events - len(built.accounts) * 10)
    for _ in range(sizes.slow_repeats):
        as_of["ceiling"].append(ceiling.read_stream(streams[0], until)[0])
        rebuild["ceiling"].append(ceiling.read_all()[0])
    ceiling.truncate()

    # View reads.
    reads = ReadModels(projector)
    document = reads.account_view(account_id, now=datetime.now(UTC)).data
    document_bytes = len(json.dumps(document, default=str))
    view: dict[str, list[float]] = {"gam": [], "crud": [], "ceiling": []}
    for _ in range(sizes.repeats):
        view["gam"].append(_median_ms(_timed_each(lambda: reads.account_view(account_id, now=datetime.now(UTC)),
                                                  sizes.reads)))  # fmt: skip
        view["crud"].append(_median_ms(_timed_each(lambda: built.crud.account_view(account_id), sizes.reads)))
        view["ceiling"].append(_median_ms(ceiling.document_reads(document_bytes, sizes.reads)))

    # Command latency: the history goes on, one command at a time, round robin over the accounts.
    latency: dict[str, list[float]] = {"gam": [], "crud": [], "ceiling": []}
    done = [len(h) for h in built.histories]
    for _ in range(sizes.repeats):
        probes = []
        for n in range(sizes.probes):
            index = n % len(built.accounts)
            probes.append(history(run.targets(index), 1, offset=done[index])[0].as_command())
            done[index] += 1
        latency["gam"].append(_median_ms([_time_command(lambda c=c: run_command(built.app, c)) for c in probes]))
        latency["crud"].append(_median_ms([_time_command(lambda c=c: built.crud.run(c)) for c in probes]))
        latency["ceiling"].append(_median_ms(ceiling.one_row_per_commit(sizes.probes, event_bytes)))
    ceiling.close()
    projector.close()

    point |= {
        "per_account_events": per_account,
        "document_bytes": document_bytes,
        "import_events_per_s": {"gam": _rate(sum(map(len, built.histories)), built.gam_import_s)
                                if built.gam_import_s else None,
                                "crud": _rate(sum(map(len, built.histories)), built.crud_import_s)
                                if built.crud_import_s else None},
        "command_latency_ms": latency,
        "view_read_ms": view,
        "as_of_s": as_of,
        "rebuild_s": rebuild,
    }  # fmt: skip
    return point


def strategy_flow_points(run: Run) -> list[dict[str, Any]]:
    """How building the strategy flow grows with one plan's progress reports, beside
    the account view and audit trail built from the same log."""
    points: list[dict[str, Any]] = []
    if not run.sizes.progress_reports:
        return points
    settings = run.settings()
    app = GamApplication(settings.eventsourcing_env())
    run_commands(app, run.mix(0)[1])
    projector = Projector.open(app, settings)
    reports = progress_reports(run.targets(0), max(run.sizes.progress_reports))
    done = 0
    for count in sorted(run.sizes.progress_reports):
        run.log(f"strategy flow: a plan with {count:,} progress reports")
        gam_import(app, reports[done:count])
        done = count
        point: dict[str, Any] = {"progress_reports": count, "events": app.recorder.max_notification_id() or 0}
        for views in (("strategy_flow",), ("account_view", "audit_trail")):
            started = time.perf_counter()
            projector.rebuild(views)
            point["_and_".join(views) + "_s"] = time.perf_counter() - started
        points.append(point)
    projector.close()
    app.close()
    return points


def _time_command(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


# -- the run -----------------------------------------------------------------------------------------------------

RATIOS: dict[str, tuple[tuple[str, str], ...]] = {
    "commands": (("gam", "crud"), ("gam", "ceiling"), ("crud", "ceiling"), ("gam", "raw_eventsourcing"),
                 ("gam_http", "gam"), ("gam_http", "crud"), ("gam_http_one_process", "gam")),
}  # fmt: skip
DEFAULT_RATIOS = (("gam", "crud"), ("gam", "ceiling"), ("crud", "ceiling"))


def summarise(workload: dict[str, Any], name: str) -> dict[str, Any]:
    """Median with min–max per contender, and speed ratios of medians (above 1: the first is faster)."""
    samples: dict[str, list[float]] = workload["samples"]
    figures = {contender: spread(values) for contender, values in samples.items() if values}
    ratios = {}
    for a, b in RATIOS.get(name, DEFAULT_RATIOS):
        if a in figures and b in figures:
            x, y = figures[a]["median"], figures[b]["median"]
            ratios[f"{a}_vs_{b}"] = x / y if workload["higher_is_better"] else y / x
    return {**workload, "figures": figures, "ratios": ratios}


def summarise_point(point: dict[str, Any]) -> dict[str, Any]:
    out = dict(point)
    for metric in ("command_latency_ms", "view_read_ms", "as_of_s", "rebuild_s"):
        samples = point[metric]
        figures = {c: spread(v) for c, v in samples.items() if v}
        ratios = {f"{a}_vs_{b}": figures[b]["median"] / figures[a]["median"] for a, b in DEFAULT_RATIOS
                  if a in figures and b in figures}  # fmt: skip
        out[metric] = {"samples": samples, "figures": figures, "ratios": ratios}
    return out


def run_suite(
    dsn: str, bootstrap: str, broker: str, sizes: Sizes, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every workload and contender at ``sizes``; returns the result document."""
    run = Run(dsn, bootstrap, broker, sizes, log)
    begun = time.perf_counter()
    load_before = os.getloadavg()
    workloads: dict[str, Any] = {}
    commands, kept = commands_workload(run)
    workloads["commands"] = summarise(commands, "commands")
    workloads["relay"] = summarise(relay_workload(run, kept), "relay")
    kept.app.close()
    kept.crud.close()

    imported, large = import_workload(run)
    workloads["bulk_import"] = summarise(imported, "bulk_import")
    points: dict[tuple[int, int], dict[str, Any]] = {}
    small = min(sizes.scale_events)
    for events in sorted(sizes.scale_events):
        log(f"scaling: 1 account of {events:,} events")
        built = large if events == sizes.large else build(run, 1, events)
        points[(1, events)] = summarise_point(measure_point(run, built))
        built.close()
    for accounts in sorted(sizes.scale_accounts):
        if (accounts, small) not in points:
            log(f"scaling: {accounts} accounts of {small:,} events")
            built = build(run, accounts, small)
            points[(accounts, small)] = summarise_point(measure_point(run, built))
            built.close()

    strategy_flow = strategy_flow_points(run)
    top = points[(1, sizes.large)]
    for name, metric, unit in (("view_read", "view_read_ms", "ms per read"), ("as_of", "as_of_s", "s per query"),
                               ("rebuild", "rebuild_s", "s per rebuild")):  # fmt: skip
        workload = {"unit": unit, "higher_is_better": False,
                    "size": {"events_in_account": top["events"], "document_bytes": top["document_bytes"]},
                    "samples": top[metric]["samples"]}  # fmt: skip
        workloads[name] = summarise(workload, name)

    http_status = run.skipped.get("gam_http")
    return {
        "benchmark": "gam",
        "machine": machine_facts(dsn, ("fastapi", "uvicorn", "httpx", "kafka-python", "matplotlib"))
        | {"broker": broker, "load_average_1m": {"start": load_before[0], "end": os.getloadavg()[0]}},
        "sizes": asdict(sizes),
        "seconds": round(time.perf_counter() - begun, 1),
        "workloads": {name: workloads[name] for name in WORKLOAD_ORDER},
        "left_out": {"gam_http": http_status} if http_status else {},
        "scaling": {
            "events_per_account": [points[(1, e)] for e in sorted(sizes.scale_events)],
            "accounts": [points[(a, small)] for a in sorted(sizes.scale_accounts)],
        },
        "strategy_flow_build": strategy_flow,
    }


WORKLOAD_ORDER = ("commands", "bulk_import", "view_read", "as_of", "rebuild", "relay")


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")

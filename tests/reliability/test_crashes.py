"""kill -9 of each of gam's processes during sustained load: the API server
(``gam serve``), the projector (``gam project``) and the relay (``gam relay``),
each its own OS process as an operator runs them, on PostgreSQL and a real
Kafka-protocol broker. After each is restarted: every command that got a 2xx is
in the store as answered, nothing refused is, the views equal a rebuild from the
log, and a downstream consumer has every event (duplicates are counted).

The fast test kills each process once; ``pytest -m reliability`` adds a longer
run that kills them again and again on a realistic account.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from infra.views_lease import ViewsLease
from services.app import GamApplication
from services.projector import Projector, open_view
from services.relay import relay_view_name
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
    small_account,
    stored_events,
    views_equal_a_rebuild,
    wait_for,
)

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@dataclass
class Stack:
    """gam's three processes on one store and one topic."""

    api: ApiServer
    projector: GamProcess
    relay: GamProcess

    def all(self) -> tuple[GamProcess, ...]:
        return (self.api, self.projector, self.relay)


def writer_name(application_name: str | None, stack: Stack) -> str | None:
    """Which of the processes holds the views lease."""
    for process in (stack.api, stack.projector):
        if application_name == f"gam views lease {process.pid}":
            return process.name
    return application_name


def crash_under_load(
    settings: Settings,
    workdir: Path,
    *,
    realistic: bool,
    rounds: int,
    clients: int,
    between_faults: float,
    name: str,
) -> dict[str, Any]:
    """Run the load, kill -9 each process ``rounds`` times (restarting it), then check everything."""
    app = GamApplication(settings.eventsourcing_env())
    account = demo_account(app) if realistic else small_account(app)
    baseline = app.recorder.max_notification_id() or 0
    targets = [t for group in account.targets().values() for t in group]
    env = gam_env(settings)
    stack = Stack(
        ApiServer(env, workdir),
        GamProcess("projector", ["project"], env, workdir),
        GamProcess("relay", ["relay"], env, workdir),
    )
    ledger = Ledger()
    where = (account.account_id, account.hq)
    clients_ = [
        Client(stack.api.base_url, ledger, targets, seed=n, account=where, creates=0.05) for n in range(clients)
    ]
    load = Load(clients_)
    views = Projector.open(app, settings)
    lease = ViewsLease(settings)  # asked only who holds it
    relay_tracking = open_view(settings, relay_view_name(settings.kafka_topic))
    faults: list[dict[str, Any]] = []
    order = random.Random(rounds)
    try:
        stack.projector.start()  # the projector writes the views; the API's follower stands by
        wait_for(lambda: "following new events" in stack.projector.log.read_text(), 120, "the projector to follow")
        stack.relay.start()
        stack.api.start()
        started = time.monotonic()
        load.start()
        for _ in range(rounds):
            for process in order.sample(stack.all(), 3):
                time.sleep(between_faults)
                last = app.recorder.max_notification_id() or 0
                fault: dict[str, Any] = {"killed": process.name, "log_position": last}
                fault["views_at"] = min(views.positions().values())
                fault["relay_at"] = relay_tracking.max_tracking_id(app.name) or 0
                fault["views_writer"] = writer_name(lease.writer(), stack)
                acknowledged = len(ledger.acknowledged)
                process.kill9()
                time.sleep(0.5)
                restarted = time.monotonic()
                process.start()
                if isinstance(process, ApiServer):
                    process.wait_ready()
                fault["restart_seconds"] = round(time.monotonic() - restarted, 2)
                fault["acknowledged_while_down"] = len(ledger.acknowledged) - acknowledged
                faults.append(fault)
        time.sleep(between_faults)
        load.finish()
        load_seconds = time.monotonic() - started
        last = app.recorder.max_notification_id() or 0
        wait_for(lambda: min(views.positions().values()) >= last, 180, "the projector to catch up")
        wait_for(lambda: (relay_tracking.max_tracking_id(app.name) or 0) >= last, 180, "the relay to catch up")
    finally:
        load.stop.set()
        for process in stack.all():
            process.stop()
        views.close()
        getattr(relay_tracking, "close", lambda: None)()

    verdict = check_store(app, ledger, baseline)
    final_state = check_final_state(app, ledger)
    same = views_equal_a_rebuild(app, settings)
    downstream = check_downstream(app, settings.kafka_bootstrap_servers, settings.kafka_topic)
    figures = {
        "test": name,
        **ledger.summary(),
        "in_doubt_stored": verdict.in_doubt_stored,
        "events_stored": len(stored_events(app)),
        "events_lost": len(verdict.lost),
        "faults": faults,
        "load_seconds": round(load_seconds, 1),
        "acknowledged_per_second": round(len(ledger.acknowledged) / load_seconds, 1),
        "downstream": vars(downstream),
        "views_equal_rebuild": same,
        "problems": {**verdict.problems(), **({"final_state": final_state[:5]} if final_state else {})},
    }
    app.close()
    record_figures(figures)
    assert not ledger.server_errors, ledger.server_errors[:3]
    assert not ledger.unexpected, ledger.unexpected[:3]
    assert {a.status for a in ledger.refused} <= {409, 412}
    assert not verdict.problems(), verdict.problems()
    assert not final_state, final_state
    assert same, "the views differ from a rebuild"
    assert downstream.missing == 0, downstream
    return figures


def test_kill_9_of_api_projector_and_relay_under_load_loses_nothing(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"kafka_bootstrap_servers": kafka_bootstrap})
    figures = crash_under_load(
        settings, tmp_path, realistic=False, rounds=1, clients=4, between_faults=2.0, name="crashes (fast)"
    )
    assert [f["killed"] for f in figures["faults"]].count("api") == 1
    assert {f["views_writer"] for f in figures["faults"] if f["killed"] == "projector"} == {"projector"}
    assert figures["acknowledged"] > 0


@pytest.mark.reliability
def test_repeated_kill_9_of_every_process_on_a_realistic_account_loses_nothing(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"kafka_bootstrap_servers": kafka_bootstrap})
    figures = crash_under_load(
        settings, tmp_path, realistic=True, rounds=5, clients=6, between_faults=4.0, name="crashes (long)"
    )
    assert len(figures["faults"]) == 15

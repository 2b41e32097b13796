"""Sampling decided at the head of a request: the configured sampler is asked once,
before the FastAPI and psycopg instrumentations run; a request it drops starts no
span (not even a non-recording one per SQL statement) and stores a ``traceparent``
flagged unsampled, so the views' writer and the relay drop its trace too; a request it
keeps is traced whole (real PostgreSQL, the SDK's in-memory exporter)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from infra.settings import Settings
from services.api.app import create_app
from services.observability import tracing
from tests.api_support import ADMIN, SECRET
from tests.integration.test_observability import account_body
from tests.unit.test_tracing import stored_traceparents

pytestmark = pytest.mark.postgres

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Asked(Sampler):
    """The chosen sampler, noting the name of every span it is asked about, but for those
    of the views' follower (its own thread, following the log beside the requests)."""

    def __init__(self, chosen: Sampler) -> None:
        self.chosen = chosen
        self.names: list[str] = []
        self._lock = threading.Lock()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if threading.current_thread().name != "gam-views":
            with self._lock:
                self.names.append(name)
        return self.chosen.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"Asked({self.chosen.get_description()})"


@pytest.fixture
def settings(postgres_settings: Settings) -> Settings:
    return postgres_settings.model_copy(update={"jwt_secret": SECRET})


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    tracing.disable()


def create_account(settings: Settings, headers: dict[str, str] | None = None) -> str | None:
    """POST one account (one event); the traceparent stored with its event."""
    with TestClient(create_app(settings)) as client:
        created = client.post("/accounts", json=account_body(uuid4(), uuid4()), headers={**ADMIN, **(headers or {})})
        assert created.status_code == 201, created.json()
        return stored_traceparents(client.app.state.runtime.app)[-1]  # type: ignore[attr-defined]


def test_a_dropped_request_asks_once_starts_no_span_and_stores_its_decision(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    asked = Asked(ParentBased(ALWAYS_OFF))
    tracing.enable(spans, batch=False, sampler=asked)

    stored = create_account(settings)

    assert asked.names == ["http request"]
    assert [s.name for s in spans.get_finished_spans()] == []
    assert stored is not None
    assert tracing.valid_traceparent(stored) == stored
    assert stored.endswith("-00"), "the commit stores the request's trace flagged unsampled"


def test_a_kept_request_is_traced_whole_and_the_sampler_is_asked_once(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    asked = Asked(ParentBased(ALWAYS_ON))
    tracing.enable(spans, batch=False, sampler=asked)

    stored = create_account(settings)

    assert "POST /accounts" not in asked.names, "the request's span is not asked about again"
    assert asked.names[0] == "http request"
    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.kind is SpanKind.SERVER and s.name == "POST /accounts")
    attributes = dict(server.attributes or {})
    assert (attributes["http.route"], attributes["http.request.method"]) == ("/accounts", "POST")
    assert attributes["http.response.status_code"] == 201
    in_trace = {s.name for s in finished if s.context.trace_id == server.context.trace_id}
    assert {"gam command create_account", "gam commit"} <= in_trace
    assert any(s.kind is SpanKind.CLIENT for s in finished if s.context.trace_id == server.context.trace_id)
    assert stored is not None
    assert stored.split("-")[1] == f"{server.context.trace_id:032x}"
    assert int(stored.split("-")[3], 16) & 1, "flagged sampled"


def test_the_callers_sampled_flag_decides(settings: Settings, spans: InMemorySpanExporter) -> None:
    tracing.enable(spans, batch=False, sampler=ParentBased(ALWAYS_OFF))
    stored = create_account(settings, {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == CALLER_SPAN
    assert stored is not None
    assert stored.split("-")[1] == CALLER_TRACE

    spans.clear()
    tracing.enable(spans, batch=False, sampler=ParentBased(ALWAYS_ON))
    unsampled = f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"
    assert create_account(settings, {"traceparent": unsampled}) == unsampled
    assert [s.name for s in spans.get_finished_spans() if s.name != "gam project batch"] == []

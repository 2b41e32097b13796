"""Tracing on the write path: a traced commit stores its own span's context with each
event (and a log line written inside it names that trace); with tracing off nothing
is stored unless a caller sent a ``traceparent``, and a malformed one is dropped."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from domain.commands import CreateAccount
from services.app import GamApplication
from services.handlers import bus_for
from services.observability import logs, tracing
from tests.support import meta


def create_account() -> CreateAccount:
    return CreateAccount(name="Nordwind", industry="Machinery", hq_country="DE", reporting_currency="EUR")


def stored_traceparents(app: GamApplication) -> list[str | None]:
    notifications = app.recorder.select_notifications(start=1, limit=100)
    return [getattr(app.mapper.to_domain_event(n), "traceparent", None) for n in notifications]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.disable()


def test_a_traced_commit_stores_its_span_with_every_event(
    memory_app: GamApplication, spans: InMemorySpanExporter
) -> None:
    bus_for(memory_app).handle(create_account(), meta())
    commit = next(s for s in spans.get_finished_spans() if s.name == "gam commit")
    command = next(s for s in spans.get_finished_spans() if s.name == "gam command create_account")
    assert commit.parent is not None
    assert commit.parent.span_id == command.context.span_id
    context = commit.context
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    assert stored_traceparents(memory_app) == [expected]


def test_log_lines_inside_a_span_carry_its_trace_id(spans: InMemorySpanExporter) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    logs.configure("test", "json", stream=out)
    try:
        with tracing.span("work"):
            logging.getLogger("gam.test").info("inside")
        logging.getLogger("gam.test").info("outside")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    (work,) = spans.get_finished_spans()
    assert inside["trace_id"] == f"{work.context.trace_id:032x}"
    assert "trace_id" not in outside


def test_untraced_commits_store_no_trace_context(memory_app: GamApplication) -> None:
    assert not tracing.enabled
    bus_for(memory_app).handle(create_account(), meta())
    assert stored_traceparents(memory_app) == [None]


def test_without_tracing_a_callers_traceparent_is_stored_as_it_came(memory_app: GamApplication) -> None:
    sent = f"00-{uuid4().hex}-{uuid4().hex[:16]}-01"
    token = tracing.incoming.set(tracing.valid_traceparent(sent))
    try:
        bus_for(memory_app).handle(create_account(), meta())
    finally:
        tracing.incoming.reset(token)
    assert stored_traceparents(memory_app) == [sent]


@given(trace=st.integers(0, 2**128 - 1), span=st.integers(0, 2**64 - 1), flags=st.integers(0, 255))
def test_a_traceparent_is_valid_exactly_when_both_ids_are_non_zero(trace: int, span: int, flags: int) -> None:
    text = f"00-{trace:032x}-{span:016x}-{flags:02x}"
    assert (tracing.valid_traceparent(text) == text) is (trace != 0 and span != 0)


@pytest.mark.parametrize("junk", ["", "00-abc", "01-" + "a" * 32 + "-" + "b" * 16 + "-01", "00-" + "a" * 32 + "-01"])
def test_malformed_traceparents_are_dropped(junk: str) -> None:
    assert tracing.valid_traceparent(junk) is None


def test_an_instrumentation_named_as_disabled_is_left_off() -> None:
    """``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=psycopg``: no span per SQL statement."""
    import psycopg

    def instrumented() -> bool:
        return hasattr(psycopg.Connection.connect, "__wrapped__")

    tracing.enable(InMemorySpanExporter(), batch=False, without=frozenset({"psycopg"}))
    try:
        assert not instrumented()
    finally:
        tracing.disable()
    tracing.enable(InMemorySpanExporter(), batch=False)
    try:
        assert instrumented()
    finally:
        tracing.disable()
    assert not instrumented()


def test_a_query_outside_any_span_is_not_traced_and_one_inside_is(spans: InMemorySpanExporter) -> None:
    """A client span (psycopg's, for one) without a parent is background work, dropped."""
    from opentelemetry.trace import SpanKind

    assert tracing._tracer is not None
    with tracing._tracer.start_as_current_span("SELECT 1", kind=SpanKind.CLIENT):
        pass
    with tracing.span("gam commit"), tracing._tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT):
        pass
    assert sorted(s.name for s in spans.get_finished_spans()) == ["INSERT", "gam commit"]


def traceparent(trace: int, span: int, sampled: bool) -> str:
    return f"00-{trace:032x}-{span:016x}-{'01' if sampled else '00'}"


def test_a_batch_is_a_child_of_its_first_kept_trace_and_links_the_other_kept_ones(
    spans: InMemorySpanExporter,
) -> None:
    events = [traceparent(1, 11, False), traceparent(2, 22, True), traceparent(3, 33, True), traceparent(2, 23, True)]
    with tracing.batch("gam project batch", events), tracing.span("inside"):
        pass
    batch = next(s for s in spans.get_finished_spans() if s.name == "gam project batch")
    assert batch.parent is not None
    assert (batch.context.trace_id, batch.parent.span_id) == (2, 22)
    assert [(link.context.trace_id, link.context.span_id) for link in batch.links] == [(3, 33)]
    assert {s.name for s in spans.get_finished_spans()} == {"gam project batch", "inside"}


def test_a_batch_of_dropped_traces_only_runs_with_instrumentation_off(spans: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    with tracing.batch("gam project batch", [traceparent(1, 11, False), traceparent(2, 22, False)]):
        assert not is_instrumentation_enabled(), "no SQL statement's span is even started"
        with tracing.span("inside"):
            pass
    assert is_instrumentation_enabled()
    assert spans.get_finished_spans() == ()


def test_a_batch_of_untraced_events_starts_a_trace_of_its_own(spans: InMemorySpanExporter) -> None:
    with tracing.batch("gam project batch", [None, None]):
        pass
    (batch,) = spans.get_finished_spans()
    assert batch.parent is None


def test_a_background_loop_runs_without_instrumentation_until_a_batch_continues_a_kept_trace(
    spans: InMemorySpanExporter,
) -> None:
    """The views' follower and the relay poll under :func:`tracing.background`: their own SQL
    starts no span, while a batch of a kept trace is traced whole, its SQL included."""
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled
    from opentelemetry.trace import SpanKind

    assert tracing._tracer is not None
    with tracing.background():
        assert not is_instrumentation_enabled()
        with tracing.batch("gam project batch", [traceparent(1, 11, False)]):
            assert not is_instrumentation_enabled()
        with tracing.batch("gam project batch", [traceparent(2, 22, True)]):
            assert is_instrumentation_enabled()
            with tracing._tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT):
                pass
        assert not is_instrumentation_enabled()
    assert is_instrumentation_enabled()
    insert, batch = spans.get_finished_spans()
    assert (batch.name, batch.context.trace_id) == ("gam project batch", 2)
    assert insert.parent is not None
    assert insert.parent.span_id == batch.context.span_id


def test_without_tracing_a_background_loop_touches_nothing() -> None:
    assert not tracing.enabled
    with tracing.background():
        assert tracing.current_traceparent() is None


class Recorded:
    """An ASGI app that notes how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, bool]] = []

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        from opentelemetry.instrumentation.utils import is_instrumentation_enabled

        self.calls.append((is_instrumentation_enabled(), tracing.head_kept.get()))


@pytest.mark.parametrize("sampled", [True, False])
def test_the_head_serves_a_kept_request_in_a_server_span_and_a_dropped_one_without_instrumentation(
    sampled: bool,
) -> None:
    import asyncio

    from opentelemetry.sdk.trace import sampling
    from opentelemetry.trace import SpanKind

    spans = InMemorySpanExporter()
    tracing.enable(spans, batch=False, sampler=sampling.ParentBased(sampling.ALWAYS_ON))
    try:
        app = Recorded()
        headers = [(b"traceparent", traceparent(7, 77, sampled).encode())]
        scope = {"type": "http", "method": "GET", "path": "/accounts/1", "headers": headers}
        asyncio.run(tracing.HeadSampler(app)(scope, None, None))
    finally:
        tracing.disable()
    assert app.calls == ([(True, True)] if sampled else [(False, False)])
    finished = spans.get_finished_spans()
    if not sampled:
        assert finished == ()
        return
    (server,) = finished
    assert (server.kind, server.name, server.context.trace_id) == (SpanKind.SERVER, "GET", 7)
    assert server.parent is not None
    assert server.parent.span_id == 77
    assert dict(server.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/accounts/1",
        "url.scheme": "http",
        "http.response.status_code": 500,  # the app sent no response
    }

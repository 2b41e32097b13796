"""Traces with OpenTelemetry: one trace from an HTTP request through the commit to
the views and the Kafka message.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (or a test calls :func:`enable`
with an exporter of its own): then every helper here is a flag test and nothing
else, so a process that does not trace pays nothing measurable. On, it installs
the psycopg and kafka-python instrumentations and gam's own spans: an HTTP
request (:class:`HeadSampler`), a command on the bus, its commit, a projection
batch, a relay batch.

The trace context travels with the data, not with the process: the commit stores
the W3C ``traceparent`` of its span in each event's stored state (beside the
correlation id), the views' writer and the relay read it back and continue that
trace, and the relay's record carries it in its ``traceparent`` header. With
tracing off, a ``traceparent`` the caller sent is stored and forwarded as it came,
so a tracing system upstream still sees its trace reach the broker.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import SpanContext, Tracer

log = logging.getLogger(__name__)

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
MAX_LINKS = 32
"""Links a batch span keeps to the traces of the events in it (a rebuild's batch holds thousands)."""

enabled = False
"""Whether this process traces; read on every hot path, so a plain module flag."""

incoming: ContextVar[str | None] = ContextVar("gam_incoming_traceparent", default=None)
"""The ``traceparent`` a caller sent, valid, while its request is handled (stored when not tracing)."""

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_instrumentors: list[Any] = []
_options = {"http": True}
_sampler: Sampler | None = None
"""The sampler ``OTEL_TRACES_SAMPLER`` names, which :class:`HeadSampler` asks first."""

head_kept: ContextVar[bool] = ContextVar("gam_head_kept", default=False)
""":class:`HeadSampler` chose to keep this request's trace: its server span, which starts a
new trace when the caller sent none, is kept without asking the sampler again (a ratio
sampler would decide anew on the span's own trace id)."""


def configured_from_environment(process: str) -> bool:
    """Trace to the OTLP endpoint of ``OTEL_EXPORTER_OTLP_ENDPOINT`` (HTTP/protobuf; the
    exporter reads the other ``OTEL_EXPORTER_OTLP_*`` settings itself), if it is set."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    without = frozenset(name.strip() for name in disabled.split(",") if name.strip())
    enable(OTLPSpanExporter(), service=os.environ.get("OTEL_SERVICE_NAME") or f"gam-{process}", without=without)
    where = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    log.info("tracing to %s", where)
    return True


def enable(
    exporter: SpanExporter,
    *,
    service: str = "gam",
    batch: bool = True,
    without: frozenset[str] = frozenset(),
    sampler: Sampler | None = None,
) -> TracerProvider:
    """Trace from now on into ``exporter`` (``batch``: in a background thread, as in
    production; a test passes ``batch=False`` to see each span as it ends). The provider is
    gam's own, not the process-wide global one, so a test can turn it on and off again.

    ``without``: instrumentations left off, by the names OpenTelemetry's
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` uses (``psycopg``: no span per SQL statement,
    the largest part of tracing's cost; ``kafka``; ``fastapi``: no server span per request,
    the trace of a kept request starts at the bus). ``sampler``: instead of the one
    ``OTEL_TRACES_SAMPLER`` names."""
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider, sampling
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    global enabled, _provider, _tracer, _sampler
    disable()
    _sampler = sampler or sampling._get_from_env_or_default()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), sampler=_without_orphan_queries(_sampler)
    )
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    chosen: dict[str, Callable[[], Any]] = {"psycopg": PsycopgInstrumentor, "kafka": KafkaInstrumentor}
    for instrumentor in (make() for name, make in chosen.items() if name not in without):
        try:
            instrumentor.instrument(tracer_provider=provider, skip_dep_check=True)
        except Exception as error:  # an instrumentation that does not fit this version: trace without it
            log.warning("tracing without %s (%s)", type(instrumentor).__name__, error)
            continue
        _instrumentors.append(instrumentor)
    _provider, _tracer, enabled = provider, provider.get_tracer("gam"), True
    _options["http"] = "fastapi" not in without
    return provider


def _without_orphan_queries(configured: Sampler) -> Sampler:
    """The ``configured`` sampler (``OTEL_TRACES_SAMPLER``'s, always on by default), except
    that a client span with no parent is dropped: the SQL of the views' follower polling
    the log, of the readiness check and of the database watch, a trace of its own each
    time and most of what a traced server recorded, while it served nothing anyone asked.
    A request :class:`HeadSampler` chose to keep starts its trace without asking again."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import sampling

    class WithoutOrphanQueries(sampling.Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: Any = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> sampling.SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            if kind is trace.SpanKind.CLIENT and not parent.is_valid:
                return sampling.SamplingResult(sampling.Decision.DROP)
            if not parent.is_valid and head_kept.get():
                return sampling.SamplingResult(sampling.Decision.RECORD_AND_SAMPLE, attributes)
            return configured.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"WithoutOrphanQueries({configured.get_description()})"

    return WithoutOrphanQueries()


def disable() -> None:
    """Stop tracing: flush what was traced, take the instrumentations off."""
    global enabled, _provider, _tracer, _sampler
    enabled = False
    _sampler = None
    while _instrumentors:
        _instrumentors.pop().uninstrument()
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def instrument_app(app: FastAPI) -> None:
    """A server span per HTTP request, continuing the caller's ``traceparent``, for the
    requests :class:`HeadSampler` keeps."""
    if not enabled:
        return
    plain = app.build_middleware_stack
    # Outside every middleware of the app: Starlette calls this when it builds its stack.
    app.build_middleware_stack = lambda: HeadSampler(plain())  # type: ignore[method-assign]


UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")


class HeadSampler:
    """Decides whether a request's trace is kept before any instrumentation sees it, and
    starts the server span of a kept one.

    The sampler alone decides only when a span starts, so an unsampled request still
    paid for a (non-recording) span per SQL statement and per gam step: one trace kept
    in ten cost nearly what keeping all did. Here the configured sampler is asked once,
    on the caller's ``traceparent`` or a new trace id; a request it drops runs with
    OpenTelemetry's instrumentation suppressed (the instrumentations' own switch), and,
    if the caller sent no ``traceparent``, with one flagged unsampled, which the commit
    stores and the relay forwards, so the views' writer, the relay and consumers
    downstream drop that trace too.

    The server span is gam's own (the stable HTTP conventions' method, path, route and
    status), not the FastAPI instrumentation's: that one matched the request against
    every route again to name its span and decoded every header for its attributes,
    some 1,000 Python calls a kept request, a seventh of a whole command's; this span
    takes the route the router already matched (``scope["route"]``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        sampler = _sampler
        if scope["type"] != "http" or sampler is None:
            await self.app(scope, receive, send)
            return
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        if scope["path"] not in UNTRACED_PATHS:
            kept, parent = self._keeps(scope, sampler)
            if kept:
                token = head_kept.set(True)
                try:
                    await (
                        self._served(scope, receive, send, parent)
                        if _options["http"]
                        else self.app(scope, receive, send)
                    )
                finally:
                    head_kept.reset(token)
                return
        with suppress_instrumentation():
            await self.app(scope, receive, send)

    async def _served(self, scope: Any, receive: Any, send: Any, parent: SpanContext | None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        assert _tracer is not None  # a sampler is set only while tracing
        method = scope["method"]
        status = 500  # unless the app answers

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else None
        attributes = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        with _tracer.start_as_current_span(
            method, context=context, kind=SpanKind.SERVER, attributes=attributes
        ) as server:
            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    server.update_name(f"{method} {route}")
                    server.set_attribute("http.route", route)
                server.set_attribute("http.response.status_code", status)
                if status >= 500:
                    server.set_status(Status(StatusCode.ERROR))

    @staticmethod
    def _keeps(scope: Any, sampler: Sampler) -> tuple[bool, SpanContext | None]:
        """Whether the request's trace is kept, and the caller's span it continues, if any."""
        from opentelemetry import trace
        from opentelemetry.sdk.trace.sampling import Decision

        headers = scope.get("headers", ())
        sent = next((valid_traceparent(v.decode("latin-1")) for k, v in headers if k == b"traceparent"), None)
        parent = _span_context(sent)
        trace_id = parent.trace_id if parent is not None else random.getrandbits(128) or 1
        parent_context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else None
        decision = sampler.should_sample(parent_context, trace_id, "http request", trace.SpanKind.SERVER).decision
        kept = decision is Decision.RECORD_AND_SAMPLE
        if not kept and parent is None:
            unsampled = f"00-{trace_id:032x}-{random.getrandbits(64) or 1:016x}-00"
            scope["headers"] = [*(h for h in headers if h[0] != b"traceparent"), (b"traceparent", unsampled.encode())]
        return kept, parent


def span(name: str, attributes: dict[str, Any] | None = None) -> Any:
    """A span of gam's around the block, child of the current one (nothing when off, or
    in a request whose trace :class:`HeadSampler` dropped)."""
    if not enabled or _tracer is None or _suppressed():
        return nullcontext()
    return _tracer.start_as_current_span(name, attributes=attributes)


@contextmanager
def batch(
    name: str,
    traceparents: Iterable[str | None],
    attributes: dict[str, Any] | None = None,
    start_time: int | None = None,
) -> Iterator[None]:
    """A span for a batch of events from many traces: a child of the first kept trace's
    event (so one command's trace reaches its batch), linked to the other kept traces.
    If every event's trace was dropped where it began (stored flagged unsampled), so is
    the batch's part of them: no span, and instrumentation suppressed inside, as
    :class:`HeadSampler` does for the request."""
    if not enabled or _tracer is None:
        yield
        return
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    from opentelemetry.trace import Link

    kept: dict[int, SpanContext] = {}
    dropped = False
    for traceparent in traceparents:
        found = _span_context(traceparent)
        if found is None:
            continue
        if not found.trace_flags.sampled:
            dropped = True
        elif len(kept) < MAX_LINKS:
            kept.setdefault(found.trace_id, found)
    if dropped and not kept:
        with suppress_instrumentation():
            yield
        return
    ordered = list(kept.values())
    context = trace.set_span_in_context(trace.NonRecordingSpan(ordered[0])) if ordered else None
    links = [Link(c) for c in ordered[1:]]
    # From an empty context: the loop around (see background()) runs with instrumentation
    # suppressed, and the batch's SQL belongs in the trace it continues.
    token = otel_context.attach(otel_context.Context())
    try:
        with _tracer.start_as_current_span(
            name, context=context, links=links, attributes=attributes, start_time=start_time
        ):
            yield
    finally:
        otel_context.detach(token)


def background() -> Any:
    """Instrumentation suppressed for a background loop (the views' follower, the relay):
    its own SQL (polling the log, the lease, positions) belongs to no request's trace, and
    a span started for each statement only to be dropped is not free (on the command path,
    tracing on with every span dropped cost about 0.85 ms a command more than suppressed).
    A :func:`batch` inside that continues a kept trace turns instrumentation back on."""
    if not enabled:
        return nullcontext()
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


@contextmanager
def under(traceparent: str | None) -> Iterator[None]:
    """Make the stored context current without a span of its own: what the kafka-python
    instrumentation's send span, started inside, takes as its parent."""
    parent = _span_context(traceparent) if enabled else None
    if parent is None:
        yield
        return
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def consumer_span(name: str, traceparent: str | None, attributes: dict[str, Any] | None = None) -> Iterator[None]:
    """A consumer's span for one record, a child of the record's ``traceparent`` (the
    relay's send, under the commit that stored the event), so the consumer's work sits
    in the trace the request started (nothing when off)."""
    if not enabled or _tracer is None:
        yield
        return
    from opentelemetry import trace

    parent = _span_context(traceparent)
    context = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None else None
    with _tracer.start_as_current_span(name, context=context, kind=trace.SpanKind.CONSUMER, attributes=attributes):
        yield


def _suppressed() -> bool:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    return not is_instrumentation_enabled()


def kafka_headers_traced() -> bool:
    """Whether the kafka-python instrumentation writes each record's ``traceparent``."""
    return enabled and any(type(i).__name__ == "KafkaInstrumentor" for i in _instrumentors)


def current_traceparent() -> str | None:
    """What to store with an event: the current span's context when tracing, else the
    caller's own ``traceparent`` (None without either)."""
    if enabled:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    return incoming.get()


def current_trace_id() -> str | None:
    """The trace id for log lines: the current span's, else the caller's."""
    if enabled:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return f"{context.trace_id:032x}"
    found = TRACEPARENT.match(incoming.get() or "")
    return found.group(1) if found else None


def valid_traceparent(value: str | None) -> str | None:
    """``value`` if it is a W3C ``traceparent`` of version 00 with non-zero ids, else None."""
    found = TRACEPARENT.match(value or "")
    if found is None or set(found.group(1)) == {"0"} or set(found.group(2)) == {"0"}:
        return None
    return value


def _span_context(traceparent: str | None) -> SpanContext | None:
    found = TRACEPARENT.match(traceparent or "")
    if found is None:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags

    flags = TraceFlags(int(found.group(3), 16))
    context = SpanContext(int(found.group(1), 16), int(found.group(2), 16), is_remote=True, trace_flags=flags)
    return context if context.is_valid else None

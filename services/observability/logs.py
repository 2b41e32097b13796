"""Log lines of every gam process, configured once at start-up.

Readable text on a terminal by default; one JSON object a line with
``GAM_LOG_FORMAT=json``, for a log shipper. Each line says when, how bad, which
process (``serve``, ``project``, ``relay``, ...), and, while a request or command
is being handled, its correlation id, trace id and the actor (the authenticated
caller's subject). Nothing here logs a request body or a view document: those are
where personal data lives; lines name routes, rules, positions and counts.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from services.observability import tracing

correlation_id: ContextVar[str | None] = ContextVar("gam_correlation_id", default=None)
trace_id: ContextVar[str | None] = ContextVar("gam_trace_id", default=None)
actor: ContextVar[str | None] = ContextVar("gam_actor", default=None)

_process = "gam"

_CONTEXT = (("correlation_id", correlation_id), ("trace_id", trace_id), ("actor", actor))
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


@contextmanager
def context(*, correlation: str | None = None, trace: str | None = None, who: str | None = None) -> Iterator[None]:
    """Log lines written inside carry these (a request, a command of the CLI)."""
    tokens = [var.set(value) for var, value in ((correlation_id, correlation), (trace_id, trace), (actor, who))]
    try:
        yield
    finally:
        for var, token in zip((correlation_id, trace_id, actor), tokens, strict=True):
            var.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """What a record says besides its message: the request context and the ``extra`` it was given."""
    found: dict[str, Any] = {}
    for name, var in _CONTEXT:
        value = getattr(record, name, None) or var.get()
        if value:
            found[name] = value
    if "trace_id" not in found and tracing.enabled:  # a projection or relay batch's trace
        traced = tracing.current_trace_id()
        if traced:
            found["trace_id"] = traced
    attributes = record.__dict__
    for key in sorted(attributes.keys() - _STANDARD):  # what ``extra`` added: a set difference, not a scan
        if key not in found and not key.startswith("_"):
            found[key] = attributes[key]
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": _process,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # orjson: a tenth of json.dumps's time, on a line written for every request
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{at} {record.levelname:<7} {_process}[{record.process}] {record.getMessage()}"
        if extra:
            text += f"  [{extra}]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(process: str, fmt: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's lines (gam's, uvicorn's, the libraries') to standard error in
    one format. Called once by the CLI's entry point, before any command runs."""
    global _process
    _process = process
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # No line names its source file and line, so the logging module need not walk the
    # stack to find them for every record (its documented switch: 12 µs of a request line's 86).
    logging._srcfile = None
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = name != "uvicorn.access"  # gam logs each request itself (services.observability.http)
    # kafka-python narrates every reconnect at INFO/WARNING/ERROR; the relay says what matters once.
    logging.getLogger("kafka").setLevel(max(logging.getLevelName(level), logging.CRITICAL))
    logging.captureWarnings(True)


def configured_from_environment(process: str) -> None:
    """:func:`configure` from ``GAM_LOG_FORMAT`` and ``GAM_LOG_LEVEL`` (read here without
    the full settings, so a bad setting elsewhere is still logged in the chosen format)."""
    fmt = os.environ.get("GAM_LOG_FORMAT", "text").lower()
    level = os.environ.get("GAM_LOG_LEVEL", "INFO").upper()
    configure(process, "json" if fmt == "json" else "text", level if level in logging._nameToLevel else "INFO")

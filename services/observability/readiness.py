"""Readiness an orchestrator can trust: the store answers, and every view (and the
relay, where one is watched) keeps up with the log within the configured lag.

The same reading feeds the Prometheus gauges (:class:`~.metrics.ProgressCollector`),
the API's ``/readyz`` and the ``/readyz`` of ``gam project`` and ``gam relay``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from infra.settings import Settings
from services.app import GamApplication
from services.observability.metrics import (
    PROGRESS,
    Generation,
    Progress,
    ProgressSource,
    Snapshot,
    progress_of,
    watch_pools,
)

log = logging.getLogger(__name__)


def stored_at(app: GamApplication) -> Callable[[int], datetime | None]:
    """When the event at a log position was stored (None if it cannot be read)."""

    def at(position: int) -> datetime | None:
        try:
            found = app.recorder.select_notifications(start=position, limit=1)
            if not found:
                return None
            timestamp = getattr(app.mapper.to_domain_event(found[0]), "timestamp", None)
        except Exception:  # an event that cannot be decoded still has a position; its age is unknown
            log.debug("cannot read the time of the event at %d", position, exc_info=True)
            return None
        return timestamp if isinstance(timestamp, datetime) else None

    return at


def progress_source(
    app: GamApplication,
    views: Callable[[], Mapping[str, int]],
    relays: Callable[[], Mapping[str, int]] | None = None,
    generations: Callable[[], Mapping[str, Any]] | None = None,
) -> ProgressSource:
    """Reads the log's last position and each follower's position, in that order (a
    follower read after the log is never ahead of it), and, if given, each view's
    generations (:meth:`services.projector.Projector.generations`: the live one, and the
    one a rebuild builds beside it with its position)."""
    age = stored_at(app)

    def snapshot() -> Snapshot:
        last = app.recorder.max_notification_id() or 0
        view_positions = views()
        relay_positions = relays() if relays else {}
        found = generations() if generations else {}
        return Snapshot(
            last,
            {name: progress_of(p, last, age) for name, p in view_positions.items()},
            {name: progress_of(p, last, age) for name, p in relay_positions.items()},
            {
                name: Generation(
                    g.live,
                    g.building,
                    None if g.building is None else progress_of(g.building_position or 0, last, age),
                )
                for name, g in found.items()
            },
        )

    return snapshot


def observe(app: GamApplication, source: ProgressSource) -> Callable[[], None]:
    """Publish this process's progress and pool use as metrics; returns how to stop."""
    watch_pools(app)
    return PROGRESS.add(source)


def verdict(snapshot: Snapshot, settings: Settings) -> tuple[bool, list[str]]:
    """Whether every follower keeps up, and if not, which lags too far (and how)."""
    reasons = []
    followers: dict[str, Progress] = {
        **{f"view {n}": p for n, p in snapshot.views.items()},
        **{f"relay {n}": p for n, p in snapshot.relays.items()},
    }
    for name, progress in followers.items():
        if settings.ready_max_lag_events and progress.lag_events > settings.ready_max_lag_events:
            reasons.append(f"{name} is {progress.lag_events} events behind")
        elif settings.ready_max_lag_seconds and progress.lag_seconds > settings.ready_max_lag_seconds:
            reasons.append(f"{name} is {progress.lag_seconds:.0f} s behind")
    return not reasons, reasons


def describe(snapshot: Snapshot) -> dict[str, Any]:
    """Positions and lags for ``/readyz`` (no store location or connection detail)."""

    def shown(progress: Mapping[str, Progress]) -> dict[str, Any]:
        return {
            name: {"position": p.position, "lag": p.lag_events, "lag_seconds": round(p.lag_seconds, 3)}
            for name, p in progress.items()
        }

    views = shown(snapshot.views)
    for name, generation in snapshot.generations.items():
        if name in views:
            views[name]["generation"] = generation.live
            if generation.building is not None and generation.rebuild is not None:
                views[name]["rebuild"] = {
                    "generation": generation.building,
                    "position": generation.rebuild.position,
                    "lag": generation.rebuild.lag_events,
                }
    body: dict[str, Any] = {"log_position": snapshot.log_position, "views": views}
    if snapshot.relays:
        body["relays"] = shown(snapshot.relays)
    return body


def check(source: ProgressSource, settings: Settings) -> Callable[[], tuple[bool, dict[str, Any]]]:
    """The readiness check of a process without an API (``gam project``, ``gam relay``)."""

    def ready() -> tuple[bool, dict[str, Any]]:
        snapshot = source()
        ok, reasons = verdict(snapshot, settings)
        return ok, {**describe(snapshot), **({"reasons": reasons} if reasons else {})}

    return ready

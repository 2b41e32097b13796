"""A blue/green rebuild of several views, shared out between processes.

One process rebuilding the three views is bound by its one interpreter: about 12,000
events a second of its CPU, with PostgreSQL's own work mostly waited for. On SQLite the
processes take turns at the file's one write lock, which each holds only to write a
batch (at most once a second). The views do
not depend on one another, so each group of views is rebuilt by a process of its own
(``Projector.rebuild`` there, exactly as ``gam rebuild`` runs it alone: a new generation
per view, built beside the live one, taking over when it has caught up). The groups are
balanced by what each view costs a rebuild (:attr:`ViewProjection.rebuild_cost`).

The parent reports each view's progress from the generations the children are
building, and passes on a failure: a child that fails, or a progress callback that
raises (the rebuild lock lost), stops every child. Whatever a stopped child was
building is left as an interrupted rebuild leaves it: the live generation untouched,
the new one resumed by the next rebuild.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import TYPE_CHECKING

from infra.settings import Settings
from projections.base import ViewProjection
from services.observability import metrics

if TYPE_CHECKING:
    from services.projector import Projector

DEFAULT_PROCESSES = min(os.cpu_count() or 1, 3)
"""``gam rebuild``'s default: a process per core, and no more than the three views."""

OPEN_TIMEOUT_SECONDS = 300.0
"""How long a child waits for the others to have opened their views."""

REPORT_SECONDS = 0.5
"""How often the parent reports the children's progress (and so checks the rebuild lock)."""


class RebuildFailed(RuntimeError):
    """A process rebuilding some of the views failed; its views are left to resume."""


def rebuild_groups(projections: Mapping[str, type[ViewProjection]], processes: int) -> list[list[str]]:
    """The views shared out between at most ``processes`` groups, each view to the group
    that costs least so far, the costliest view first (so three views on two processes
    make the audit trail one group and the two others the second)."""
    count = max(1, min(processes, len(projections)))
    groups: list[list[str]] = [[] for _ in range(count)]
    costs = [0.0] * count
    for name in sorted(projections, key=lambda n: -projections[n].rebuild_cost):
        cheapest = costs.index(min(costs))
        groups[cheapest].append(name)
        costs[cheapest] += projections[name].rebuild_cost
    return [group for group in groups if group]


def rebuild_in_processes(
    projector: Projector,
    settings: Settings,
    names: Sequence[str],
    progress: Callable[[str, int, int], None] | None = None,
    *,
    fresh: bool = False,
    batch: int,
    processes: int,
) -> int:
    """Rebuild ``names`` in up to ``processes`` processes (see the module docstring);
    returns the events processed, counted per view as :meth:`Projector.rebuild` does."""
    groups = rebuild_groups({name: type(projector.projections[name]) for name in names}, processes)
    context = multiprocessing.get_context("spawn")  # not fork: this process holds pools and threads
    children: list[tuple[list[str], BaseProcess, Connection]] = []
    started_live = {name: generations.live for name, generations in projector.generations().items()}
    all_open = context.Barrier(len(groups))
    try:
        with metrics.rebuilding(names):  # this process's metrics; the children's are not served
            for group in groups:
                receiving, sending = context.Pipe(duplex=False)
                spawned = context.Process(
                    target=rebuild_group,
                    args=(settings, group, fresh, batch, sending, all_open),
                    name=f"gam rebuild {'+'.join(group)}",
                )
                spawned.start()
                sending.close()
                children.append((group, spawned, receiving))
            while any(child.is_alive() for _, child, _ in children):
                _report(projector, names, started_live, progress)
                wait([child.sentinel for _, child, _ in children], timeout=REPORT_SECONDS)
            _report(projector, names, started_live, progress)
    except BaseException:
        for _, child, _ in children:
            if child.is_alive():
                child.terminate()
        for _, child, _ in children:
            child.join()
        raise
    processed, failures = 0, []
    for group, child, receiving in children:
        child.join()
        outcome, value = _outcome(child, receiving)
        if outcome == "done" and isinstance(value, int):
            processed += value
        else:
            failures.append(f"{'+'.join(group)}: {value}")
    projector.follow_new_generations(names)
    if failures:
        raise RebuildFailed("; ".join(failures) + " (those views are as they were: rebuild again to resume them)")
    return processed


def _outcome(child: BaseProcess, results: Connection) -> tuple[str, object]:
    """What the child sent back; its exit code if it died before it could."""
    try:
        if results.poll():
            outcome: tuple[str, object] = results.recv()
            return outcome
    except EOFError:
        pass
    return "failed", f"exited with code {child.exitcode} before it could say why"


def rebuild_group(
    settings: Settings, names: list[str], fresh: bool, batch: int, results: Connection, all_open: Barrier | None = None
) -> None:
    """A child's work: rebuild ``names`` in this process, and send back what happened.

    Opening a view runs its tables' ``CREATE ... IF NOT EXISTS``, which locks tables
    another child may be writing: one child dropping its old generation while another
    was still starting deadlocked. So no child starts rebuilding before every child has
    opened its views (``all_open``)."""
    from services.bootstrap import bootstrap  # the composition root builds on the projector

    try:
        runtime = bootstrap(settings, views=names)
        try:
            projector = runtime.projector
            if all_open is not None:
                all_open.wait(timeout=OPEN_TIMEOUT_SECONDS)
            results.send(("done", projector.rebuild(names, fresh=fresh, batch=batch)))
        finally:
            runtime.close()
    except BaseException as error:
        if all_open is not None:
            all_open.abort()  # the others stop waiting for this one
        results.send(("failed", f"{type(error).__name__}: {error}"))
        raise


def _report(
    projector: Projector,
    names: Sequence[str],
    started_live: Mapping[str, int],
    progress: Callable[[str, int, int], None] | None,
) -> None:
    """Each view's position in the generation a child is building (the log's end once
    that generation took over)."""
    last = projector.app.recorder.max_notification_id() or 0
    generations = projector.generations()
    positions = {
        name: last if generations[name].live != started_live[name] else generations[name].building_position or 0
        for name in names
    }
    metrics.views_progressed(positions, last)
    if progress is not None:
        for name, position in positions.items():
            progress(name, position, last)

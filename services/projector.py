"""Runs the views: catch up from the log, rebuild from the first event, follow new
events with ``eventsourcing``'s ``ProjectionRunner``, and wait (bounded) until a
view has reached a position (read-your-writes).

Catch-up and the runner run the same ``change_for`` of each view (the runner from
the domain event, catch-up from the stored event decoded once for every view), so
a view built either way is the same.

Only the holder of the :class:`~infra.views_lease.ViewsLease` writes the views: the
follower (``gam project``, or the API's thread), and a command only while it holds
it. A command that needs the views up to date (``gam demo``, ``gam replay``, ...)
calls :func:`bring_up_to_date`; ``gam rebuild`` calls :func:`rebuild_views`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory, PersistenceError, Tracking
from eventsourcing.utils import Environment

from infra.commit_notifications import CommitNotifications
from infra.event_facts import FactsDecoder, event_class
from infra.settings import Settings
from infra.views_lease import RebuildLock, RebuildLockLost, ViewsLease
from infra.views_memory import MemoryViewRecorder
from infra.views_postgres import PostgresViewRecorder
from infra.views_sqlite import SQLiteViewRecorder
from projections.account_view import AccountViewProjection, account_view_projection
from projections.audit_trail import AuditTrailProjection
from projections.base import ViewProjection
from projections.facts import EventFacts
from projections.ports import AuditRow, Document, GenerationSwitched, ListKey, ListRow, ViewChange, ViewRecorder
from projections.strategy_flow import StrategyFlowProjection
from services.app import GamApplication
from services.observability import metrics, tracing
from services.parallel_rebuild import rebuild_in_processes

log = logging.getLogger(__name__)

PROJECTIONS: dict[str, type[ViewProjection]] = {
    p.view_name: p for p in (AccountViewProjection, AuditTrailProjection, StrategyFlowProjection)
}
"""Every view gam maintains, by name."""

Progress = Callable[[str, int, int], None]
"""Called as (view name, position reached, last position in the log)."""

CATCH_UP_BATCH = 5_000
"""Events read from the log per query and stored per view transaction by a catch-up."""

FLUSH_SECONDS = 1.0
"""A catch-up stores its views at least this often, however large its batch. A
rebuild on PostgreSQL is one transaction per view, and the server ends a
transaction that sends no statement for ``POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT``
(5 s by default): on a busy machine, a batch of thousands of events could take that long."""


@functools.cache
def view_recorder_class(store: str, view_name: str) -> type[ViewRecorder]:
    """A recorder class bound to one view, for the configured store."""
    bases: dict[str, type[ViewRecorder]] = {
        "sqlite": SQLiteViewRecorder,
        "postgres": PostgresViewRecorder,
        "memory": MemoryViewRecorder,
    }
    base = bases[store]
    projection = PROJECTIONS.get(view_name)
    keeps_audit_rows = projection is None or projection.writes_audit_rows
    return type(f"{base.__name__}_{view_name}", (base,), {"view_name": view_name, "keeps_audit_rows": keeps_audit_rows})


def projection_class(settings: Settings, view_name: str) -> type[ViewProjection]:
    """The view's projection as the settings configure it (the account view's checkpoint interval)."""
    if view_name == AccountViewProjection.view_name:
        return account_view_projection(settings.view_checkpoint_interval)
    return PROJECTIONS[view_name]


FOLLOWER_POOL_SIZE = 1
"""PostgreSQL connections a view's storage, or a follower's own application, keeps open;
its pool opens up to ``POSTGRES_MAX_OVERFLOW`` (10) more while busy and closes them when
idle. Each view and each follower has a pool of its own, so the pool size of the
settings for every one of them kept 62 connections open in ``gam project`` alone, and
gam's three processes needed more than PostgreSQL's default ``max_connections`` (100)."""


def follower_env(settings: Settings) -> dict[str, str]:
    """The ``eventsourcing`` settings for a view's storage or a follower: a small pool.
    (An application reads ``GAM_POSTGRES_POOL_SIZE`` from the environment before
    ``POSTGRES_POOL_SIZE``, since ``gam`` is its name: both are set.)"""
    size = str(FOLLOWER_POOL_SIZE)
    return {**settings.eventsourcing_env(), "POSTGRES_POOL_SIZE": size, "GAM_POSTGRES_POOL_SIZE": size}


def open_view(settings: Settings, view_name: str) -> ViewRecorder:
    """The view's storage, in the same database (and schema) as the events."""
    cls = view_recorder_class(settings.store, view_name)
    if settings.store == "memory":
        return cls()
    env = Environment(re.sub(r"[^a-z0-9_]", "_", view_name.lower())[:40], follower_env(settings))
    factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(env)
    recorder: ViewRecorder = factory.tracking_recorder(cls)
    recorder.follow_live()
    return recorder


TAKE_OVER_LAG = 1_000
"""A rebuild's generation takes over once it is at most this many events behind the log:
the rest is applied inside the take-over's transaction, while the live generation's
writer waits (a batch or less)."""


@dataclass(frozen=True)
class ViewGenerations:
    """What ``/readyz`` and the metrics show of a view's generations."""

    live: int
    building: int | None = None
    building_position: int | None = None


class ViewNotReady(TimeoutError):
    """A view did not reach the asked position within the time allowed."""

    def __init__(self, view_name: str, wanted: int, reached: int) -> None:
        super().__init__(f"view {view_name} is at position {reached}, not yet {wanted}")
        self.view_name = view_name
        self.wanted = wanted
        self.reached = reached


class _Batch:
    """Stands in for a view during one batch of catch-up: reads see the batch's own
    writes, and :meth:`flush` stores every change with the batch's last tracking
    position in one transaction, so a crash loses the whole batch or nothing."""

    def __init__(self, view: ViewRecorder) -> None:
        self.view = view
        self.pending: dict[str, Document | None] = {}
        self.loaded: dict[str, Document | None] = {}
        self.audit_rows: list[AuditRow] = []
        self.list_rows: dict[ListKey, ListRow | None] = {}
        self.tracking: Tracking | None = None

    def document(self, key: str) -> Document | None:
        """Each document is read from the store once per catch-up (absent ones too):
        the catch-up is the views' only writer (see ViewsLease), so what it read
        stays true until it changes it, and then ``pending`` (or, after a flush,
        ``loaded``) holds it. Reading every event's documents again cost a round
        trip or two per event, and decoding the same document once per batch."""
        if key in self.pending:
            return self.pending[key]
        if key not in self.loaded:
            self.loaded[key] = self.view.document(key)
        return self.loaded[key]

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        missing = [k for k in keys if k not in self.pending and k not in self.loaded]
        if missing:
            found = self.view.documents(missing)
            self.loaded.update({k: found.get(k) for k in missing})
        known = {k: self.pending[k] if k in self.pending else self.loaded[k] for k in keys}
        return {k: v for k, v in known.items() if v is not None}

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        merged = {
            **self.view.documents_with_prefix(prefix),
            **{k: v for k, v in self.pending.items() if k.startswith(prefix)},
        }
        return {k: v for k, v in sorted(merged.items()) if v is not None}

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        self.apply(change)
        self.tracking = tracking

    def apply(self, change: ViewChange) -> None:
        self.pending.update(change.documents)
        if change.audit_rows:
            self.audit_rows.extend(change.audit_rows)
        if change.list_rows:
            self.list_rows.update(change.list_rows)

    def flush(self) -> None:
        """Store the batch; what it wrote stays known to the next batch of the same
        catch-up (up to :data:`DOCUMENTS_KEPT` documents)."""
        if self.tracking is not None:
            change = ViewChange(documents=self.pending, audit_rows=self.audit_rows, list_rows=self.list_rows)
            self.view.record(change, self.tracking)
        if len(self.loaded) + len(self.pending) > DOCUMENTS_KEPT:
            self.loaded.clear()
        self.loaded.update(self.pending)
        self.pending = {}
        self.audit_rows = []
        self.list_rows = {}
        self.tracking = None


DOCUMENTS_KEPT = 100_000
"""Documents a catch-up keeps between its batches (per view), so a long rebuild
over many accounts does not hold every document in memory."""

DOCUMENTS_KEPT_BETWEEN_CATCH_UPS = 2_000
"""Documents a projector keeps from one catch-up to the next (per view). The API's
follower catches up every few milliseconds, a command or two each time, and reading
back and decoding the same account's document each time was a fifth of the API
process's CPU. Bounded: a long-running process must not hold every account."""


READ_AHEAD_KEYS = 1_000
"""Documents read per query ahead of a batch (SQLite allows 32,766 parameters a statement)."""


def _read_ahead(
    views: Sequence[tuple[str, ViewProjection]],
    batches: Sequence[_Batch],
    positions: dict[str, int],
    decoded: Sequence[tuple[int, EventFacts | None, list[bool]]],
) -> None:
    """Read, per view, in one query, the documents the batch's events will read
    that the batch does not know yet (:meth:`ViewProjection.keys_read`)."""
    for index, ((name, projection), view_batch) in enumerate(zip(views, batches, strict=True)):
        keys = {
            key
            for position, facts, reads in decoded
            if facts is not None and reads[index] and position > positions[name]
            for key in projection.keys_read(facts)
        }
        ordered = sorted(keys)
        for start in range(0, len(ordered), READ_AHEAD_KEYS):
            view_batch.documents(ordered[start : start + READ_AHEAD_KEYS])


@contextmanager
def batched(projections: Iterable[ViewProjection]) -> Iterator[list[_Batch]]:
    """Run the projections against batches, one per view, in the order given (the
    block may flush them on the way); flush each view's batch if the block succeeds."""
    swapped = [(projection, projection.view) for projection in projections]
    batches = []
    for projection, view in swapped:
        batch = _Batch(view)
        batches.append(batch)
        projection._view = batch  # type: ignore[assignment]
    try:
        yield batches
        for batch in batches:
            batch.flush()
    finally:
        for projection, view in swapped:
            projection._view = view


@dataclass
class Projector:
    """The application and the views it feeds, in one process."""

    app: GamApplication
    projections: dict[str, ViewProjection]
    writers: ThreadPoolExecutor | None = None
    """Threads that store the views' batches side by side (PostgreSQL: each view has
    its own connection). One after the other, the three transactions of a follower's
    catch-up took 13 ms at 200 commands/s, most of it waiting on the server, and the
    commit-to-view lag is that plus the next catch-up."""
    _kept: dict[str, tuple[int, dict[str, Document | None]]] = field(default_factory=dict, repr=False)
    """Per view: the position its last catch-up stored, and the documents it had read or
    written. They are still the view's documents if the view is still at that position:
    only the holder of the views lease writes, and any other writer moves the position
    (a rebuild that ends at the same position builds the same documents)."""

    @classmethod
    def open(cls, app: GamApplication, settings: Settings, names: Iterable[str] | None = None) -> Projector:
        chosen = list(names or PROJECTIONS)
        projections = {n: projection_class(settings, n)(view=open_view(settings, n)) for n in chosen}
        concurrent = settings.store == "postgres" and len(chosen) > 1
        writers = ThreadPoolExecutor(len(chosen), thread_name_prefix="gam-view-writer") if concurrent else None
        return cls(app, projections, writers)

    @classmethod
    def in_memory(cls, app: GamApplication, names: Iterable[str] | None = None) -> Projector:
        return cls.open(app, Settings(store="memory"), names)

    def view(self, name: str) -> ViewRecorder:
        """The view's committed storage (never a catch-up batch in progress)."""
        view = self.projections[name].view
        return view.view if isinstance(view, _Batch) else view

    def position(self, name: str) -> int:
        return self.view(name).max_tracking_id(self.app.name) or 0

    def positions(self) -> dict[str, int]:
        return {name: self.position(name) for name in self.projections}

    def catch_up(self, progress: Progress | None = None, batch: int = CATCH_UP_BATCH) -> int:
        """Process every event stored after each view's position; returns events processed.

        When a rebuild's generation of a view has taken over since this projector last
        wrote it, the write is refused (:class:`~projections.ports.GenerationSwitched`)
        and nothing of it stays: the projector forgets what it knew of the old
        generation and carries on in the new one, from that one's position."""
        while True:  # each view takes over in a transaction of its own: one after the other
            try:
                return self._catch_up(progress, batch)
            except GenerationSwitched as switched:
                log.info("%s; following it from its position", switched)
                self.follow_new_generations(self.projections)

    def _catch_up(self, progress: Progress | None, batch: int) -> int:
        """Process every event stored after each view's position; returns events processed.

        Each event is decoded once for every view (and not at all when no view
        reads its class); each view's changes are stored once per batch of
        ``batch`` events (or of what :data:`FLUSH_SECONDS` allowed), with the
        batch's last position."""
        positions = self.positions()
        start = min(positions.values(), default=0)
        last = self.app.recorder.max_notification_id() or 0
        processed = 0
        decode = FactsDecoder(self.app.mapper).decode
        views = list(self.projections.items())
        read_by: dict[type[Any] | None, list[bool]] = {}
        kept, self._kept = self._kept, {}
        with batched(self.projections.values()) as batches:
            for (name, _), view_batch in zip(views, batches, strict=True):
                if name in kept and kept[name][0] == positions[name]:
                    view_batch.loaded = kept[name][1]
            flushed = dict(positions)

            def flush() -> None:
                for (name, _), view_batch in zip(views, batches, strict=True):
                    if positions[name] != flushed[name]:
                        view_batch.tracking = Tracking(self.app.name, positions[name])
                self._store(batches)
                flushed.update(positions)

            while start < last:
                notifications = self.app.recorder.select_notifications(start=start + 1, limit=batch)
                if not notifications:
                    break
                flush_by = time.monotonic() + FLUSH_SECONDS
                batch_started, before = time.perf_counter(), dict(positions)
                began = time.time_ns()
                traced: list[str] | None = [] if tracing.enabled else None
                decoded = []
                for notification in notifications:
                    cls = event_class(notification.topic)
                    reads = read_by.get(cls)
                    if reads is None:
                        reads = read_by[cls] = [cls is not None and p.reads(cls) for _, p in views]
                    facts = decode(notification) if any(reads) else None
                    if traced is not None and facts is not None and facts.traceparent:
                        traced.append(facts.traceparent)
                    decoded.append((notification.id, facts, reads))
                _read_ahead(views, batches, positions, decoded)
                for index, (position, facts, reads) in enumerate(decoded, 1):
                    for (name, projection), view_reads, view_batch in zip(views, reads, batches, strict=True):
                        if position > positions[name]:
                            if view_reads and facts is not None:
                                view_batch.apply(projection.change_for(facts, position))
                            positions[name] = position
                            processed += 1
                    if index % 256 == 0 and time.monotonic() > flush_by:
                        flush()
                        flush_by = time.monotonic() + FLUSH_SECONDS
                with tracing.batch("gam project batch", traced or (), {"gam.events": len(notifications)}, began):
                    flush()
                start = notifications[-1].id
                metrics.views_advanced(before, positions, time.perf_counter() - batch_started)
                metrics.views_progressed(positions, last)
                if progress:
                    for name in self.projections:
                        progress(name, positions[name], last)
        for (name, _), view_batch in zip(views, batches, strict=True):  # stored: worth keeping
            if len(view_batch.loaded) <= DOCUMENTS_KEPT_BETWEEN_CATCH_UPS:
                self._kept[name] = (positions[name], view_batch.loaded)
        return processed

    def _store(self, batches: Sequence[_Batch]) -> None:
        """Flush each view's batch: side by side when the projector has writer threads
        (each in its own transaction, as one after the other; every one is waited for,
        and the first failure raised)."""
        if self.writers is None or len(batches) < 2:
            for view_batch in batches:
                view_batch.flush()
            return
        # each in a copy of this thread's context: its spans stay in the batch's trace
        flushes = [self.writers.submit(contextvars.copy_context().run, view_batch.flush) for view_batch in batches]
        futures.wait(flushes)  # all of them, before a failure moves on to the views' positions
        for flushed in flushes:
            flushed.result()

    def rebuild(
        self,
        names: Iterable[str] | None = None,
        progress: Progress | None = None,
        *,
        fresh: bool = False,
        batch: int = CATCH_UP_BATCH,
    ) -> int:
        """Build a new generation of each named view from the first event, beside the live
        one, and let it take over once it has caught up (blue/green); returns the events
        processed.

        Readers and the follower go on with the live generation meanwhile; this process
        writes only the new one, so it needs no views lease. The views are built together
        (each event decoded once for all of them), in batches that each commit with the
        new generation's position: a rebuild interrupted (killed, failed) leaves the live
        generation as it was and the new one where it got to, and the next rebuild
        resumes it (``fresh``: starts over instead). Once it is within
        :data:`TAKE_OVER_LAG` events of the log's end, each view takes over in one
        transaction (:meth:`ViewRecorder.take_over`): the last events are applied, the
        live pointer switches, and the follower's next write, refused, moves it to the
        new generation at its position. The old generation is dropped afterwards."""
        chosen = list(names or self.projections)
        self._kept.clear()
        with metrics.rebuilding(chosen):
            building = {}
            for name in chosen:
                view = self.view(name)
                building[name] = view.at_generation(view.start_generation(fresh=fresh))
            builder = Projector(
                self.app, {n: type(self.projections[n])(view=building[n]) for n in chosen}, self.writers
            )
            processed = builder.catch_up(progress, batch)
            while True:
                last = self.app.recorder.max_notification_id() or 0
                if last - min(builder.positions().values(), default=last) <= TAKE_OVER_LAG:
                    break
                processed += builder.catch_up(progress, batch)
            for name in chosen:
                with building[name].take_over():
                    processed += Projector(self.app, {name: builder.projections[name]}).catch_up(progress, batch)
                view = self.view(name)
                view.follow_live()
                retired = view.generations().retired
                log.info("view %s: generation %d took over", name, view.generation)
                if retired is not None:
                    view.drop_generation(retired)
        self._kept.clear()
        return processed

    def follow_new_generations(self, names: Iterable[str]) -> None:
        """After a rebuild took over (in this process's other threads or in other
        processes): write the generations live now, and forget the documents kept from
        the ones they replaced."""
        self._kept.clear()
        for name in names:
            self.view(name).follow_live()

    def generations(self) -> dict[str, ViewGenerations]:
        """Each view's live generation and, while a rebuild builds one (or left one
        unfinished), that generation and its position."""
        found = {}
        for name in self.projections:
            view = self.view(name)
            generations = view.generations()
            building = generations.building
            position = None
            if building is not None:
                position = view.at_generation(building).max_tracking_id(self.app.name) or 0
            found[name] = ViewGenerations(generations.live, building, position)
        return found

    def wait(self, name: str, position: int, timeout: float = 5.0) -> None:
        """Return once the view has processed ``position``; raise :class:`ViewNotReady` after ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while (reached := self.position(name)) < position:
            if time.monotonic() >= deadline:
                raise ViewNotReady(name, position, reached)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def close(self) -> None:
        if self.writers is not None:
            self.writers.shutdown()
        for projection in self.projections.values():
            close = getattr(projection.view, "close", None)
            if close:
                close()


VIEWS_WAIT_SECONDS = 60.0
"""How long a command waits for the follower to bring the views to the position it
needs (:func:`bring_up_to_date`), or for the views lease (:func:`rebuild_views`)."""


def bring_up_to_date(
    projector: Projector, settings: Settings, position: int | None = None, timeout: float = VIEWS_WAIT_SECONDS
) -> None:
    """Return once every view of ``projector`` has processed ``position`` (default: the
    last event stored now), writing the views only while holding the views lease.

    Another process holding the lease (``gam serve``'s follower, ``gam project``) is
    the views' writer: wait for it to reach the position. Nobody holding it (SQLite,
    or PostgreSQL with no follower running), take it, catch up, and release it.
    Raise :class:`ViewNotReady` after ``timeout`` seconds."""
    wanted = (projector.app.recorder.max_notification_id() or 0) if position is None else position
    lease = ViewsLease(settings)
    deadline = time.monotonic() + timeout
    delay = 0.01
    try:
        while (behind := _behind(projector, wanted)) is not None:
            if lease.holds():
                projector.catch_up()
                return
            if time.monotonic() >= deadline:
                raise ViewNotReady(behind[0], wanted, behind[1])
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    finally:
        lease.release()


def _behind(projector: Projector, position: int) -> tuple[str, int] | None:
    """A view (and its position) that has not processed ``position`` yet, if any."""
    return next(((name, p) for name, p in projector.positions().items() if p < position), None)


PARALLEL_REBUILD_EVENTS = 100_000
"""From this many events in the log, a rebuild of several views on PostgreSQL or SQLite is
shared out between processes. Starting one costs about 1.5 s (the interpreter, gam's
modules, its connections): at 100,000 events two processes took 6.9-7.1 s against 8.1 s
for one, at 20,000 2.2 s against 1.5 s. On SQLite the processes take turns at its one
write lock, but each writes its batch at most once a second: at 1M events two processes
rebuilt at 28,742 events/s against 18,479-20,901 for one."""


def shares_rebuilds_out(settings: Settings) -> bool:
    """Whether ``gam rebuild`` shares several views out between processes on this store
    (from :data:`PARALLEL_REBUILD_EVENTS` events): on PostgreSQL and SQLite, not in memory,
    where a child process would not see the parent's store."""
    return settings.store != "memory"


def rebuild_views(
    projector: Projector,
    settings: Settings,
    names: Iterable[str] | None = None,
    progress: Progress | None = None,
    *,
    fresh: bool = False,
    batch: int = CATCH_UP_BATCH,
    processes: int = 1,
) -> int:
    """:meth:`Projector.rebuild` as ``gam rebuild`` runs it: one rebuild of a store at a
    time (:class:`~infra.views_lease.RebuildLock`; raise
    :class:`~infra.views_lease.RebuildRunning` if another holds it), and stop if the lock
    is lost on the way (its new generation is left unfinished, to be resumed). It does
    not take the views lease: the follower keeps the live generation current meanwhile.
    From :data:`PARALLEL_REBUILD_EVENTS` events, several views are shared out between up
    to ``processes`` processes (:mod:`services.parallel_rebuild`)."""
    lock = RebuildLock(settings)
    lock.acquire()

    def still_holding(name: str, done: int, total: int) -> None:
        if not lock.still_holds():
            msg = "lost the rebuild lock; the live views are as they were and the new generation is left to resume"
            raise RebuildLockLost(msg)
        if progress:
            progress(name, done, total)

    chosen = list(names or projector.projections)
    try:
        events = projector.app.recorder.max_notification_id() or 0
        if processes > 1 and len(chosen) > 1 and shares_rebuilds_out(settings) and events >= PARALLEL_REBUILD_EVENTS:
            return rebuild_in_processes(
                projector, settings, chosen, still_holding, fresh=fresh, batch=batch, processes=processes
            )
        return projector.rebuild(chosen, progress=still_holding, fresh=fresh, batch=batch)
    finally:
        lock.release()


POLL_SECONDS = 0.2
"""How often the SQLite follower looks for new events."""


STANDBY_SECONDS = 1.0
"""How often a follower that does not hold the views lease, or has just lost the
database, tries again."""


def follow(settings: Settings, names: Iterable[str] | None = None, timeout: float | None = None) -> None:
    """Follow new events into the named views until interrupted (or ``timeout`` s).

    A loop of batched catch-ups (:meth:`Projector.catch_up`), the same the API's
    follower runs: on PostgreSQL only while this process holds the
    :class:`~infra.views_lease.ViewsLease` (another process may be writing the views:
    it stands by until then), woken by the NOTIFY each commit sends; when the database
    goes away, it starts again from the views' positions once it is back. On SQLite,
    which has no notifications, it polls the log.

    ``eventsourcing``'s ProjectionRunner, used here before, stores each event in each
    view in a transaction of its own and decodes it once per view: at 200 commands/s
    the views fell seconds behind on two cores."""
    chosen = list(names or PROJECTIONS)
    deadline = None if timeout is None else time.monotonic() + timeout
    with tracing.background():
        if settings.store == "postgres":
            _follow_while_holding_the_lease(settings, chosen, deadline)
        else:
            _follow_by_polling(settings, chosen, deadline)


LINGER_SECONDS = 0.003
"""After a catch-up that found events, the least time to let more arrive: under a steady
stream of commands, a follower that loops at once rewrites each account's view
document for every event or two. Short, since the commit-to-view lag is about this
plus two catch-ups: at 200 commands/s a catch-up stores the views in about 13 ms, and
6–9 events arrive meanwhile (10 ms here gave a p99 lag over 100 ms)."""

LINGER_PER_EVENT_SECONDS = 0.001
MAX_LINGER_SECONDS = 0.025


def linger_after(events: int) -> float:
    """How long a follower lets events gather after a catch-up that found ``events``:
    a millisecond for each, between :data:`LINGER_SECONDS` and :data:`MAX_LINGER_SECONDS`.

    A catch-up costs much the same for one event as for twenty: it rewrites each
    touched document whole (an account's view is tens of kilobytes), and stores each
    view's position. At a few hundred commands a second it finds a handful of events
    and lingers the least, so the lag stays a few milliseconds; under a heavier stream
    it waits longer, and each catch-up carries more. ``gam serve`` with ``gam project``
    at about 700 commands/s: 3 ms after every catch-up took 0.37 ms of the projector's
    CPU and 0.72 ms of PostgreSQL's for each command, 25 ms took 0.16 and 0.46. The
    price is lag under that load: ``bench.lag`` at 600 commands/s, commit to view p50
    15.0 ms and p99 30.9 ms with 3 ms always, 28.8 and 53.8 ms with this (at 50 and
    200 commands/s, where this lingers 3 ms, the same as before)."""
    return min(MAX_LINGER_SECONDS, max(LINGER_SECONDS, events * LINGER_PER_EVENT_SECONDS))


WAKE_SECONDS = 0.2
"""The longest a PostgreSQL follower waits for a commit's NOTIFY before it looks anyway."""


def commit_notifications(settings: Settings, app: GamApplication) -> CommitNotifications | None:
    """What wakes a reader of ``app``'s log on PostgreSQL (``None`` elsewhere: poll)."""
    channel = getattr(app.recorder, "channel_name", None)
    if settings.store != "postgres" or not channel:
        return None
    return CommitNotifications(settings.postgres_conninfo(), channel)


def follow_step(
    projector: Projector,
    commits: CommitNotifications | None,
    pause: Callable[[float], object],
    *,
    poll_seconds: float = POLL_SECONDS,
    wake_seconds: float = WAKE_SECONDS,
) -> None:
    """One turn of a follower that holds the views lease (``gam project``'s, and the API's
    own): catch up; after events, linger for more to arrive (:func:`linger_after`); else
    wait for the next commit's NOTIFY (at most ``wake_seconds``) or, without notifications,
    ``poll_seconds``. ``pause`` is how the caller sleeps (a stop event's ``wait`` ends early)."""
    processed = projector.catch_up()  # one for each event each view took
    if processed:
        pause(linger_after(processed // max(1, len(projector.projections))))
    elif commits is not None:
        commits.wait(wake_seconds)
    else:
        pause(poll_seconds)


def _follow_while_holding_the_lease(settings: Settings, names: list[str], deadline: float | None) -> None:
    from services.bootstrap import Runtime, bootstrap  # the composition root builds on this module

    lease = ViewsLease(settings)
    runtime: Runtime | None = None
    commits: CommitNotifications | None = None

    def stop_following() -> None:
        nonlocal runtime, commits
        for part in (commits, runtime):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        runtime, commits = None, None

    try:
        while deadline is None or time.monotonic() < deadline:
            if not lease.holds() or lease.hand_over():  # another process writes the views
                stop_following()
                time.sleep(STANDBY_SECONDS)
                continue
            try:
                if runtime is None:
                    runtime = bootstrap(settings, views=names)
                    commits = commit_notifications(settings, runtime.app)
                follow_step(runtime.projector, commits, time.sleep)
            except (PersistenceError, psycopg.Error) as error:
                log.warning("following stopped (%s); starting again from the views' positions", error)
                stop_following()
                time.sleep(STANDBY_SECONDS)
    finally:
        stop_following()
        lease.release()


def _follow_by_polling(settings: Settings, names: list[str], deadline: float | None) -> None:
    from services.bootstrap import bootstrap  # the composition root builds on this module

    runtime = bootstrap(settings, views=names)
    try:
        while deadline is None or time.monotonic() < deadline:
            if not runtime.projector.catch_up():
                time.sleep(POLL_SECONDS)
    finally:
        runtime.close()

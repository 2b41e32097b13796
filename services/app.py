"""The gam application: an ``eventsourcing`` Application that loads aggregates,
lets them decide, and saves their events atomically.

Command handlers (``services.handlers``) use only :meth:`GamApplication.load`
and :meth:`GamApplication.commit`, so every use case has the same guarantees:
a missing entity is a :class:`~domain.errors.NotFound`, a stale expected version
or a concurrent writer is a :class:`~domain.errors.ConcurrencyConflict` carrying
the expected and actual versions, and several aggregates changed by one command
are stored in one transaction or not at all.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import suppress
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.account import GlobalAccount
from domain.base import GamAggregate
from domain.deal import Deal
from domain.errors import AlreadyExists, ConcurrencyConflict, NotFound, SubjectErased
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.team import DEFAULT_APPROVER_ROLES
from infra.hash_chain import PostgresChainedRecorder, SQLiteChainedRecorder
from infra.mapping import GamMapper
from infra.personal_keys import KeyErased, PersonalKeys, keys_for_env
from infra.read_check import ReadCheck, StaleRead
from infra.sqlite_hygiene import truncate_wal
from infra.transcodings import register_domain_transcodings
from services.observability import metrics, tracing
from services.recent_writes import RecentWrites

A = TypeVar("A", bound=GamAggregate)

DEFAULT_SNAPSHOT_INTERVAL = 50
POSITION_SEARCH_PAGE = 1_000
CACHE_TAIL_LIMIT = 10_000
"""Past this many events written by others since the last refresh, the cache is cleared rather than pruned."""
ERASURE_TOPIC = get_topic(Stakeholder.PersonalDataErased)
"""Seen among others' events, the cache is cleared: the deals holding notes about the person
read as erased from then on, yet the erasure adds no event to them."""


@dataclass(frozen=True)
class PreparedCommit:
    """A unit of work's changes made ready to store (:meth:`GamApplication.prepare`)."""

    aggregates: tuple[GamAggregate, ...]
    expected: dict[UUID, int]
    """Each aggregate's version before these changes: what a conflict is reported against."""
    events: list[Any]
    stored: list[StoredEvent]
    snapshots: list[StoredEvent]


@dataclass(frozen=True)
class CommandResult:
    """What a command hands back: the entity it changed, its new version, the
    global position of the last event stored (for read-your-writes), and the id
    of what the command created inside the entity, if anything."""

    entity_id: UUID
    version: int
    position: int
    created_id: UUID | None = None


class GamApplication(Application[UUID]):
    """Event store, repository and notification log for global accounts."""

    name = "gam"
    env: ClassVar[dict[str, str]] = {"MAPPER_TOPIC": "infra.mapping:GamMapper"}
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        GlobalAccount: DEFAULT_SNAPSHOT_INTERVAL,
        AccountPlan: DEFAULT_SNAPSHOT_INTERVAL,
        Deal: DEFAULT_SNAPSHOT_INTERVAL,
        Stakeholder: DEFAULT_SNAPSHOT_INTERVAL,
    }
    """Stakeholders too: their snapshots hold the personal data sealed (``infra.mapping``)."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        snapshot_interval: int | None = None,
        personal_keys: PersonalKeys | None = None,
        approver_roles: frozenset[str] = DEFAULT_APPROVER_ROLES,
    ) -> None:
        self._given_keys = personal_keys
        self.approver_roles = approver_roles
        """The team roles whose holders approve plans (``GAM_APPROVER_ROLES``)."""
        super().__init__(env)
        self._cache_lock = threading.Lock()
        self._cache_position: int | None = None
        """Every cached aggregate holds every event up to this log position (None: unknown)."""
        self._recent = RecentWrites()
        """Which entities the events the cache was brought past wrote (see :meth:`_remember`)."""
        if snapshot_interval is not None:
            # Per instance, so tests and benchmarks can compare intervals side by side.
            # The library reads the class variable through ``self``; shadowing it is intended.
            intervals = dict.fromkeys(type(self).snapshotting_intervals, snapshot_interval)
            self.snapshotting_intervals = intervals if snapshot_interval > 0 else {}  # type: ignore[misc]

    def construct_mapper(self) -> Mapper[UUID]:
        mapper = super().construct_mapper()
        self.personal_keys = self._given_keys or keys_for_env(self.env)
        if isinstance(mapper, GamMapper):
            mapper.keys = self.personal_keys
        return mapper

    def close(self) -> None:
        """Close the store and the personal-key store (its own connections); on SQLite,
        leave no write-ahead log behind (``infra.sqlite_hygiene``)."""
        super().close()
        self.personal_keys.close()
        self.truncate_wal()

    def truncate_wal(self) -> None:
        """On SQLite, the write-ahead log checkpointed and cut to nothing: after an
        erasure and when a process stops, no older page copy stays in it."""
        if self.env.get("PERSISTENCE_MODULE", "").endswith("sqlite"):
            truncate_wal(self.env.get("SQLITE_DBNAME", ""))

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """After the library's own ``save`` (tests and benchmarks call it): the snapshots due."""
        taken = self._snapshots_due(processing_event.aggregates.values(), processing_event.events)
        if taken and self.snapshots is not None:  # one transaction for all of them
            self.snapshots.put(taken)

    def _snapshots_due(self, aggregates: Iterable[Any], events: Sequence[Any]) -> list[Any]:
        """Snapshots of the aggregates, as they are in memory, that ``events`` take past a
        multiple of their interval. The library instead reads each back from the store at
        that exact version, which cost a bulk import a fifth of its time; a snapshot at
        the save's last version serves loads just as well."""
        if not self.snapshots or not self.snapshotting_intervals:
            return []
        added = Counter(event.originator_id for event in events)
        taken = []
        for aggregate in aggregates:
            interval = self.snapshotting_intervals.get(type(aggregate))
            version = aggregate.version
            if interval and (version - added[aggregate.id]) // interval < version // interval:
                snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                assert snapshot_class is not None  # every GamAggregate has one
                taken.append(snapshot_class.take(aggregate))
        return taken

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    def load(self, kind: type[A], entity_id: UUID, expected_version: int | None = None, *, fresh: bool = False) -> A:
        """The aggregate as stored; ``expected_version`` (an HTTP If-Match, say) must match it.

        ``fresh``: the caller's unit of work already holds the cache up to the log (see
        :meth:`start_reading`), so a cached aggregate is copied without asking the store.
        Otherwise the cache is brought up to the log first, not the library's fast-forward
        of the one cached copy: an erasure by another process adds no event to the deals
        whose notes about the person it blanks, so only the log's erasure event tells
        this cache to forget them."""
        if not fresh:
            self.refresh_cache()
        cached = self._from_cache(entity_id)
        try:
            aggregate: GamAggregate = cached if cached is not None else self.repository.get(entity_id)
        except AggregateNotFoundError:
            raise NotFound(kind.entity_type, entity_id) from None
        if not isinstance(aggregate, kind):
            raise NotFound(kind.entity_type, entity_id)
        if expected_version is not None and aggregate.version != expected_version:
            raise ConcurrencyConflict(entity_id, expected_version, aggregate.version)
        return aggregate

    def refresh_cache(self) -> None:
        """Make every cached aggregate current, at the cost of one query when no other
        process wrote since: the log's last position is compared with the one the cache
        is known to hold; the aggregates of any events in between are dropped from the
        cache (they are read again, whole, when next needed). Without this, every load
        asks the store for events newer than the cached copy."""
        cache = self.repository.cache
        if cache is None:
            return
        last = self.recorder.max_notification_id() or 0
        with self._cache_lock:
            known = self._cache_position
            if known is not None and last <= known:  # a commit of ours may land between the query and the lock
                return
            if known is None or last - known > CACHE_TAIL_LIMIT:
                self._clear_cache()
                self._recent.restart(last)
            else:
                for notification in self.recorder.select_notifications(start=known + 1, limit=last - known):
                    if notification.topic == ERASURE_TOPIC:  # deals hold free text about the person
                        self._clear_cache()
                        self._recent.restart(last)
                        break
                    entity = cast(UUID, notification.originator_id)
                    self._evict(entity)
                    self._recent.wrote(notification.id, entity)
            self._cache_position = last

    def forget_cached(self) -> None:
        """Drop every cached aggregate: after an erasure, deals in memory still hold the
        notes and evidence about the person opened, which a read must now find erased."""
        with self._cache_lock:
            self._clear_cache()
            self._recent.restart(self._cache_position)

    @property
    def checks_reads_at_commit(self) -> bool:
        """Whether the store verifies a unit of work's reads in the transaction that
        stores its events (see :mod:`infra.read_check`); the in-memory store does not."""
        return self.repository.cache is not None and isinstance(
            self.recorder, SQLiteChainedRecorder | PostgresChainedRecorder
        )

    @property
    def stores_apart(self) -> bool:
        """Whether storing events is mostly another process's work (PostgreSQL computes the
        hash chain in the server): then this interpreter is free to decide meanwhile. SQLite
        stores them in this process, holding the interpreter."""
        return isinstance(self.recorder, PostgresChainedRecorder) and self.checks_reads_at_commit

    def start_reading(self, *, trust_cache: bool) -> int | None:
        """Begin a unit of work's reads: the log position the cache is known to hold
        (None: no cache to check). With ``trust_cache`` and a store that checks reads at
        commit, no query is made: a stale read is caught when the events are stored.
        Otherwise the cache is brought up to date first (one query)."""
        if self.repository.cache is None:
            return None
        if not (trust_cache and self.checks_reads_at_commit and self._cache_position is not None):
            self.refresh_cache()
        return self._cache_position

    def log_moved_past(self, position: int | None) -> bool:
        """Whether anything was stored after ``position``: a refusal decided on a cache
        that held the log up to there may have rested on stale state."""
        return position is not None and (self.recorder.max_notification_id() or 0) > position

    def _from_cache(self, entity_id: UUID) -> GamAggregate | None:
        cache = self.repository.cache
        if cache is None or self._cache_position is None:
            return None
        try:
            cached = cast(GamAggregate, cache.get(entity_id))
        except KeyError:
            return None
        return deepcopy(cached)

    def _evict(self, entity_id: UUID) -> None:
        if self.repository.cache is not None:
            with suppress(KeyError):
                self.repository.cache.get(entity_id, evict=True)

    def _clear_cache(self) -> None:
        cache = self.repository.cache
        if isinstance(cache, LRUCache):
            with cache.lock:  # LRUCache.clear() resets its order list but keeps the entries
                cache.cache.clear()
                cache.clear()
                cache.full = False
        elif cache is not None:
            cache.cache.clear()

    def _remember(
        self, aggregates: tuple[GamAggregate, ...], first: int, last: int, reads: ReadCheck | None = None
    ) -> None:
        """After our own commit at positions ``first``..``last``: the committed aggregates
        are the current ones, if the cache holds the log up to the position before them.
        The commit's read check lists the events stored between what the cache held and
        our commit: forgetting their aggregates brings the cache up to our commit.

        A commit that finishes after a later one (threads of one process) finds the cache
        past it: its aggregates are still current if none of the events after it wrote
        them (:class:`~services.recent_writes.RecentWrites`). Otherwise, or when the cache
        stands before the commit (another process may have written them since), they are
        dropped."""
        cache = self.repository.cache
        if cache is None:
            return
        with self._cache_lock:
            known = self._cache_position
            if reads is not None and known is not None and reads.known <= known < first:
                newer = [written for written in reads.between if written[0] > known]
                if any(topic == ERASURE_TOPIC for _, _, topic in newer):
                    self._clear_cache()  # ours too: a deal we wrote holds its notes about the person opened
                    self._cache_position = last
                    self._recent.restart(last)
                    return
                for position, entity_id, _ in newer:
                    self._evict(entity_id)
                    self._recent.wrote(position, entity_id)
                self._cache_position = first - 1
            if self._cache_position == first - 1:
                for aggregate in aggregates:
                    cache.put(aggregate.id, aggregate)
                    self._recent.wrote(last, aggregate.id)
                self._cache_position = last
            elif known is not None and known >= last and self._recent.untouched_after(last, (a.id for a in aggregates)):
                for aggregate in aggregates:
                    cache.put(aggregate.id, aggregate)
            else:
                for aggregate in aggregates:
                    self._evict(aggregate.id)

    def exists(self, entity_id: UUID) -> bool:
        return bool(self.recorder.select_events(entity_id, limit=1))

    def stored_version(self, entity_id: UUID) -> int | None:
        events = self.recorder.select_events(entity_id, desc=True, limit=1)
        return events[0].originator_version if events else None

    def commit(self, primary: GamAggregate, *others: GamAggregate, reads: ReadCheck | None = None) -> CommandResult:
        """Store the pending events of every given aggregate in one transaction; with
        ``reads``, only if what the unit of work read is still current (else
        :class:`~infra.read_check.StaleRead`, nothing stored). The trace context of the
        commit goes with its events (:func:`_carry_trace`)."""
        events = len(primary.pending_events) + sum(len(other.pending_events) for other in others)
        with tracing.span("gam commit", {"gam.events": events}):
            return self.store(self.prepare(primary, *others), reads)

    def prepare(self, primary: GamAggregate, *others: GamAggregate) -> PreparedCommit:
        """The Python half of a commit: the aggregates' pending events taken from them and
        encoded as the store keeps them (personal data sealed), with the snapshots they
        bring due. :meth:`store` is the database's half, which a bulk import runs in a
        thread of its own while it decides its next batch (:meth:`Session.hand_over`)."""
        aggregates = (primary, *others)
        expected = {a.id: a.version - len(a.pending_events) for a in aggregates}
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        _carry_trace(events)
        try:
            stored = [self.mapper.to_stored_event(event) for event in events]
            snapshots = [self.mapper.to_stored_event(taken) for taken in self._snapshots_due(aggregates, events)]
        except KeyErased as erased:
            raise SubjectErased(str(erased)) from None
        return PreparedCommit(aggregates, expected, events, stored, snapshots)

    def store(self, prepared: PreparedCommit, reads: ReadCheck | None = None) -> CommandResult:
        """Store what :meth:`prepare` made ready, in one transaction (see :meth:`commit`);
        then its snapshots."""
        aggregates = prepared.aggregates
        primary = aggregates[0]
        try:
            with metrics.commit_timed(len(prepared.events)):
                extra = {"reads": reads} if reads is not None else {}
                positions = list(self.recorder.insert_events(prepared.stored, **extra) or [])
        except IntegrityError:
            for aggregate in aggregates:
                self._evict(aggregate.id)
            stored_at = self._position_if_already_stored(prepared.events)
            if stored_at is None:
                raise self._conflict(aggregates, prepared.expected) from None
            return CommandResult(primary.id, primary.version, stored_at)
        except StaleRead:
            for aggregate in aggregates:
                self._evict(aggregate.id)
            raise
        if prepared.snapshots and self.snapshots is not None:
            self.snapshots.recorder.insert_events(prepared.snapshots)
        if positions:
            self._remember(aggregates, min(positions), max(positions), reads)
        return CommandResult(primary.id, primary.version, max(positions, default=0))

    def _position_if_already_stored(self, pending: list[Any]) -> int | None:
        """The log position of the last of ``pending`` if the store holds exactly these
        events, else None.

        When the database goes away during COMMIT, the commit may have happened with
        its answer lost; the recorder then retries the insert, which collides with the
        very events it stored. That is a success, not a conflict: answering 412 (or 409)
        would tell the caller their change was refused while it is stored."""
        for event in pending:
            version = event.originator_version
            if list(self.events.get(event.originator_id, gt=version - 1, lte=version)) != [event]:
                return None
        wanted = {(str(event.originator_id), event.originator_version) for event in pending}
        stop, found = self.recorder.max_notification_id() or 0, 0
        while wanted and stop > 0:  # they are among the last events stored: read the log backwards
            start = max(1, stop - POSITION_SEARCH_PAGE + 1)
            for notification in self.recorder.select_notifications(start=start, limit=stop - start + 1):
                key = (str(notification.originator_id), notification.originator_version)
                if key in wanted:
                    wanted.discard(key)
                    found = max(found, notification.id)
            stop = start - 1
        return found or None

    def _conflict(self, aggregates: tuple[GamAggregate, ...], expected: dict[UUID, int]) -> Exception:
        """Name the aggregate whose stored version moved (version 0 = not yet stored)."""
        for aggregate in aggregates:
            actual = self.stored_version(aggregate.id) or 0
            before = expected[aggregate.id]
            if before == 0 and actual > 0:
                return AlreadyExists(aggregate.entity_type, aggregate.id)
            if actual != before:
                return ConcurrencyConflict(aggregate.id, before, actual)
        first = aggregates[0]
        return ConcurrencyConflict(first.id, expected[first.id], self.stored_version(first.id))


def _carry_trace(events: list[Any]) -> None:
    """Store the trace context of this commit with each event (beside its correlation
    id), so the views' writer and the relay continue the same trace. Not an event field:
    the mapper stores an event's attributes, and reading it back sets it again."""
    traceparent = tracing.current_traceparent()
    if traceparent is not None:
        for event in events:
            object.__setattr__(event, "traceparent", traceparent)

"""Tamper evidence: a hash chain over the stored events, written by the same
transaction that stores them.

Link ``n`` is SHA-256 over link ``n-1`` and the stored event at position ``n``
(position, entity id, version, topic and the stored state, which holds the
payload and the metadata: actor, time, correlation, causation, reason). Editing
or deleting an event row, or a link, breaks the chain from that position on;
:func:`verify_chain` recomputes it and names the first broken position.

The recorders subclass ``eventsourcing``'s application recorders and are chosen
through its ``APPLICATION_RECORDER_TOPIC`` setting (see ``infra.settings``).
PostgreSQL's recorder locks the events table for each insert, so the previous
link read inside the transaction is the true predecessor.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore, SQLiteTransaction
from eventsourcing.utils import retry
from psycopg import Cursor, Rollback
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from infra.postgres_ddl import creating_tables
from infra.read_check import ReadCheck, StaleRead
from infra.sqlite_hygiene import secure_pool

GENESIS = bytes(32)

lock_wait_observer: Callable[[float], None] | None = None
"""Told how many seconds each insert waited for the store's write lock (the service layer
reports it as a metric; infra knows nothing of metrics)."""
CHAIN_TABLE = "gam_event_chain"
LOCK_WAITED = SQL("SELECT EXTRACT(EPOCH FROM clock_timestamp() - transaction_timestamp()) AS waited")
VERIFY_BATCH = 2_000


def link_for(
    previous: bytes, position: int, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    return link_from_digest(previous, position, originator_id, version, topic, hashlib.sha256(state).digest())


def link_from_digest(
    previous: bytes, position: int, originator_id: UUID | str, version: int, topic: str, state_sha256: bytes
) -> bytes:
    """``SHA-256(previous link ‖ position, entity, version, topic ‖ SHA-256(stored state))``.

    Linking the state's digest rather than the state lets an audit export carry
    what an auditor needs to check every link without copying event contents.
    """
    header = f"{position}\x1f{_id(originator_id)}\x1f{version}\x1f{topic}\x1f".encode()
    return hashlib.sha256(previous + header + state_sha256).digest()


def _lock_waited(seconds: float) -> None:
    observer = lock_wait_observer
    if observer is not None:
        observer(seconds)


class _WriteTransaction(SQLiteTransaction):
    """A transaction that takes the database's write lock first (``BEGIN IMMEDIATE``), so the
    time spent waiting for another writer is known apart from the time spent writing."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # busy past the timeout: as the library maps it
            cursor.sqlite_cursor.close()
            raise OperationalError(error) from error
        return cursor


class SQLiteChainedRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        secure_pool(self.datastore)  # infra.sqlite_hygiene

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert, in a transaction that begins with the write lock: the wait
        for it (this process's writer slot, then the file's lock) is reported on its own."""
        started = time.perf_counter()
        with self.datastore.get_connection(commit=True) as conn, _WriteTransaction(conn, commit=True) as curs, curs:
            _lock_waited(time.perf_counter() - started)
            return self._insert_events(curs, stored_events, **kwargs)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position INTEGER PRIMARY KEY, link BLOB NOT NULL)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if ids:
            reads = kwargs.get("reads")
            if isinstance(reads, ReadCheck):  # an exception here rolls the transaction back
                reads.verify(ids[0], lambda start, stop: self._select_between(c, start, stop))
            c.execute(f"SELECT link FROM {CHAIN_TABLE} ORDER BY position DESC LIMIT 1")  # noqa: S608
            row = c.fetchone()
            previous = bytes(row[0]) if row else GENESIS
            for position, event in zip(ids, stored_events, strict=True):
                previous = link_for(previous, position, _id(event.originator_id), event.originator_version,
                                    event.topic, event.state)  # fmt: skip
                c.execute(f"INSERT INTO {CHAIN_TABLE} (position, link) VALUES (?, ?)", (position, previous))  # noqa: S608
        return ids

    def _select_between(self, c: SQLiteCursor, start: int, stop: int) -> list[tuple[int, str, int, str]]:
        c.execute(
            f"SELECT rowid, originator_id, originator_version, topic FROM {self.events_table_name} "  # noqa: S608
            "WHERE rowid >= ? AND rowid <= ?",
            (start, stop),
        )
        return [(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in c.fetchall()]

    def select_links(self, start: int, stop: int) -> dict[int, bytes]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, link FROM {CHAIN_TABLE} WHERE position >= ? AND position <= ?", (start, stop))  # noqa: S608
            return {r[0]: bytes(r[1]) for r in c.fetchall()}

    def link_before(self, position: int) -> bytes:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT link FROM {CHAIN_TABLE} WHERE position < ? ORDER BY position DESC LIMIT 1", (position,))  # noqa: S608
            row = c.fetchone()
            return bytes(row[0]) if row else GENESIS

    def max_link_position(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT MAX(position) FROM {CHAIN_TABLE}")  # noqa: S608
            return int(c.fetchone()[0] or 0)


class PostgresChainedRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.chain_table = Composed([Identifier(self.datastore.schema), SQL("."), Identifier(CHAIN_TABLE)])
        self._last_link: tuple[int, bytes] | None = None
        """(position, link) of the newest link this process committed."""
        self._last_link_lock = threading.Lock()
        self._pending = threading.local()
        """The newest link of the insert in progress on this thread, remembered once it commits."""
        self._insert_columns_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(self.datastore.originator_id_type),
        )
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {0} (position bigint PRIMARY KEY, link bytea NOT NULL)").format(
                self.chain_table
            )
        )

    def create_table(self) -> None:
        with creating_tables(self.datastore):  # other processes may be starting too
            super().create_table()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert (pipelined: lock, notify, insert, then fetch the positions),
        except that an exception raised after the positions are known rolls the transaction
        back: the library's version keeps the pipeline quiet by catching it inside the
        transaction, which would commit events whose reads were stale.

        The newest link is remembered once the transaction has committed, so the next
        insert in this process need not read it back (see :meth:`_previous_link`)."""
        if self.datastore.enable_db_functions:  # the library's stored function: no chain hook runs
            raise NotImplementedError("the hash chain needs POSTGRES_ENABLE_DB_FUNCTIONS off")
        failure: Exception | None = None
        ids: Sequence[int] | None = None
        self._pending.link = None
        self._pending.lock_wait = None
        with self.datastore.get_connection() as conn:
            with conn.pipeline() as pipeline, conn.transaction():
                with conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                if stored_events:
                    with conn.cursor() as curs:
                        try:
                            self._insert_stored_events(curs, stored_events, **kwargs)
                            pipeline.sync()  # a uniqueness violation raises here, not at COMMIT
                            ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                            self._report_lock_wait()
                        except Exception as error:  # raised below, once the pipeline is quiet
                            failure = error
                    if isinstance(failure, StaleRead):
                        raise Rollback
            if failure is not None:
                raise failure
        pending = self._pending.link
        if pending is not None:
            with self._last_link_lock:
                if self._last_link is None or pending[0] > self._last_link[0]:
                    self._last_link = pending
        return ids

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any) -> None:
        """The library's lock and notification, then the rows as four arrays in binary:
        its array of a composite type goes through psycopg's text escaping, a quarter
        of a bulk import's time."""
        self._lock_table(curs)
        if lock_wait_observer is not None:
            # In the same pipeline, no round trip of its own: the lock is the transaction's first
            # statement, so the time from the transaction's start to now is the wait for it.
            waited = curs.connection.cursor()
            waited.execute(LOCK_WAITED)
            self._pending.lock_wait = waited
        self._notify_channel(curs)
        curs.execute(
            self._insert_columns_statement,
            (
                [event.originator_id for event in stored_events],
                [event.originator_version for event in stored_events],
                [event.topic for event in stored_events],
                [event.state for event in stored_events],
            ),
        )

    def _report_lock_wait(self) -> None:
        waited = getattr(self._pending, "lock_wait", None)
        if waited is None:
            return
        self._pending.lock_wait = None
        with waited:
            row = waited.fetchone()
        if row is not None:
            _lock_waited(float(row["waited"]))

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if ids:
            reads = kwargs.get("reads")
            if isinstance(reads, ReadCheck):
                reads.verify(ids[0], lambda start, stop: self._select_between(curs, start, stop))
            previous = self._previous_link(curs, ids[0])
            links = []
            for position, event in zip(ids, stored_events, strict=True):
                previous = link_for(previous, position, _id(event.originator_id), event.originator_version,
                                    event.topic, event.state)  # fmt: skip
                links.append((position, previous))
            curs.execute(  # one statement for the batch: a bulk import's 1,000 rows, executemany'd, cost 2 s in 20
                SQL("INSERT INTO {0} (position, link) SELECT * FROM unnest(%s::bigint[], %s::bytea[])").format(
                    self.chain_table
                ),
                ([position for position, _ in links], [link for _, link in links]),
            )
            self._pending.link = links[-1]
        return ids

    def _previous_link(self, curs: Cursor[DictRow], first_position: int) -> bytes:
        """The link before ``first_position``. Under the table lock every earlier position
        is committed or gone, so if this process committed the position just before, its
        remembered link is the predecessor; otherwise (another writer, or a rolled-back
        insert left a gap in the sequence) it is read back."""
        with self._last_link_lock:
            last = self._last_link
        if last is not None and last[0] == first_position - 1:
            return last[1]
        curs.execute(SQL("SELECT link FROM {0} ORDER BY position DESC LIMIT 1").format(self.chain_table))
        row = curs.fetchone()
        return bytes(row["link"]) if row else GENESIS

    def _select_between(self, curs: Cursor[DictRow], start: int, stop: int) -> list[tuple[int, UUID, int, str]]:
        curs.execute(
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic FROM {0}.{1} "
                "WHERE notification_id >= %s AND notification_id <= %s"
            ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name)),
            (start, stop),
        )
        rows = curs.fetchall()
        return [(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"]) for r in rows]

    def select_links(self, start: int, stop: int) -> dict[int, bytes]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT position, link FROM {0} WHERE position >= %s AND position <= %s").format(self.chain_table),
                (start, stop),
            )
            return {r["position"]: bytes(r["link"]) for r in curs.fetchall()}

    def link_before(self, position: int) -> bytes:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT link FROM {0} WHERE position < %s ORDER BY position DESC LIMIT 1").format(self.chain_table),
                (position,),
            )
            row = curs.fetchone()
            return bytes(row["link"]) if row else GENESIS

    def max_link_position(self) -> int:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SELECT MAX(position) AS m FROM {0}").format(self.chain_table))
            row = curs.fetchone()
            return int(row["m"] or 0) if row else 0


def _id(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


@dataclass(frozen=True)
class ChainEntry:
    """What an auditor needs to check one link: its inputs and its predecessor's link."""

    position: int
    entity_id: str
    version: int
    topic: str
    state_sha256: str
    previous_link: str
    link: str


def chain_entries(recorder: ApplicationRecorder, positions: Sequence[int]) -> dict[int, ChainEntry]:
    """Chain entries for the given positions (a filtered export's rows)."""
    if not positions or not isinstance(recorder, SQLiteChainedRecorder | PostgresChainedRecorder):
        return {}
    low, high = min(positions), max(positions)
    links = recorder.select_links(low, high)
    ordered = sorted(links)
    before_low = recorder.link_before(low)  # positions may have gaps: the predecessor is the last link before
    previous_of = {p: (links[ordered[i - 1]] if i else before_low) for i, p in enumerate(ordered)}
    wanted = set(positions)
    notifications = recorder.select_notifications(start=low, limit=high - low + 1, stop=high)
    events = {n.id: n for n in notifications if n.id in wanted}
    return {
        p: ChainEntry(
            position=p,
            entity_id=_id(events[p].originator_id),
            version=events[p].originator_version,
            topic=events[p].topic,
            state_sha256=hashlib.sha256(events[p].state).hexdigest(),
            previous_link=previous_of[p].hex(),
            link=links[p].hex(),
        )
        for p in positions
        if p in events and p in links
    }


@dataclass(frozen=True)
class ChainReport:
    """``first_broken`` is the first position whose event or link does not match (None: intact)."""

    checked: int
    first_broken: int | None
    problem: str | None

    @property
    def intact(self) -> bool:
        return self.first_broken is None


def chain_links(notifications: Iterator[Notification]) -> Iterator[tuple[int, bytes]]:
    previous = GENESIS
    for n in notifications:
        previous = link_for(previous, n.id, _id(n.originator_id), n.originator_version, n.topic, n.state)
        yield n.id, previous


def verify_chain(recorder: ApplicationRecorder) -> ChainReport:
    """Recompute every link from the stored events and compare with the stored links.

    Positions need not be contiguous (PostgreSQL's sequence skips the ids of
    rolled-back inserts), but every event must have its link and every link its
    event: a deleted event leaves its link behind, and deleting both breaks the
    next link. Removing the newest events together with their links is only
    detectable against a head link kept elsewhere (the audit export carries it).
    """
    if not isinstance(recorder, SQLiteChainedRecorder | PostgresChainedRecorder):
        return ChainReport(0, None, "this store keeps no hash chain")
    last = max(recorder.max_notification_id() or 0, recorder.max_link_position())
    previous, start, checked = GENESIS, 1, 0
    while start <= last:
        stop = min(last, start + VERIFY_BATCH - 1)
        events = {n.id: n for n in recorder.select_notifications(start=start, limit=VERIFY_BATCH, stop=stop)}
        links = recorder.select_links(start, stop)
        for position in sorted(set(events) | set(links)):
            event = events.get(position)
            if event is None:
                return ChainReport(checked, position, "event missing (its row was deleted)")
            previous = link_for(previous, position, _id(event.originator_id), event.originator_version,
                                event.topic, event.state)  # fmt: skip
            stored = links.get(position)
            if stored is None:
                return ChainReport(checked, position, "chain link missing")
            if stored != previous:
                return ChainReport(checked, position, "event or link altered")
            checked += 1
        start = stop + 1
    return ChainReport(checked, None, None)


__all__ = ["PostgresChainedRecorder", "SQLiteChainedRecorder", "SQLiteDatastore", "verify_chain"]

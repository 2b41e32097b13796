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
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
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
from psycopg import Connection, Cursor, Rollback
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, TupleRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from infra.postgres_ddl import creating_tables
from infra.read_check import ReadCheck, StaleRead, as_uuid
from infra.sqlite_hygiene import secure_pool

GENESIS = bytes(32)

lock_wait_observer: Callable[[float], None] | None = None
"""Told how many seconds each insert waited for the store's write lock (the service layer
reports it as a metric; infra knows nothing of metrics)."""
CHAIN_TABLE = "gam_event_chain"
VERIFY_BATCH = 2_000
Between = list[tuple[int, Any, int, str]]
"""(position, entity, version, topic) of events stored by others between what a unit of work knew and its own."""


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
                reads.verify(
                    ids[0],
                    lambda start, stop: self._select_between(c, start, stop),
                    lambda entities: self._select_first(c, entities),
                )
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

    def _select_first(self, c: SQLiteCursor, entities: Sequence[UUID]) -> list[StoredEvent]:
        marks = ",".join("?" * len(entities))
        c.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "  # noqa: S608
            f"WHERE originator_version = 1 AND originator_id IN ({marks})",
            [_id(entity) for entity in entities],  # as the library stores them
        )
        return [StoredEvent(UUID(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in c.fetchall()]

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


STORE_FUNCTION = "gam_store_new_events"
COMMIT_FUNCTION = "gam_commit_new_events"
STALE_READ = "gam: stale read"
"""The message :data:`STORE_FUNCTION` raises for a stale read; its detail is
``<entity id> <version read> <version stored>``."""


class PostgresChainedRecorder(PostgresApplicationRecorder):
    """Stores events, their links and (with a :class:`ReadCheck`) the check of what the
    unit of work read, in one transaction under the library's table lock.

    Commands queue on that lock, so what counts is how long each one holds it. One
    server function (:data:`STORE_FUNCTION`, created with the tables) checks the reads,
    inserts the events, makes their links and answers the events stored in between.
    :data:`COMMIT_FUNCTION` calls it after taking the lock itself, so the lock is taken
    once every argument is at the server, and never held while Python works: psycopg
    sends each statement of a pipeline as it is executed, and with the lock a statement
    of its own before the function, the lock was held while this thread encoded the
    function's arrays and waited for the interpreter's lock (see :meth:`_store_and_commit`).
    Earlier still, with the links and the check made here (two or three round trips and
    the chain computed between them), a command in ``gam serve`` held the lock 10-11 ms
    (8 clients), of which PostgreSQL's statement log accounted for about 1.5 ms.
    The insert is inside the function, not a statement before it, so that a refused
    insert (a conflict) fails the function's own statement and nothing after it is
    skipped: the function's statement can then be prepared like any other (psycopg
    counts as prepared a statement its pipeline skipped after an error). Only a read
    check that judges the events in between with a Python function (the personal-data
    guard's ``watched``) keeps the transaction open after the function: it judges what
    the function answered, and COMMIT is sent after it."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        events = Composed([schema, SQL("."), Identifier(self.events_table_name)])
        id_type = Identifier(self.datastore.originator_id_type)
        self.chain_table = Composed([schema, SQL("."), Identifier(CHAIN_TABLE)])
        self._first_events_statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {0} "
            "WHERE originator_id = ANY(%s::{1}[]) AND originator_version = 1"
        ).format(events, id_type)
        self._commit_statement = SQL(
            "SELECT * FROM {0}.{1}(%s, %b::{2}[], %b::bigint[], %b::text[], %b::bytea[], %s, %s::{2}[], %s::bigint[])"
        ).format(schema, Identifier(COMMIT_FUNCTION), id_type)
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {0} (position bigint PRIMARY KEY, link bytea NOT NULL)").format(
                self.chain_table
            ),
            # The function of the version before (gam_link_new_events) is left in place: API
            # processes of that version may still be committing during a rolling upgrade.
            _store_function(schema, events, self.chain_table, id_type),
            _commit_function(schema, events, id_type, Identifier(self.channel_name)),
        ]

    def create_table(self) -> None:
        with creating_tables(self.datastore):  # other processes may be starting too
            super().create_table()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """:data:`COMMIT_FUNCTION`: the library's lock and notification, then
        :data:`STORE_FUNCTION` (the read check if there is one, the insert, the links, the
        events stored in between), committed with it. A failure (a stale read, a uniqueness
        violation) rolls it back. A watching read check runs in the same transaction, on
        what the function answered, before COMMIT (a stale read rolls back; the library's
        version would have committed it, catching the error inside the transaction)."""
        if self.datastore.enable_db_functions:  # the library's stored function: no chain hook runs
            raise NotImplementedError("the hash chain needs POSTGRES_ENABLE_DB_FUNCTIONS off")
        reads = kwargs.get("reads")
        check = reads if isinstance(reads, ReadCheck) else None
        with self.datastore.get_connection() as conn:
            stored = conn.cursor(row_factory=tuple_row)  # a row per event stored: no dict for each
            try:
                failure, (ids, between) = self._store(conn, stored, stored_events, check, **kwargs)
                if failure is not None:
                    if conn.info.transaction_status == TransactionStatus.INERROR:
                        conn.rollback()  # not left for the pool to find
                    raise failure
                if not stored_events:
                    return None
                if check is not None:
                    check.between = [(position, as_uuid(entity), topic) for position, entity, _, topic in between]
                return ids
            finally:
                stored.close()

    def _store(
        self,
        conn: Connection[DictRow],
        stored: Cursor[TupleRow],
        stored_events: Sequence[StoredEvent],
        check: ReadCheck | None,
        **kwargs: Any,
    ) -> tuple[Exception | None, tuple[list[int], Between]]:
        """Send the transaction; the failure it met, if any (raised by the caller once the
        pipeline is quiet), and what :data:`STORE_FUNCTION` answered."""
        if stored_events and (check is None or check.watched is None):
            return self._store_and_commit(conn, stored, stored_events, check)
        failure: Exception | None = None
        ids: list[int] = []
        between: Between = []
        try:
            with conn.pipeline() as pipeline, conn.transaction():
                with conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                if stored_events:
                    try:
                        stored.execute(self._commit_statement, self._commit_arguments(stored_events, check))
                        pipeline.sync()  # a uniqueness violation or a stale read raises here, not at COMMIT
                        ids, between = _answer(stored.fetchall())
                        if check is not None and check.watched is not None:
                            check.verify(
                                ids[0],
                                lambda start, stop: [r for r in between if start <= r[0] <= stop],
                                lambda entities: self._select_first(conn, entities),
                            )
                    except Exception as error:  # raised by the caller, once the pipeline is quiet
                        failure = _as_stale_read(error)
                    if isinstance(failure, StaleRead):
                        raise Rollback
        except psycopg.Error as error:
            # The failure met inside comes first: psycopg may have read the function's error while
            # sending the next statement, and the pipeline's end then reports only that the
            # rest was skipped (PipelineAborted, which would read as the store being down).
            return failure or _as_stale_read(error), ([], [])
        except Rollback:  # the connection was lost: psycopg lets it out, with nothing committed
            return failure, ([], [])
        return failure, (ids, between)

    def _store_and_commit(
        self,
        conn: Connection[DictRow],
        stored: Cursor[TupleRow],
        stored_events: Sequence[StoredEvent],
        check: ReadCheck | None,
    ) -> tuple[Exception | None, tuple[list[int], Between]]:
        """One statement, :data:`COMMIT_FUNCTION`, in a transaction of its own (the
        connection is in autocommit): the lock, the notification and :data:`STORE_FUNCTION`,
        committed when it ends, when nothing is left to judge in Python before the commit.

        One statement, not a pipeline of BEGIN, the lock, the notification, the function
        and COMMIT: psycopg sends each statement of a pipeline as it is executed, so the
        lock was taken while this thread was still encoding the function's arrays, and
        held while it waited for the interpreter's lock, and again between the function
        and COMMIT. Three threads sending the demo mix through the service layer: 1,511
        commands/s before, 1,667 after; with the views followed beside them, 871 and 1,011."""
        arguments = self._commit_arguments(stored_events, check)
        try:
            stored.execute(self._commit_statement, arguments)
            return None, _answer(stored.fetchall())
        except psycopg.Error as error:
            return _as_stale_read(error), ([], [])

    def _commit_arguments(self, stored_events: Sequence[StoredEvent], check: ReadCheck | None) -> tuple[Any, ...]:
        """:data:`COMMIT_FUNCTION`'s arguments: the lock's timeout, then :data:`STORE_FUNCTION`'s
        (the rows as four arrays, sent in binary: the library's array of a composite type
        goes through psycopg's text escaping, a quarter of a bulk import's time; the position
        the unit of work knew; the entities it only read, with the versions it read, unless
        the check watches the events in between itself and judges them in Python)."""
        read_ids: list[Any] | None = None
        read_versions: list[int] | None = None
        if check is not None and check.watched is None:
            written = {event.originator_id for event in stored_events}
            only_read = [(entity, version) for entity, version in check.versions.items() if entity not in written]
            read_ids, read_versions = [entity for entity, _ in only_read], [version for _, version in only_read]
        return (
            self.datastore.lock_timeout,
            [event.originator_id for event in stored_events],
            [event.originator_version for event in stored_events],
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
            check.known if check is not None else None,
            read_ids,
            read_versions,
        )

    def _select_first(self, conn: Connection[DictRow], entities: Sequence[UUID]) -> list[StoredEvent]:
        """The first event of each entity, in the commit's transaction (a round trip more,
        only when the read check asks: see :meth:`ReadCheck.verify`)."""
        with conn.cursor() as curs:
            curs.execute(self._first_events_statement, (list(entities),))
            return [
                StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
                for r in curs.fetchall()
            ]

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


def _store_function(schema: Identifier, events: Composed, chain: Composed, id_type: Identifier) -> Composed:
    """``gam_store_new_events(ids, versions, topics, states, known, read_ids, read_versions)``,
    called in the insert's transaction under the table lock, in one statement:

    1. refuses (raises :data:`STALE_READ`) if an entity read at version ``v`` has a version
       ``v + 1`` stored: someone else changed it since (one index lookup per entity);
    2. inserts the events (a version already stored raises the unique key's violation);
    3. links them from the chain's last link, as :func:`link_for` does (:func:`verify_chain`
       checks both), from the values given, without reading the rows back;
    4. answers our positions (``ours``) and the events stored after ``known`` and before
       ours (none if it is null)."""
    return SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{name}(ids {id_type}[], versions bigint[], topics text[], "
        "states bytea[], known bigint, read_ids {id_type}[], read_versions bigint[]) RETURNS TABLE (ours boolean, "
        "stored_position bigint, stored_entity {id_type}, stored_version bigint, stored_topic text) "
        "LANGUAGE plpgsql AS $$\n"
        "DECLARE previous bytea; positions bigint[]; parts bytea[]; links bytea[] := '{{}}'; i integer;\n"
        "BEGIN\n"
        "  FOR i IN 1 .. coalesce(array_length(read_ids, 1), 0) LOOP\n"
        "    PERFORM 1 FROM {events} e WHERE e.originator_id = read_ids[i]\n"
        "      AND e.originator_version = read_versions[i] + 1;\n"
        "    IF FOUND THEN\n"
        "      RAISE EXCEPTION USING MESSAGE = {message},\n"
        "        DETAIL = read_ids[i]::text || ' ' || read_versions[i] || ' ' || (read_versions[i] + 1);\n"
        "    END IF;\n"
        "  END LOOP;\n"
        "  WITH inserted AS (\n"
        "    INSERT INTO {events} (originator_id, originator_version, topic, state)\n"
        "    SELECT * FROM unnest(ids, versions, topics, states)\n"
        "    RETURNING notification_id, originator_id, originator_version, topic, state)\n"
        "  SELECT array_agg(n.notification_id ORDER BY n.notification_id),\n"
        "    array_agg(convert_to(n.notification_id::text || chr(31) || replace(n.originator_id::text, '-', '')\n"
        "      || chr(31) || n.originator_version::text || chr(31) || n.topic || chr(31), 'UTF8')\n"
        "      || sha256(n.state) ORDER BY n.notification_id)\n"
        "    INTO positions, parts FROM inserted n;\n"
        "  SELECT c.link INTO previous FROM {chain} c ORDER BY c.position DESC LIMIT 1;\n"
        "  IF previous IS NULL THEN previous := decode(repeat('00', 32), 'hex'); END IF;\n"
        "  FOR i IN 1 .. array_length(positions, 1) LOOP\n"
        "    previous := sha256(previous || parts[i]);\n"
        "    links := links || previous;\n"
        "  END LOOP;\n"
        "  INSERT INTO {chain} (position, link) SELECT * FROM unnest(positions, links);\n"
        "  RETURN QUERY SELECT true, p.position, NULL::{id_type}, NULL::bigint, NULL::text\n"
        "    FROM unnest(positions) AS p(position);\n"
        "  IF known IS NOT NULL THEN\n"
        "    RETURN QUERY SELECT false, e.notification_id, e.originator_id, e.originator_version, e.topic\n"
        "      FROM {events} e WHERE e.notification_id > known AND e.notification_id < positions[1]\n"
        "      ORDER BY e.notification_id;\n"
        "  END IF;\n"
        "END $$"
    ).format(
        schema=schema, name=Identifier(STORE_FUNCTION), id_type=id_type, events=events, chain=chain, message=STALE_READ
    )


def _commit_function(schema: Identifier, events: Composed, id_type: Identifier, channel: Identifier) -> Composed:
    """``gam_commit_new_events(lock_seconds, <STORE_FUNCTION's arguments>)``: what a
    commit does under the table lock, in one statement. It sets the lock's timeout
    (``lock_seconds``; 0 waits for ever), takes the library's lock (see
    ``PostgresApplicationRecorder._lock_table``), notifies the commit's channel, and
    answers :data:`STORE_FUNCTION`'s rows, each with the seconds the lock was waited for.
    It runs as a transaction of its own, so the lock is held from the moment every
    argument has arrived until the commit."""
    return SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{name}(lock_seconds integer, ids {id_type}[], versions bigint[], "
        "topics text[], states bytea[], known bigint, read_ids {id_type}[], read_versions bigint[]) "
        "RETURNS TABLE (ours boolean, stored_position bigint, stored_entity {id_type}, stored_version bigint, "
        "stored_topic text, lock_waited double precision) LANGUAGE plpgsql AS $$\n"
        "DECLARE waited double precision;\n"
        "BEGIN\n"
        "  PERFORM set_config('lock_timeout', lock_seconds::text || 's', true);\n"
        "  LOCK TABLE {events} IN EXCLUSIVE MODE;\n"
        "  waited := EXTRACT(EPOCH FROM clock_timestamp() - statement_timestamp());\n"
        "  NOTIFY {channel};\n"
        "  RETURN QUERY SELECT s.*, waited FROM {schema}.{store}(ids, versions, topics, states, known, read_ids, "
        "read_versions) s;\n"
        "END $$"
    ).format(
        schema=schema,
        name=Identifier(COMMIT_FUNCTION),
        id_type=id_type,
        events=events,
        channel=channel,
        store=Identifier(STORE_FUNCTION),
    )


def _as_stale_read(error: Exception) -> Exception:
    """The :class:`StaleRead` :data:`STORE_FUNCTION` raised, if it was that; else the error."""
    if not isinstance(error, psycopg.errors.RaiseException):
        return error
    diag = error.diag
    if diag.message_primary != STALE_READ or not diag.message_detail:
        return error
    entity, read, stored = diag.message_detail.split()
    return StaleRead(UUID(entity), int(read), int(stored))


def _answer(rows: Sequence[Sequence[Any]]) -> tuple[list[int], Between]:
    """What :data:`COMMIT_FUNCTION` answered: our positions, in order, and the events stored
    in between; the wait for the lock it took goes to :data:`lock_wait_observer`."""
    if rows:
        _lock_waited(float(rows[0][5]))
    ours: list[int] = []
    between: Between = []
    for is_ours, position, entity, version, topic, _ in rows:
        if is_ours:
            ours.append(position)
        else:
            between.append((position, entity, version, topic))
    return ours, between


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

"""View storage in the SQLite file that holds the events."""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from infra.list_sql import FACET_INDEXES, LIST_COLUMNS, SQLITE, list_where
from infra.sqlite_hygiene import secure_pool
from projections.encoding import dumps, format_time, loads, parse_time
from projections.ports import (
    LIST_FACETS,
    TRACKING_SEPARATOR,
    AuditQuery,
    AuditRow,
    Document,
    Generations,
    GenerationSwitched,
    ListQuery,
    ListRow,
    ViewChange,
    ViewRecorder,
    generation_key,
)

_AUDIT_COLUMNS = (
    "position, occurred_at, actor, account_id, entity_type, entity_id, version, "
    "event_type, changes, reason, correlation_id, causation_id"
)

_INSERT_LIST = (
    f"INSERT INTO gam_view_lists (view, {LIST_COLUMNS}) VALUES ({','.join('?' * (6 + len(LIST_FACETS)))}) "  # noqa: S608
    "ON CONFLICT (view, kind, entity_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ("account_id", "sort_key", *LIST_FACETS, "body"))
)

_LIVE_KEY = "COALESCE((SELECT live_key FROM gam_view_generations WHERE view = ?), ?)"
"""The key of the view's live generation, resolved inside the statement that reads it,
so one statement never mixes generations (two parameters: the view's name twice)."""

_GENERATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS gam_view_generations ("
    "view TEXT PRIMARY KEY, live INTEGER NOT NULL, live_key TEXT NOT NULL, building INTEGER, retired INTEGER)"
)


def audit_table(generation: int) -> str:
    """Generation 1's audit rows stay in ``gam_audit_trail``; a later one has a table of
    its own (generation numbers are unique across views), dropped with it in one step."""
    return "gam_audit_trail" if generation == 1 else f"gam_audit_trail_{generation}"


def _audit_ddl(generation: int) -> list[str]:
    table = audit_table(generation)
    prefix = "gam_audit" if generation == 1 else f"gam_audit_{generation}"
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ("
        "position INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL, actor TEXT NOT NULL, "
        "account_id TEXT, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, version INTEGER NOT NULL, "
        "event_type TEXT NOT NULL, changes TEXT NOT NULL, reason TEXT, correlation_id TEXT NOT NULL, "
        "causation_id TEXT)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_account ON {table} (account_id, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_entity ON {table} (entity_id, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_account_entity ON {table} (account_id, entity_id, version, occurred_at)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_actor ON {table} (actor, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_type ON {table} (event_type, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}_time ON {table} (occurred_at)",
    ]


class SQLiteViewRecorder(SQLiteTrackingRecorder, ViewRecorder):
    """Documents in ``gam_view_documents``, audit rows in ``gam_audit_trail``, and the
    position in the library's ``tracking`` table under ``<application>::<view>``; a
    later generation ``g`` under ``<view>#g``, in ``gam_audit_trail_<g>`` and at
    ``<application>::<view>#g``, and ``gam_view_generations`` says which one is live."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        secure_pool(self.datastore)  # a rewritten row leaves no copy in the file
        self._one: tuple[int, SQLiteCursor] | None = None

    def create_table(self) -> None:
        super().create_table()
        live = self.generations().live
        if live != 1 and self.keeps_audit_rows:  # the indexes a newer gam added, on the rows in use
            with self._transaction(commit=True) as c:
                for statement in _audit_ddl(live):
                    c.execute(statement)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS gam_view_documents ("
            "view TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (view, key)) WITHOUT ROWID",
            *_audit_ddl(1),
            _GENERATIONS_TABLE,
            "CREATE TABLE IF NOT EXISTS gam_view_lists ("
            "view TEXT NOT NULL, kind TEXT NOT NULL, entity_id TEXT NOT NULL, account_id TEXT NOT NULL, "
            "sort_key TEXT NOT NULL, "
            + "".join(f"{facet} TEXT, " for facet in LIST_FACETS)
            + "body TEXT NOT NULL, PRIMARY KEY (view, kind, entity_id)) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS gam_view_lists_account "
            "ON gam_view_lists (view, kind, account_id, sort_key, entity_id)",
            "CREATE INDEX IF NOT EXISTS gam_view_lists_order ON gam_view_lists (view, kind, sort_key, entity_id)",
            *(
                f"CREATE INDEX IF NOT EXISTS gam_view_lists_{name} "
                f"ON gam_view_lists (view, kind, account_id, {columns})"
                for name, columns in FACET_INDEXES
            ),
        ]

    @contextmanager
    def in_one_transaction(self) -> Iterator[None]:
        with self.datastore.transaction(commit=True) as c:
            self._one = (threading.get_ident(), c)
            try:
                yield
            finally:
                self._one = None

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        """The block's transaction of :meth:`in_one_transaction` on this thread, or a new one."""
        one = self._one
        if one is not None and one[0] == threading.get_ident():
            yield one[1]
            return
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def _view(self) -> tuple[str, tuple[str, ...]]:
        """``view = <the generation read>`` and its parameters: the pinned generation, or
        the live one as the statement finds it."""
        if self.pinned:
            return "view = ?", (self.key,)
        return f"view = {_LIVE_KEY}", (self.view_name, self.view_name)

    def _insert_tracking(self, c: SQLiteCursor, tracking: Tracking) -> None:
        if tracking.application_name != self.table_migration_identifier:
            tracking = Tracking(self.tracking_name(tracking.application_name), tracking.notification_id)
        super()._insert_tracking(c, tracking)

    def _max_tracking_id(self, application_name: str, c: SQLiteCursor) -> int | None:
        if application_name == self.table_migration_identifier:
            return super()._max_tracking_id(application_name, c)
        if self.pinned:
            return super()._max_tracking_id(self.tracking_name(application_name), c)
        c.execute(
            f"SELECT MAX(notification_id) FROM tracking WHERE application_name = ? || ? || {_LIVE_KEY}",  # noqa: S608
            (application_name, TRACKING_SEPARATOR, self.view_name, self.view_name),
        )
        found: int | None = c.fetchone()[0]
        return found

    def max_tracking_id(self, application_name: str) -> int | None:
        with self._transaction(commit=False) as c:
            return self._max_tracking_id(application_name, c)

    def insert_tracking(self, tracking: Tracking) -> None:
        with self._transaction(commit=True) as c:
            self._insert_tracking(c, tracking)

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        """One statement per kind of row for the whole change (a catch-up's batch
        holds thousands). A writer of the live generation first takes the write lock
        (a write to the generations' row) and checks it is still live: no rebuild can
        take over until it has committed."""
        view = self.key
        documents = change.documents.items()
        with self._transaction(commit=True) as c:
            if not self.pinned:
                c.execute("UPDATE gam_view_generations SET live = live WHERE view = ?", (self.view_name,))
                live = self._live(c)
                if live != self.generation:
                    raise GenerationSwitched(self.view_name, self.generation, live)
            gone = [(view, key) for key, body in documents if body is None]
            if gone:
                c.executemany("DELETE FROM gam_view_documents WHERE view = ? AND key = ?", gone)
            kept = [(view, key, dumps(body)) for key, body in documents if body is not None]
            if kept:
                c.executemany(
                    "INSERT INTO gam_view_documents (view, key, body) VALUES (?, ?, ?) "
                    "ON CONFLICT (view, key) DO UPDATE SET body = excluded.body",
                    kept,
                )
            if change.audit_rows:
                c.executemany(
                    f"INSERT INTO {audit_table(self.generation)} ({_AUDIT_COLUMNS}) VALUES ({','.join('?' * 12)})",  # noqa: S608
                    [_row(row) for row in change.audit_rows],
                )
            lists = change.list_rows.items()
            gone_rows = [(view, kind, entity) for (kind, entity), row in lists if row is None]
            if gone_rows:
                c.executemany("DELETE FROM gam_view_lists WHERE view = ? AND kind = ? AND entity_id = ?", gone_rows)
            kept_rows = [(view, *list_row_values(row)) for _, row in lists if row is not None]
            if kept_rows:
                c.executemany(_INSERT_LIST, kept_rows)
            self._insert_tracking(c, tracking)

    def _live(self, c: SQLiteCursor) -> int:
        c.execute("SELECT live FROM gam_view_generations WHERE view = ?", (self.view_name,))
        row = c.fetchone()
        return 1 if row is None else int(row[0])

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        where, params = self._view()
        with self._transaction(commit=False) as c:
            c.execute(f"SELECT key, body FROM gam_view_documents WHERE {where} AND key IN ({marks})", (*params, *keys))  # noqa: S608
            return {r["key"]: loads(r["body"]) for r in c.fetchall()}

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        where, params = self._view()
        with self._transaction(commit=False) as c:
            c.execute(
                f"SELECT key, body FROM gam_view_documents WHERE {where} AND key >= ? AND key < ? ORDER BY key",  # noqa: S608
                (*params, prefix, prefix + "\U0010ffff"),
            )
            return {r["key"]: loads(r["body"]) for r in c.fetchall()}

    def _audit_select(self, sql: str, params: Sequence[object] | Mapping[str, object]) -> list[Any]:
        """Run ``sql`` (``{table}`` standing for the audit table) on the generation read.
        The live one is looked up in the same read transaction (one snapshot), so rows a
        rebuild deleted since are still seen; if its table was dropped in between, the
        statement fails and the new live generation, whole, is read instead."""
        for _ in range(3):
            with self._transaction(commit=False) as c:
                generation = self.generation if self.pinned else self._live(c)
                try:
                    c.execute(sql.format(table=audit_table(generation)), params)
                    return list(c.fetchall())
                except Exception:
                    if self.pinned or self._live(c) == generation:
                        raise
        msg = f"the audit rows of view {self.view_name} kept moving to new generations"
        raise RuntimeError(msg)

    def select_audit(self, query: AuditQuery) -> list[AuditRow]:
        where: list[str] = ["position > ?"]
        params: list[object] = [query.after_position]
        for column, value in (
            ("account_id", query.account_id),
            ("entity_id", query.entity_id),
            ("actor", query.actor),
            ("event_type", query.event_type),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(str(value))
        if query.since is not None:
            where.append("occurred_at >= ?")
            params.append(format_time(query.since))
        if query.until is not None:
            where.append("occurred_at < ?")
            params.append(format_time(query.until))
        sql = f"SELECT {_AUDIT_COLUMNS} FROM {{table}} WHERE {' AND '.join(where)} ORDER BY position LIMIT ?"  # noqa: S608
        return [_audit_row(r) for r in self._audit_select(sql, (*params, query.limit))]

    def select_list(self, query: ListQuery) -> list[ListRow]:
        where, params = list_where(*self._view(), query, SQLITE)
        sql = f"SELECT {LIST_COLUMNS} FROM gam_view_lists WHERE {where} ORDER BY sort_key, entity_id LIMIT ?"  # noqa: S608
        with self._transaction(commit=False) as c:
            c.execute(sql, (*params, query.limit))
            return [list_row_of(r) for r in c.fetchall()]

    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        """The account's entities by a skip scan of the ``(account_id, entity_id, version,
        occurred_at)`` index, and each one's highest version stored by the moment (as on
        PostgreSQL)."""
        rows = self._audit_select(
            "WITH RECURSIVE entities (entity_id) AS ("
            " SELECT (SELECT entity_id FROM {table} WHERE account_id = :account ORDER BY entity_id LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT a.entity_id FROM {table} a WHERE a.account_id = :account"
            "  AND a.entity_id > e.entity_id ORDER BY a.entity_id LIMIT 1)"
            " FROM entities e WHERE e.entity_id IS NOT NULL) "
            "SELECT entity_id, (SELECT version FROM {table} v WHERE v.account_id = :account"
            "  AND v.entity_id = e.entity_id AND v.occurred_at <= :moment"
            "  ORDER BY v.version DESC LIMIT 1) AS version "
            "FROM entities e WHERE entity_id IS NOT NULL",
            {"account": str(account_id), "moment": format_time(moment)},
        )
        return {UUID(r["entity_id"]): r["version"] for r in rows if r["version"] is not None}

    def reset(self, *, audit_rows: bool) -> None:
        with self._transaction(commit=True) as c:
            self._delete_rows(c, self.generation, audit_rows=audit_rows)

    def _delete_rows(self, c: SQLiteCursor, generation: int, *, audit_rows: bool) -> None:
        key = generation_key(self.view_name, generation)
        c.execute("DELETE FROM gam_view_documents WHERE view = ?", (key,))
        c.execute("DELETE FROM gam_view_lists WHERE view = ?", (key,))
        if audit_rows:
            c.execute(f"DELETE FROM {audit_table(generation)}")  # noqa: S608
        suffix = TRACKING_SEPARATOR + key
        c.execute(
            "DELETE FROM tracking WHERE substr(application_name, -?) = ?",
            (len(suffix), suffix),
        )

    def generations(self) -> Generations:
        with self._transaction(commit=False) as c:
            return self._generations(c)

    def _generations(self, c: SQLiteCursor) -> Generations:
        c.execute("SELECT live, building, retired FROM gam_view_generations WHERE view = ?", (self.view_name,))
        row = c.fetchone()
        return Generations() if row is None else Generations(row["live"], row["building"], row["retired"])

    def start_generation(self, *, fresh: bool = False) -> int:
        with self._transaction(commit=True) as c:
            c.execute(  # a write first: the transaction holds the write lock from here on
                "INSERT INTO gam_view_generations (view, live, live_key) VALUES (?, 1, ?) "
                "ON CONFLICT (view) DO NOTHING",
                (self.view_name, self.view_name),
            )
            found = self._generations(c)
            building = found.resumable(fresh=fresh)
            if building is None:
                c.execute(
                    "SELECT MAX(MAX(live, COALESCE(building, 0), COALESCE(retired, 0))) FROM gam_view_generations"
                )
                building = max(int(c.fetchone()[0] or 1), 1) + 1
                c.execute("UPDATE gam_view_generations SET building = ? WHERE view = ?", (building, self.view_name))
            for statement in _audit_ddl(building) if self.keeps_audit_rows else ():
                c.execute(statement)
        for left in found.left_behind(building):
            self.drop_generation(left)
        return building

    def at_generation(self, generation: int) -> SQLiteViewRecorder:
        pinned = copy.copy(self)
        pinned.generation, pinned.pinned, pinned._one = generation, True, None
        return pinned

    @contextmanager
    def take_over(self) -> Iterator[None]:
        with self.in_one_transaction():
            c = self._one[1] if self._one else None
            assert c is not None
            c.execute(  # a write first: nothing else commits until this transaction does
                "UPDATE gam_view_generations SET building = building WHERE view = ?", (self.view_name,)
            )
            yield
            c.execute(
                "UPDATE gam_view_generations SET retired = live, live = ?, live_key = ?, building = NULL "
                "WHERE view = ? AND building = ?",
                (self.generation, self.key, self.view_name, self.generation),
            )
            c.execute("SELECT changes()")
            if c.fetchone()[0] != 1:
                msg = f"generation {self.generation} of view {self.view_name} is not the one being built"
                raise RuntimeError(msg)

    def drop_generation(self, generation: int) -> None:
        with self._transaction(commit=True) as c:
            c.execute(
                "UPDATE gam_view_generations SET "
                "building = CASE WHEN building = ? THEN NULL ELSE building END, "
                "retired = CASE WHEN retired = ? THEN NULL ELSE retired END WHERE view = ?",
                (generation, generation, self.view_name),
            )
            if self._live(c) == generation:
                msg = f"generation {generation} of view {self.view_name} is live"
                raise ValueError(msg)
            # generation 1's audit table is created by every process at start (and shared by
            # the views): emptied, by the view that has audit rows; a later one's is dropped
            self._delete_rows(c, generation, audit_rows=generation == 1 and self.keeps_audit_rows)
            if generation != 1 and self.keeps_audit_rows:
                c.execute(f"DROP TABLE IF EXISTS {audit_table(generation)}")


_text = functools.lru_cache(maxsize=65_536)(str)
"""``str`` of an account's or entity's id: the same few come back event after event."""


def _row(row: AuditRow) -> tuple[Any, ...]:
    return (
        row.position,
        format_time(row.occurred_at),
        row.actor,
        None if row.account_id is None else _text(row.account_id),
        row.entity_type,
        _text(row.entity_id),
        row.version,
        row.event_type,
        dumps(list(row.changes)),
        row.reason,
        str(row.correlation_id),
        None if row.causation_id is None else str(row.causation_id),
    )


def _audit_row(r: Any) -> AuditRow:
    return AuditRow(
        position=r["position"],
        occurred_at=parse_time(r["occurred_at"]),
        actor=r["actor"],
        account_id=None if r["account_id"] is None else UUID(r["account_id"]),
        entity_type=r["entity_type"],
        entity_id=UUID(r["entity_id"]),
        version=r["version"],
        event_type=r["event_type"],
        changes=tuple(loads(r["changes"])),
        reason=r["reason"],
        correlation_id=UUID(r["correlation_id"]),
        causation_id=None if r["causation_id"] is None else UUID(r["causation_id"]),
    )


def list_row_values(row: ListRow) -> tuple[Any, ...]:
    """The row's columns in :data:`~infra.list_sql.LIST_COLUMNS` order (SQLite and PostgreSQL)."""
    facets = row.facets
    return (
        row.kind,
        row.entity_id,
        row.account_id,
        row.sort_key,
        *(facets.get(facet) for facet in LIST_FACETS),
        dumps(row.body),
    )


def list_row_of(r: Any) -> ListRow:
    facets = {facet: r[facet] for facet in LIST_FACETS if r[facet] is not None}
    return ListRow(r["kind"], r["entity_id"], r["account_id"], r["sort_key"], loads(r["body"]), facets)

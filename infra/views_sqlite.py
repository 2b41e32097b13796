"""View storage in the SQLite file that holds the events."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from infra.list_sql import FACET_INDEXES, LIST_COLUMNS, SQLITE, list_where
from infra.sqlite_hygiene import secure_pool
from projections.encoding import dumps, format_time, loads, parse_time
from projections.ports import LIST_FACETS, AuditQuery, AuditRow, Document, ListQuery, ListRow, ViewChange, ViewRecorder

_AUDIT_COLUMNS = (
    "position, occurred_at, actor, account_id, entity_type, entity_id, version, "
    "event_type, changes, reason, correlation_id, causation_id"
)

_INSERT_LIST = (
    f"INSERT INTO gam_view_lists (view, {LIST_COLUMNS}) VALUES ({','.join('?' * (6 + len(LIST_FACETS)))}) "  # noqa: S608
    "ON CONFLICT (view, kind, entity_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ("account_id", "sort_key", *LIST_FACETS, "body"))
)

_INSERT_AUDIT = f"INSERT INTO gam_audit_trail ({_AUDIT_COLUMNS}) VALUES ({','.join('?' * 12)})"  # noqa: S608 - constants only


class SQLiteViewRecorder(SQLiteTrackingRecorder, ViewRecorder):
    """Documents in ``gam_view_documents``, audit rows in ``gam_audit_trail``, and the
    position in the library's ``tracking`` table under ``<application>::<view>``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        secure_pool(self.datastore)  # a rewritten row leaves no copy in the file

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS gam_view_documents ("
            "view TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (view, key)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS gam_audit_trail ("
            "position INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL, actor TEXT NOT NULL, "
            "account_id TEXT, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "event_type TEXT NOT NULL, changes TEXT NOT NULL, reason TEXT, correlation_id TEXT NOT NULL, "
            "causation_id TEXT)",
            "CREATE INDEX IF NOT EXISTS gam_audit_account ON gam_audit_trail (account_id, position)",
            "CREATE INDEX IF NOT EXISTS gam_audit_entity ON gam_audit_trail (entity_id, position)",
            "CREATE INDEX IF NOT EXISTS gam_audit_actor ON gam_audit_trail (actor, position)",
            "CREATE INDEX IF NOT EXISTS gam_audit_type ON gam_audit_trail (event_type, position)",
            "CREATE INDEX IF NOT EXISTS gam_audit_time ON gam_audit_trail (occurred_at)",
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

    def _insert_tracking(self, c: SQLiteCursor, tracking: Tracking) -> None:
        if tracking.application_name != self.table_migration_identifier:
            tracking = Tracking(self.tracking_name(tracking.application_name), tracking.notification_id)
        super()._insert_tracking(c, tracking)

    def _max_tracking_id(self, application_name: str, c: SQLiteCursor) -> int | None:
        if application_name != self.table_migration_identifier:
            application_name = self.tracking_name(application_name)
        return super()._max_tracking_id(application_name, c)

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        """One statement per kind of row for the whole change (a catch-up's batch
        holds thousands)."""
        view = self.view_name
        documents = change.documents.items()
        with self.datastore.transaction(commit=True) as c:
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
                c.executemany(_INSERT_AUDIT, [_row(row) for row in change.audit_rows])
            lists = change.list_rows.items()
            gone_rows = [(view, kind, entity) for (kind, entity), row in lists if row is None]
            if gone_rows:
                c.executemany("DELETE FROM gam_view_lists WHERE view = ? AND kind = ? AND entity_id = ?", gone_rows)
            kept_rows = [(view, *list_row_values(row)) for _, row in lists if row is not None]
            if kept_rows:
                c.executemany(_INSERT_LIST, kept_rows)
            self._insert_tracking(c, tracking)

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT key, body FROM gam_view_documents WHERE view = ? AND key IN ({marks})",  # noqa: S608
                (self.view_name, *keys),
            )
            return {r["key"]: loads(r["body"]) for r in c.fetchall()}

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT key, body FROM gam_view_documents WHERE view = ? AND key >= ? AND key < ? ORDER BY key",
                (self.view_name, prefix, prefix + "\U0010ffff"),
            )
            return {r["key"]: loads(r["body"]) for r in c.fetchall()}

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
        sql = f"SELECT {_AUDIT_COLUMNS} FROM gam_audit_trail WHERE {' AND '.join(where)} ORDER BY position LIMIT ?"  # noqa: S608
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, (*params, query.limit))
            return [_audit_row(r) for r in c.fetchall()]

    def select_list(self, query: ListQuery) -> list[ListRow]:
        where, params = list_where(self.view_name, query, SQLITE)
        sql = f"SELECT {LIST_COLUMNS} FROM gam_view_lists WHERE {where} ORDER BY sort_key, entity_id LIMIT ?"  # noqa: S608
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, (*params, query.limit))
            return [list_row_of(r) for r in c.fetchall()]

    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT entity_id, MAX(version) AS version FROM gam_audit_trail "
                "WHERE account_id = ? AND occurred_at <= ? GROUP BY entity_id",
                (str(account_id), format_time(moment)),
            )
            return {UUID(r["entity_id"]): r["version"] for r in c.fetchall()}

    def reset(self, *, audit_rows: bool) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute("DELETE FROM gam_view_documents WHERE view = ?", (self.view_name,))
            c.execute("DELETE FROM gam_view_lists WHERE view = ?", (self.view_name,))
            if audit_rows:
                c.execute("DELETE FROM gam_audit_trail")
            c.execute("DELETE FROM tracking WHERE application_name LIKE ?", (f"%::{self.view_name}",))


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

"""View storage in the PostgreSQL database (and schema) that holds the events."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from infra.list_sql import FACET_INDEXES, LIST_COLUMNS, POSTGRES, list_where
from infra.postgres_ddl import creating_tables
from infra.views_sqlite import list_row_of, list_row_values
from projections.encoding import dumps, loads
from projections.ports import LIST_FACETS, AuditQuery, AuditRow, Document, ListQuery, ListRow, ViewChange, ViewRecorder

_AUDIT_COLUMNS = SQL(
    "position, occurred_at, actor, account_id, entity_type, entity_id, version, "
    "event_type, changes, reason, correlation_id, causation_id"
)


class PostgresViewRecorder(PostgresTrackingRecorder, ViewRecorder):
    """Documents in ``gam_view_documents``, audit rows in ``gam_audit_trail`` (typed
    columns, indexed for the audit queries), the position in this view's tracking table."""

    def close(self) -> None:
        """Give the view's connections back (the library's recorder has no close of its own)."""
        self.datastore.close()

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._one: tuple[int, Cursor[DictRow]] | None = None
        schema = Identifier(self.datastore.schema)
        self.documents_table = Composed([schema, SQL("."), Identifier("gam_view_documents")])
        self.audit_table = Composed([schema, SQL("."), Identifier("gam_audit_trail")])
        self.lists_table = Composed([schema, SQL("."), Identifier("gam_view_lists")])
        self.tracking_table = Composed([schema, SQL("."), Identifier(self.tracking_table_name)])
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (view text NOT NULL, key text NOT NULL, "
                    "body text NOT NULL, PRIMARY KEY (view, key))"
                ).format(self.documents_table),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (position bigint PRIMARY KEY, "
                    "occurred_at timestamptz NOT NULL, actor text NOT NULL, account_id uuid, "
                    "entity_type text NOT NULL, entity_id uuid NOT NULL, version integer NOT NULL, "
                    "event_type text NOT NULL, changes text NOT NULL, reason text, "
                    "correlation_id uuid NOT NULL, causation_id uuid)"
                ).format(self.audit_table),
                *(
                    SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} ({2})").format(
                        Identifier(f"gam_audit_{name}"), self.audit_table, SQL(columns)
                    )
                    for name, columns in (
                        ("account", "account_id, position"),
                        ("entity", "entity_id, position"),
                        ("actor", "actor, position"),
                        ("type", "event_type, position"),
                        ("time", "occurred_at"),
                    )
                ),
                # COLLATE "C": the order (and the cursor's comparison) is by code point, as in
                # SQLite and Python, whatever the database's locale
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (view text NOT NULL, kind text NOT NULL, "
                    'entity_id text COLLATE "C" NOT NULL, account_id text NOT NULL, '
                    'sort_key text COLLATE "C" NOT NULL, {1}, body text NOT NULL, '
                    "PRIMARY KEY (view, kind, entity_id))"
                ).format(self.lists_table, SQL(", ").join(SQL("{0} text").format(Identifier(f)) for f in LIST_FACETS)),
                SQL(
                    "CREATE INDEX IF NOT EXISTS gam_view_lists_account "
                    "ON {0} (view, kind, account_id, sort_key, entity_id)"
                ).format(self.lists_table),
                SQL("CREATE INDEX IF NOT EXISTS gam_view_lists_order ON {0} (view, kind, sort_key, entity_id)").format(
                    self.lists_table
                ),
                *(
                    SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} (view, kind, account_id, {2})").format(
                        Identifier(f"gam_view_lists_{name}"), self.lists_table, SQL(columns)
                    )
                    for name, columns in FACET_INDEXES
                ),
            ]
        )

    @contextmanager
    def in_one_transaction(self) -> Iterator[None]:
        with self.datastore.transaction(commit=True) as curs:
            self._one = (threading.get_ident(), curs)
            try:
                yield
            finally:
                self._one = None

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Cursor[DictRow]]:
        """The block's transaction of :meth:`in_one_transaction` on this thread, or a new one."""
        one = self._one
        if one is not None and one[0] == threading.get_ident():
            yield one[1]
            return
        with self.datastore.transaction(commit=commit) as curs:
            yield curs

    @contextmanager
    def _read(self) -> Iterator[Cursor[DictRow]]:
        """For one statement that only reads: the block's transaction of
        :meth:`in_one_transaction` on this thread, or else a pooled connection as it is
        (autocommit): one round trip instead of three (BEGIN, the query, ROLLBACK),
        which on a busy machine was most of a list page's time."""
        one = self._one
        if one is not None and one[0] == threading.get_ident():
            yield one[1]
            return
        with self.datastore.get_connection() as conn:
            yield conn.cursor()

    def max_tracking_id(self, application_name: str) -> int | None:
        one = self._one
        if one is not None and one[0] == threading.get_ident():
            position: int | None = self._max_tracking_id(application_name, one[1])
        else:
            position = super().max_tracking_id(application_name)
        return position

    def create_table(self) -> None:
        with creating_tables(self.datastore):  # other processes may be starting too
            super().create_table()

    def _insert_tracking(self, curs: Cursor[DictRow], tracking: Tracking) -> None:
        if tracking.application_name != self.table_migration_identifier:
            tracking = Tracking(self.tracking_name(tracking.application_name), tracking.notification_id)
        super()._insert_tracking(curs, tracking)

    def _max_tracking_id(self, application_name: str, curs: Cursor[DictRow]) -> int | None:
        if application_name != self.table_migration_identifier:
            application_name = self.tracking_name(application_name)
        return super()._max_tracking_id(application_name, curs)

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        """One pipelined statement per kind of document write, and the audit rows
        by COPY, for the whole change (a catch-up's batch holds thousands)."""
        view = self.view_name
        documents = change.documents.items()
        with self._transaction(commit=True) as curs:
            gone = [(view, key) for key, body in documents if body is None]
            if gone:
                curs.executemany(SQL("DELETE FROM {0} WHERE view = %s AND key = %s").format(self.documents_table), gone)
            kept = [(view, key, dumps(body)) for key, body in documents if body is not None]
            if kept:
                curs.executemany(
                    SQL(
                        "INSERT INTO {0} (view, key, body) VALUES (%s, %s, %s) "
                        "ON CONFLICT (view, key) DO UPDATE SET body = excluded.body"
                    ).format(self.documents_table),
                    kept,
                )
            if change.audit_rows:
                with curs.copy(SQL("COPY {0} ({1}) FROM STDIN").format(self.audit_table, _AUDIT_COLUMNS)) as copy:
                    for row in change.audit_rows:
                        copy.write_row(
                            (
                                row.position,
                                row.occurred_at,
                                row.actor,
                                row.account_id,
                                row.entity_type,
                                row.entity_id,
                                row.version,
                                row.event_type,
                                dumps(list(row.changes)),
                                row.reason,
                                row.correlation_id,
                                row.causation_id,
                            )
                        )
            lists = change.list_rows.items()
            gone_rows = [(view, kind, entity) for (kind, entity), row in lists if row is None]
            if gone_rows:
                curs.executemany(
                    SQL("DELETE FROM {0} WHERE view = %s AND kind = %s AND entity_id = %s").format(self.lists_table),
                    gone_rows,
                )
            kept_rows = [(view, *list_row_values(row)) for _, row in lists if row is not None]
            if kept_rows:
                updated = ("account_id", "sort_key", *LIST_FACETS, "body")
                curs.executemany(
                    SQL(
                        "INSERT INTO {0} (view, {1}) VALUES ({2}) ON CONFLICT (view, kind, entity_id) DO UPDATE SET {3}"
                    ).format(
                        self.lists_table,
                        SQL(LIST_COLUMNS),
                        SQL(", ").join([SQL("%s")] * (6 + len(LIST_FACETS))),
                        SQL(", ").join(SQL("{0} = excluded.{0}").format(Identifier(c)) for c in updated),
                    ),
                    kept_rows,
                )
            self._insert_tracking(curs, tracking)

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        if not keys:
            return {}
        with self._transaction(commit=False) as curs:
            curs.execute(
                SQL("SELECT key, body FROM {0} WHERE view = %s AND key = ANY(%s)").format(self.documents_table),
                (self.view_name, list(keys)),
            )
            return {r["key"]: loads(r["body"]) for r in curs.fetchall()}

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        with self._transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    'SELECT key, body FROM {0} WHERE view = %s AND starts_with(key, %s) ORDER BY key COLLATE "C"'
                ).format(self.documents_table),
                (self.view_name, prefix),
            )
            return {r["key"]: loads(r["body"]) for r in curs.fetchall()}

    def select_audit(self, query: AuditQuery) -> list[AuditRow]:
        where: list[SQL | Composed] = [SQL("position > %s")]
        params: list[object] = [query.after_position]
        for column, value in (
            ("account_id", query.account_id),
            ("entity_id", query.entity_id),
            ("actor", query.actor),
            ("event_type", query.event_type),
        ):
            if value is not None:
                where.append(SQL("{0} = %s").format(Identifier(column)))
                params.append(value)
        if query.since is not None:
            where.append(SQL("occurred_at >= %s"))
            params.append(query.since)
        if query.until is not None:
            where.append(SQL("occurred_at < %s"))
            params.append(query.until)
        statement = SQL("SELECT {0} FROM {1} WHERE {2} ORDER BY position LIMIT %s").format(
            _AUDIT_COLUMNS, self.audit_table, SQL(" AND ").join(where)
        )
        with self._transaction(commit=False) as curs:
            curs.execute(statement, (*params, query.limit))
            return [_audit_row(r) for r in curs.fetchall()]

    def select_list(self, query: ListQuery) -> list[ListRow]:
        where, params = list_where(self.view_name, query, POSTGRES)
        statement = SQL("SELECT {0} FROM {1} WHERE {2} ORDER BY sort_key, entity_id LIMIT %s").format(
            SQL(LIST_COLUMNS),
            self.lists_table,
            SQL(where),
        )
        with self._read() as curs:
            curs.execute(statement, (*params, query.limit))
            return [list_row_of(r) for r in curs.fetchall()]

    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        with self._transaction(commit=False) as curs:
            curs.execute(
                SQL(
                    "SELECT entity_id, MAX(version) AS version FROM {0} "
                    "WHERE account_id = %s AND occurred_at <= %s GROUP BY entity_id"
                ).format(self.audit_table),
                (account_id, moment),
            )
            return {r["entity_id"]: r["version"] for r in curs.fetchall()}

    def reset(self, *, audit_rows: bool) -> None:
        with self._transaction(commit=True) as curs:
            curs.execute(SQL("DELETE FROM {0} WHERE view = %s").format(self.documents_table), (self.view_name,))
            curs.execute(SQL("DELETE FROM {0} WHERE view = %s").format(self.lists_table), (self.view_name,))
            if audit_rows:
                curs.execute(SQL("DELETE FROM {0}").format(self.audit_table))
            curs.execute(
                SQL("DELETE FROM {0} WHERE application_name LIKE %s").format(self.tracking_table),
                (f"%::{self.view_name}",),
            )


def _audit_row(r: Any) -> AuditRow:
    return AuditRow(
        position=r["position"],
        occurred_at=r["occurred_at"],
        actor=r["actor"],
        account_id=r["account_id"],
        entity_type=r["entity_type"],
        entity_id=r["entity_id"],
        version=r["version"],
        event_type=r["event_type"],
        changes=tuple(loads(r["changes"])),
        reason=r["reason"],
        correlation_id=r["correlation_id"],
        causation_id=r["causation_id"],
    )

"""View storage in the PostgreSQL database (and schema) that holds the events."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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

_AUDIT_COLUMNS = SQL(
    "position, occurred_at, actor, account_id, entity_type, entity_id, version, "
    "event_type, changes, reason, correlation_id, causation_id"
)

_LIST_UPDATED = ("account_id", "sort_key", *LIST_FACETS, "body")
"""What a list row's upsert changes (its key stays)."""


class PostgresViewRecorder(PostgresTrackingRecorder, ViewRecorder):
    """Documents in ``gam_view_documents``, audit rows in ``gam_audit_trail`` (typed
    columns, indexed for the audit queries), the position in this view's tracking table;
    a later generation ``g`` under ``<view>#g``, in ``gam_audit_trail_<g>`` and at
    ``<application>::<view>#g``, and ``gam_view_generations`` says which one is live."""

    def close(self) -> None:
        """Give the view's connections back (the library's recorder has no close of its own)."""
        self.datastore.close()

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._one: tuple[int, Cursor[DictRow]] | None = None
        schema = Identifier(self.datastore.schema)
        self.documents_table = Composed([schema, SQL("."), Identifier("gam_view_documents")])
        self.lists_table = Composed([schema, SQL("."), Identifier("gam_view_lists")])
        self.tracking_table = Composed([schema, SQL("."), Identifier(self.tracking_table_name)])
        self.generations_table = Composed([schema, SQL("."), Identifier("gam_view_generations")])
        self._live_key = (
            f"COALESCE((SELECT live_key FROM {self.generations_table.as_string(None)} WHERE view = %s), %s)"  # noqa: S608 - identifiers quoted
        )
        """The key of the view's live generation, resolved inside the statement that reads
        it, so one statement never mixes generations (the view's name twice as parameters)."""
        self._statements = self._hot_statements()
        self._copy_audit: dict[int, bytes] = {}
        self.sql_create_statements.extend(
            [
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (view text NOT NULL, key text NOT NULL, "
                    "body text NOT NULL, PRIMARY KEY (view, key))"
                ).format(self.documents_table),
                *self._audit_ddl(1),
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (view text PRIMARY KEY, live integer NOT NULL, "
                    "live_key text NOT NULL, building integer, retired integer)"
                ).format(self.generations_table),
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

    def _hot_statements(self) -> dict[str, bytes]:
        """The statements a follower runs at every catch-up, composed once. Composing
        them anew for each call (``SQL.format``, then quoting every identifier again)
        cost a seventh of the CPU of a catch-up that found one event (6.4 ms)."""
        live_where = f"view = {self._live_key}"
        statements = {
            "max_tracking_id": SQL(
                "SELECT MAX(notification_id) AS n FROM {0} WHERE application_name = %s || %s || {1}"
            ).format(self.tracking_table, SQL(self._live_key)),
            "live": SQL("SELECT live FROM {0} WHERE view = %s").format(self.generations_table),
            "live_for_share": SQL("SELECT live FROM {0} WHERE view = %s FOR SHARE").format(self.generations_table),
            "delete_document": SQL("DELETE FROM {0} WHERE view = %s AND key = %s").format(self.documents_table),
            "upsert_document": SQL(
                "INSERT INTO {0} (view, key, body) VALUES (%s, %s, %s) "
                "ON CONFLICT (view, key) DO UPDATE SET body = excluded.body"
            ).format(self.documents_table),
            "documents_pinned": SQL("SELECT key, body FROM {0} WHERE view = %s AND key = ANY(%s)").format(
                self.documents_table
            ),
            "documents_live": SQL("SELECT key, body FROM {0} WHERE {1} AND key = ANY(%s)").format(
                self.documents_table, SQL(live_where)
            ),
            "document_and_position": SQL(
                "SELECT (SELECT body FROM {0} WHERE {1} AND key = %s) AS body, "
                "(SELECT MAX(notification_id) FROM {2} WHERE application_name = %s || %s || {3}) AS n"
            ).format(self.documents_table, SQL(live_where), self.tracking_table, SQL(self._live_key)),
            "delete_list_row": SQL("DELETE FROM {0} WHERE view = %s AND kind = %s AND entity_id = %s").format(
                self.lists_table
            ),
            "upsert_list_row": SQL(
                "INSERT INTO {0} (view, {1}) VALUES ({2}) ON CONFLICT (view, kind, entity_id) DO UPDATE SET {3}"
            ).format(
                self.lists_table,
                SQL(LIST_COLUMNS),
                SQL(", ").join([SQL("%s")] * (6 + len(LIST_FACETS))),
                SQL(", ").join(SQL("{0} = excluded.{0}").format(Identifier(c)) for c in _LIST_UPDATED),
            ),
        }
        return {name: statement.as_bytes(None) for name, statement in statements.items()}

    def _copy_audit_rows(self, generation: int) -> bytes:
        if generation not in self._copy_audit:
            statement = SQL("COPY {0} ({1}) FROM STDIN").format(self.audit_table(generation), _AUDIT_COLUMNS)
            self._copy_audit[generation] = statement.as_bytes(None)
        return self._copy_audit[generation]

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

    def audit_table(self, generation: int) -> Composed:
        """Generation 1's audit rows stay in ``gam_audit_trail``; a later one has a table of
        its own (generation numbers are unique across views), dropped with it in one step."""
        name = "gam_audit_trail" if generation == 1 else f"gam_audit_trail_{generation}"
        return Composed([Identifier(self.datastore.schema), SQL("."), Identifier(name)])

    def _audit_ddl(self, generation: int) -> list[Composed]:
        table = self.audit_table(generation)
        prefix = "gam_audit" if generation == 1 else f"gam_audit_{generation}"
        return [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0} (position bigint PRIMARY KEY, "
                "occurred_at timestamptz NOT NULL, actor text NOT NULL, account_id uuid, "
                "entity_type text NOT NULL, entity_id uuid NOT NULL, version integer NOT NULL, "
                "event_type text NOT NULL, changes text NOT NULL, reason text, "
                "correlation_id uuid NOT NULL, causation_id uuid)"
            ).format(table),
            *(
                SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} ({2})").format(
                    Identifier(f"{prefix}_{name}"), table, SQL(columns)
                )
                for name, columns in (
                    ("account", "account_id, position"),
                    ("entity", "entity_id, position"),
                    ("account_entity", "account_id, entity_id, version, occurred_at"),
                    ("actor", "actor, position"),
                    ("type", "event_type, position"),
                    ("time", "occurred_at"),
                )
            ),
        ]

    def _view(self) -> tuple[str, tuple[str, ...]]:
        """``view = <the generation read>`` and its parameters: the pinned generation, or
        the live one as the statement finds it."""
        if self.pinned:
            return "view = %s", (self.key,)
        return f"view = {self._live_key}", (self.view_name, self.view_name)

    def max_tracking_id(self, application_name: str) -> int | None:
        one = self._one
        if one is not None and one[0] == threading.get_ident():
            position: int | None = self._max_tracking_id(application_name, one[1])
        else:  # the library's, retried while the database restarts; it calls ours below
            position = super().max_tracking_id(application_name)
        return position

    def create_table(self) -> None:
        with creating_tables(self.datastore):  # other processes may be starting too
            super().create_table()
            live = self.generations().live
            if live != 1 and self.keeps_audit_rows:  # the indexes a newer gam added, on the rows in use
                with self._transaction(commit=True) as curs:
                    for statement in self._audit_ddl(live):
                        curs.execute(statement)

    def _insert_tracking(self, curs: Cursor[DictRow], tracking: Tracking) -> None:
        if tracking.application_name != self.table_migration_identifier:
            tracking = Tracking(self.tracking_name(tracking.application_name), tracking.notification_id)
        super()._insert_tracking(curs, tracking)

    def _max_tracking_id(self, application_name: str, curs: Cursor[DictRow]) -> int | None:
        if application_name == self.table_migration_identifier:
            return super()._max_tracking_id(application_name, curs)
        if self.pinned:
            return super()._max_tracking_id(self.tracking_name(application_name), curs)
        curs.execute(
            self._statements["max_tracking_id"],
            (application_name, TRACKING_SEPARATOR, self.view_name, self.view_name),
        )
        row = curs.fetchone()
        return None if row is None else row["n"]

    def record(self, change: ViewChange, tracking: Tracking) -> None:
        """One pipelined statement per kind of document write, and the audit rows
        by COPY, for the whole change (a catch-up's batch holds thousands). A writer of
        the live generation first checks it is still live, holding the generations' row
        so that no rebuild takes over until it has committed."""
        view = self.key
        documents = change.documents.items()
        with self._transaction(commit=True) as curs:
            if not self.pinned:
                live = self._live(curs, for_share=True)
                if live != self.generation:
                    raise GenerationSwitched(self.view_name, self.generation, live)
            gone = [(view, key) for key, body in documents if body is None]
            if gone:
                curs.executemany(self._statements["delete_document"], gone)
            kept = [(view, key, dumps(body)) for key, body in documents if body is not None]
            if kept:
                curs.executemany(self._statements["upsert_document"], kept)
            if change.audit_rows:
                with curs.copy(self._copy_audit_rows(self.generation)) as copy_in:
                    for row in change.audit_rows:
                        copy_in.write_row(
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
                curs.executemany(self._statements["delete_list_row"], gone_rows)
            kept_rows = [(view, *list_row_values(row)) for _, row in lists if row is not None]
            if kept_rows:
                curs.executemany(self._statements["upsert_list_row"], kept_rows)
            self._insert_tracking(curs, tracking)

    def _live(self, curs: Cursor[DictRow], *, for_share: bool = False) -> int:
        curs.execute(self._statements["live_for_share" if for_share else "live"], (self.view_name,))
        row = curs.fetchone()
        return 1 if row is None else int(row["live"])

    def documents(self, keys: Sequence[str]) -> dict[str, Document]:
        if not keys:
            return {}
        _, params = self._view()
        statement = self._statements["documents_pinned" if self.pinned else "documents_live"]
        with self._read() as curs:  # one statement, which finds the live generation itself
            curs.execute(statement, (*params, list(keys)))
            return {r["key"]: loads(r["body"]) for r in curs.fetchall()}

    def document_and_position(self, key: str, application_name: str) -> tuple[Document | None, int]:
        """One statement, so one round trip and one snapshot: an account view read made two,
        the view's position and then its document (the position was a tenth of the read)."""
        if self.pinned or application_name == self.table_migration_identifier:
            return super().document_and_position(key, application_name)
        _, params = self._view()
        tracked = (application_name, TRACKING_SEPARATOR, self.view_name, self.view_name)
        with self._read() as curs:
            curs.execute(self._statements["document_and_position"], (*params, key, *tracked))
            row = curs.fetchone()
        if row is None:
            return None, 0
        return (None if row["body"] is None else loads(row["body"])), row["n"] or 0

    def documents_with_prefix(self, prefix: str) -> dict[str, Document]:
        where, params = self._view()
        with self._read() as curs:
            curs.execute(
                SQL('SELECT key, body FROM {0} WHERE {1} AND starts_with(key, %s) ORDER BY key COLLATE "C"').format(
                    self.documents_table, SQL(where)
                ),
                (*params, prefix),
            )
            return {r["key"]: loads(r["body"]) for r in curs.fetchall()}

    def _audit_select(
        self, statement: Callable[[Composed], Composed], params: Sequence[object] | Mapping[str, object]
    ) -> list[Any]:
        """Run ``statement`` (given the audit table) on the generation read. The live one
        is looked up in the same snapshot (one REPEATABLE READ transaction), so rows a
        rebuild deleted since are still seen; if its table was dropped in between, the
        statement fails and the new live generation, whole, is read instead."""
        one = self._one
        if one is not None and one[0] == threading.get_ident():
            curs = one[1]
            curs.execute(statement(self.audit_table(self.generation if self.pinned else self._live(curs))), params)
            return list(curs.fetchall())
        for _ in range(3):
            generation = self.generation if self.pinned else None
            try:
                with self.datastore.get_connection() as conn, conn.cursor() as curs:
                    curs.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    try:
                        if generation is None:
                            generation = self._live(curs)
                        curs.execute(statement(self.audit_table(generation)), params)
                        return list(curs.fetchall())
                    finally:
                        conn.rollback()
            except Exception:
                if generation is None or self.pinned or self.generations().live == generation:
                    raise
        msg = f"the audit rows of view {self.view_name} kept moving to new generations"
        raise RuntimeError(msg)

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
        rows = self._audit_select(
            lambda table: SQL("SELECT {0} FROM {1} WHERE {2} ORDER BY position LIMIT %s").format(
                _AUDIT_COLUMNS, table, SQL(" AND ").join(where)
            ),
            (*params, query.limit),
        )
        return [_audit_row(r) for r in rows]

    def select_list(self, query: ListQuery) -> list[ListRow]:
        where, params = list_where(*self._view(), query, POSTGRES)
        statement = SQL("SELECT {0} FROM {1} WHERE {2} ORDER BY sort_key, entity_id LIMIT %s").format(
            SQL(LIST_COLUMNS),
            self.lists_table,
            SQL(where),
        )
        with self._read() as curs:
            curs.execute(statement, (*params, query.limit))
            return [list_row_of(r) for r in curs.fetchall()]

    def versions_at(self, account_id: UUID, moment: datetime) -> dict[UUID, int]:
        """A skip scan of the account's entities on the ``(account_id, entity_id, version,
        occurred_at)`` index, then for each a backward scan from its newest version to the
        highest one stored by the moment (not the latest by time: a server whose clock was
        behind may have stored a later version with an earlier time). Near the end of the
        history that is a few index entries per entity, where grouping read every row of
        the account (a third of an as-of at 100k events)."""
        rows = self._audit_select(
            SQL(
                "WITH RECURSIVE entities (entity_id) AS ("
                " (SELECT entity_id FROM {0} WHERE account_id = %(account)s ORDER BY entity_id LIMIT 1)"
                " UNION ALL"
                " SELECT (SELECT a.entity_id FROM {0} a WHERE a.account_id = %(account)s"
                "  AND a.entity_id > e.entity_id ORDER BY a.entity_id LIMIT 1)"
                " FROM entities e WHERE e.entity_id IS NOT NULL) "
                "SELECT e.entity_id, v.version FROM entities e CROSS JOIN LATERAL"
                " (SELECT version FROM {0} WHERE account_id = %(account)s AND entity_id = e.entity_id"
                "  AND occurred_at <= %(moment)s ORDER BY version DESC LIMIT 1) v"
            ).format,
            {"account": account_id, "moment": moment},
        )
        return {r["entity_id"]: r["version"] for r in rows}

    def reset(self, *, audit_rows: bool) -> None:
        with self._transaction(commit=True) as curs:
            self._delete_rows(curs, self.generation, audit_rows=audit_rows)

    def _delete_rows(self, curs: Cursor[DictRow], generation: int, *, audit_rows: bool) -> None:
        key = generation_key(self.view_name, generation)
        curs.execute(SQL("DELETE FROM {0} WHERE view = %s").format(self.documents_table), (key,))
        curs.execute(SQL("DELETE FROM {0} WHERE view = %s").format(self.lists_table), (key,))
        if audit_rows:
            curs.execute(SQL("DELETE FROM {0}").format(self.audit_table(generation)))
        suffix = TRACKING_SEPARATOR + key
        curs.execute(
            SQL("DELETE FROM {0} WHERE right(application_name, %s) = %s").format(self.tracking_table),
            (len(suffix), suffix),
        )

    def generations(self) -> Generations:
        with self._read() as curs:
            return self._generations(curs)

    def _generations(self, curs: Cursor[DictRow], lock: str = "") -> Generations:
        curs.execute(
            SQL("SELECT live, building, retired FROM {0} WHERE view = %s{1}").format(self.generations_table, SQL(lock)),
            (self.view_name,),
        )
        row = curs.fetchone()
        return Generations() if row is None else Generations(row["live"], row["building"], row["retired"])

    def start_generation(self, *, fresh: bool = False) -> int:
        with self._transaction(commit=True) as curs:
            curs.execute(  # generation numbers are handed out one at a time
                SQL("LOCK TABLE {0} IN SHARE ROW EXCLUSIVE MODE").format(self.generations_table)
            )
            curs.execute(
                SQL("INSERT INTO {0} (view, live, live_key) VALUES (%s, 1, %s) ON CONFLICT (view) DO NOTHING").format(
                    self.generations_table
                ),
                (self.view_name, self.view_name),
            )
            found = self._generations(curs, " FOR UPDATE")
            building = found.resumable(fresh=fresh)
            if building is None:
                curs.execute(
                    SQL("SELECT MAX(GREATEST(live, COALESCE(building, 0), COALESCE(retired, 0))) AS n FROM {0}").format(
                        self.generations_table
                    )
                )
                row = curs.fetchone()
                building = max(int(row["n"] if row and row["n"] else 1), 1) + 1
                curs.execute(
                    SQL("UPDATE {0} SET building = %s WHERE view = %s").format(self.generations_table),
                    (building, self.view_name),
                )
            for statement in self._audit_ddl(building) if self.keeps_audit_rows else ():
                curs.execute(statement)
        for left in found.left_behind(building):
            self.drop_generation(left)
        return building

    def at_generation(self, generation: int) -> PostgresViewRecorder:
        pinned = copy.copy(self)
        pinned.generation, pinned.pinned, pinned._one = generation, True, None
        return pinned

    @contextmanager
    def take_over(self) -> Iterator[None]:
        with self.in_one_transaction():
            curs = self._one[1] if self._one else None
            assert curs is not None
            self._generations(curs, " FOR UPDATE")  # writers of the live generation wait at their commit
            yield
            curs.execute(
                SQL(
                    "UPDATE {0} SET retired = live, live = %s, live_key = %s, building = NULL "
                    "WHERE view = %s AND building = %s"
                ).format(self.generations_table),
                (self.generation, self.key, self.view_name, self.generation),
            )
            if curs.rowcount != 1:
                msg = f"generation {self.generation} of view {self.view_name} is not the one being built"
                raise RuntimeError(msg)

    def drop_generation(self, generation: int) -> None:
        with self._transaction(commit=True) as curs:
            curs.execute(
                SQL(
                    "UPDATE {0} SET building = NULLIF(building, %s), retired = NULLIF(retired, %s) WHERE view = %s"
                ).format(self.generations_table),
                (generation, generation, self.view_name),
            )
            if self._live(curs) == generation:
                msg = f"generation {generation} of view {self.view_name} is live"
                raise ValueError(msg)
            # generation 1's audit table is created by every process at start (and shared by
            # the views): emptied, by the view that has audit rows; a later one's is dropped
            self._delete_rows(curs, generation, audit_rows=generation == 1 and self.keeps_audit_rows)
            if generation != 1 and self.keeps_audit_rows:
                curs.execute(SQL("DROP TABLE IF EXISTS {0}").format(self.audit_table(generation)))


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

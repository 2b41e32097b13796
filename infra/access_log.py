"""The record of subject-access requests (GDPR Art. 15), kept beside the events.

Compliance has to show, for every person, who looked at everything gam holds
about them, when and on what legal basis. The record names the person only by
their stakeholder id, so it holds no personal data and outlives an erasure.
It is a table of its own rather than an event: a request changes nothing about
the person, and reading must not move the version an editor holds (If-Match).
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import TupleRow
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from infra.postgres_ddl import lock_for_this_transaction
from infra.settings import Settings, pool_wait_seconds

TABLE = "gam_subject_access_requests"
KEY_FETCH_TABLE = "gam_personal_key_fetches"
"""Each fetch of a person's key by a downstream service (``GET /compliance/personal-keys/{id}``):
a disclosure of everything sealed under that key, so it is recorded the same way."""


@dataclass(frozen=True)
class AccessRequest:
    """One answered request: whose data, who asked, why, when."""

    request_id: UUID
    stakeholder_id: UUID
    requested_by: str
    legal_basis: str
    requested_at: datetime


class SubjectAccessLog(ABC):
    @abstractmethod
    def record(self, request: AccessRequest) -> None:
        """Keep the request for good."""

    @abstractmethod
    def requests(self, stakeholder_id: UUID | None = None) -> list[AccessRequest]:
        """Every request (about one person, if given), oldest first."""

    def close(self) -> None:  # noqa: B027 - only stores holding connections close anything
        """Nothing to close unless the store holds connections."""


class MemoryAccessLog(SubjectAccessLog):
    def __init__(self) -> None:
        self._rows: list[AccessRequest] = []
        self._lock = threading.Lock()

    def record(self, request: AccessRequest) -> None:
        with self._lock:
            self._rows.append(request)

    def requests(self, stakeholder_id: UUID | None = None) -> list[AccessRequest]:
        with self._lock:
            return [r for r in self._rows if stakeholder_id is None or r.stakeholder_id == stakeholder_id]


def _row(row: tuple[str | UUID, str | UUID, str, str, str | datetime]) -> AccessRequest:
    request_id, stakeholder_id, requested_by, legal_basis, requested_at = row
    return AccessRequest(
        UUID(str(request_id)),
        UUID(str(stakeholder_id)),
        requested_by,
        legal_basis,
        requested_at if isinstance(requested_at, datetime) else datetime.fromisoformat(requested_at),
    )


class SQLiteAccessLog(SubjectAccessLog):
    def __init__(self, path: str, table: str = TABLE) -> None:
        self.path = path
        self.table = table
        with self._connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (request_id TEXT PRIMARY KEY, stakeholder_id TEXT NOT NULL, "
                "requested_by TEXT NOT NULL, legal_basis TEXT NOT NULL, requested_at TEXT NOT NULL)"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_subject ON {table} (stakeholder_id, requested_at)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(self, request: AccessRequest) -> None:
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?)",  # noqa: S608
                (
                    str(request.request_id),
                    str(request.stakeholder_id),
                    request.requested_by,
                    request.legal_basis,
                    request.requested_at.isoformat(),
                ),
            )

    def requests(self, stakeholder_id: UUID | None = None) -> list[AccessRequest]:
        where, params = ("WHERE stakeholder_id = ?", (str(stakeholder_id),)) if stakeholder_id else ("", ())
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT request_id, stakeholder_id, requested_by, legal_basis, requested_at FROM {self.table} "  # noqa: S608
                f"{where} ORDER BY requested_at, rowid",
                params,
            ).fetchall()
        return [_row(r) for r in rows]


class PostgresAccessLog(SubjectAccessLog):
    def __init__(self, conninfo: str, schema: str, table: str = TABLE) -> None:
        self.table = SQL("{0}.{1}").format(Identifier(schema), Identifier(table))
        self.pool: ConnectionPool = ConnectionPool(
            conninfo, min_size=1, max_size=2, open=True, timeout=pool_wait_seconds(conninfo)
        )
        with self.pool.connection() as conn:
            lock_for_this_transaction(conn, schema)  # other processes may be starting too
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (request_id uuid PRIMARY KEY, stakeholder_id uuid NOT NULL, "
                    "requested_by text NOT NULL, legal_basis text NOT NULL, requested_at timestamptz NOT NULL, "
                    "seq bigserial)"
                ).format(self.table)
            )
            conn.execute(
                SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} (stakeholder_id, requested_at)").format(
                    Identifier(f"{table}_subject"), self.table
                )
            )

    def record(self, request: AccessRequest) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                SQL(
                    "INSERT INTO {0} (request_id, stakeholder_id, requested_by, legal_basis, requested_at) "
                    "VALUES (%s, %s, %s, %s, %s)"
                ).format(self.table),
                (
                    request.request_id,
                    request.stakeholder_id,
                    request.requested_by,
                    request.legal_basis,
                    request.requested_at,
                ),
            )

    def requests(self, stakeholder_id: UUID | None = None) -> list[AccessRequest]:
        where = SQL("WHERE stakeholder_id = %s") if stakeholder_id else SQL("")
        with self.pool.connection() as conn:
            rows: list[TupleRow] = conn.execute(
                SQL(
                    "SELECT request_id, stakeholder_id, requested_by, legal_basis, requested_at FROM {0} {1} "
                    "ORDER BY requested_at, seq"
                ).format(self.table, where),
                (stakeholder_id,) if stakeholder_id else (),
            ).fetchall()
        return [_row((r[0], r[1], r[2], r[3], r[4])) for r in rows]

    def close(self) -> None:
        self.pool.close()


def access_log_for(settings: Settings, table: str = TABLE) -> SubjectAccessLog:
    """The record beside the events, as the settings choose it (``table``: which record,
    the subject-access requests or the key fetches)."""
    if settings.store == "sqlite":
        return SQLiteAccessLog(str(settings.sqlite_path), table)
    if settings.store == "postgres":
        return PostgresAccessLog(settings.postgres_conninfo(), settings.postgres_schema or "public", table)
    return MemoryAccessLog()

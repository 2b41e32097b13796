"""Remembered answers for HTTP ``Idempotency-Key``s, kept beside the events.

A request with a key first *reserves* it (one row per caller and key, inserted
with ``ON CONFLICT DO NOTHING`` so two racing retries cannot both run), then
either *completes* it with the response it gave or *releases* it when it was
refused (a refused request stored nothing, so running it again is harmless).
A reservation whose process died is taken over after ``LEASE``; answers are kept
for ``RETENTION`` (the window in which clients are expected to retry).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from infra.postgres_ddl import lock_for_this_transaction
from infra.settings import Settings, pool_wait_seconds
from infra.sqlite_hygiene import secure

TABLE = "gam_idempotency"
LEASE = timedelta(seconds=30)
RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Reserved:
    """Go ahead: this request now holds the key. Only the holder of ``token`` may
    complete or release it, so a request whose lease was taken over cannot touch
    its successor's reservation."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class Replay:
    """The key was used for this very request: answer what was answered then."""

    response: StoredResponse


@dataclass(frozen=True)
class KeyReused:
    """The key was used for a different request."""


@dataclass(frozen=True)
class InProgress:
    """The first request with this key is still running."""


Reservation = Reserved | Replay | KeyReused | InProgress


def _decide(fingerprint: str, row: tuple[str, int | None, bytes | None, str | None]) -> Reservation:
    stored_fingerprint, status, body, headers = row
    if stored_fingerprint != fingerprint:
        return KeyReused()
    if status is None or body is None:
        return InProgress()
    return Replay(StoredResponse(status, bytes(body), json.loads(headers or "{}")))


class IdempotencyStore(ABC):
    @abstractmethod
    def reserve(self, owner: str, key: str, fingerprint: str) -> Reservation: ...

    @abstractmethod
    def complete(self, owner: str, key: str, token: str, response: StoredResponse) -> bool:
        """Remember the answer; False if the reservation is no longer this request's."""

    @abstractmethod
    def release(self, owner: str, key: str, token: str) -> None:
        """Forget a reservation that was never answered (the request was refused)."""

    def close(self) -> None:  # noqa: B027 - only stores holding connections close anything
        """Nothing to close unless the store holds connections."""


class MemoryIdempotency(IdempotencyStore):
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[str, int | None, bytes | None, str | None, datetime, str]] = {}
        self._lock = threading.Lock()

    def reserve(self, owner: str, key: str, fingerprint: str) -> Reservation:
        now = datetime.now(UTC)
        with self._lock:
            row = self._rows.get((owner, key))
            expired = row is not None and (now - row[4] > RETENTION or (row[1] is None and now - row[4] > LEASE))
            if row is None or expired:
                reserved = Reserved()
                self._rows[(owner, key)] = (fingerprint, None, None, None, now, reserved.token)
                return reserved
            return _decide(fingerprint, row[:4])

    def _held(self, owner: str, key: str, token: str) -> bool:
        row = self._rows.get((owner, key))
        return row is not None and row[1] is None and row[5] == token

    def complete(self, owner: str, key: str, token: str, response: StoredResponse) -> bool:
        with self._lock:
            if not self._held(owner, key, token):
                return False
            fingerprint = self._rows[(owner, key)][0]
            headers = json.dumps(response.headers)
            self._rows[(owner, key)] = (fingerprint, response.status, response.body, headers, datetime.now(UTC), token)
            return True

    def release(self, owner: str, key: str, token: str) -> None:
        with self._lock:
            if self._held(owner, key, token):  # an answer once given is kept, as in SQL
                del self._rows[(owner, key)]


class SQLiteIdempotency(IdempotencyStore):
    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (owner TEXT NOT NULL, key TEXT NOT NULL, "
                "fingerprint TEXT NOT NULL, status INTEGER, body BLOB, headers TEXT, "
                "created_at TEXT NOT NULL, token TEXT, PRIMARY KEY (owner, key))"
            )
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
            if "token" not in columns:  # a table made before reservations had tokens
                conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN token TEXT")

    def _connect(self) -> sqlite3.Connection:
        return secure(sqlite3.connect(self.path, timeout=10, isolation_level=None))

    def reserve(self, owner: str, key: str, fingerprint: str) -> Reservation:
        now = datetime.now(UTC)
        reserved = Reserved()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    f"DELETE FROM {TABLE} WHERE owner = ? AND key = ? AND (created_at < ? "  # noqa: S608
                    "OR (status IS NULL AND created_at < ?))",
                    (owner, key, (now - RETENTION).isoformat(), (now - LEASE).isoformat()),
                )
                inserted = conn.execute(
                    f"INSERT INTO {TABLE} (owner, key, fingerprint, created_at, token) VALUES (?, ?, ?, ?, ?) "  # noqa: S608
                    "ON CONFLICT (owner, key) DO NOTHING",
                    (owner, key, fingerprint, now.isoformat(), reserved.token),
                ).rowcount
                row = conn.execute(
                    f"SELECT fingerprint, status, body, headers FROM {TABLE} WHERE owner = ? AND key = ?",  # noqa: S608
                    (owner, key),
                ).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return reserved if inserted else _decide(fingerprint, row)

    def complete(self, owner: str, key: str, token: str, response: StoredResponse) -> bool:
        with self._connect() as conn:
            return bool(
                conn.execute(
                    f"UPDATE {TABLE} SET status = ?, body = ?, headers = ?, created_at = ? "  # noqa: S608
                    "WHERE owner = ? AND key = ? AND token = ? AND status IS NULL",
                    (
                        response.status,
                        response.body,
                        json.dumps(response.headers),
                        datetime.now(UTC).isoformat(),
                        owner,
                        key,
                        token,
                    ),
                ).rowcount
            )

    def release(self, owner: str, key: str, token: str) -> None:
        with self._connect() as conn:
            conn.execute(
                f"DELETE FROM {TABLE} WHERE owner = ? AND key = ? AND token = ? AND status IS NULL",  # noqa: S608
                (owner, key, token),
            )


class PostgresIdempotency(IdempotencyStore):
    def __init__(self, conninfo: str, schema: str) -> None:
        self.table = SQL("{0}.{1}").format(Identifier(schema), Identifier(TABLE))
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=4, open=True, timeout=pool_wait_seconds(conninfo))
        with self.pool.connection() as conn:
            lock_for_this_transaction(conn, schema)  # other processes may be starting too
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (owner text NOT NULL, key text NOT NULL, "
                    "fingerprint text NOT NULL, status integer, body bytea, headers text, "
                    "created_at timestamptz NOT NULL DEFAULT now(), token text, PRIMARY KEY (owner, key))"
                ).format(self.table)
            )
            conn.execute(SQL("ALTER TABLE {0} ADD COLUMN IF NOT EXISTS token text").format(self.table))

    def reserve(self, owner: str, key: str, fingerprint: str) -> Reservation:
        reserved = Reserved()
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                SQL(
                    "DELETE FROM {0} WHERE owner = %s AND key = %s AND (created_at < now() - %s "
                    "OR (status IS NULL AND created_at < now() - %s))"
                ).format(self.table),
                (owner, key, RETENTION, LEASE),
            )
            inserted = conn.execute(
                SQL(
                    "INSERT INTO {0} (owner, key, fingerprint, token) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ).format(self.table),
                (owner, key, fingerprint, reserved.token),
            ).rowcount
            row = conn.execute(
                SQL("SELECT fingerprint, status, body, headers FROM {0} WHERE owner = %s AND key = %s").format(
                    self.table
                ),
                (owner, key),
            ).fetchone()
        if inserted:
            return reserved
        if row is None:  # taken over and released between our statements
            return InProgress()
        return _decide(fingerprint, row)

    def complete(self, owner: str, key: str, token: str, response: StoredResponse) -> bool:
        with self.pool.connection() as conn:
            return bool(
                conn.execute(
                    SQL(
                        "UPDATE {0} SET status = %s, body = %s, headers = %s, created_at = now() "
                        "WHERE owner = %s AND key = %s AND token = %s AND status IS NULL"
                    ).format(self.table),
                    (response.status, response.body, json.dumps(response.headers), owner, key, token),
                ).rowcount
            )

    def release(self, owner: str, key: str, token: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                SQL("DELETE FROM {0} WHERE owner = %s AND key = %s AND token = %s AND status IS NULL").format(
                    self.table
                ),
                (owner, key, token),
            )

    def close(self) -> None:
        self.pool.close()


def idempotency_for(settings: Settings) -> IdempotencyStore:
    """The store beside the events, as the settings choose it."""
    if settings.store == "sqlite":
        return SQLiteIdempotency(str(settings.sqlite_path))
    if settings.store == "postgres":
        return PostgresIdempotency(settings.postgres_conninfo(), settings.postgres_schema or "public")
    return MemoryIdempotency()

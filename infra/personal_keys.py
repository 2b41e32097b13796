"""One encryption key per person, so erasing a person is destroying a key.

Personal data in events (see ``domain.catalog.PERSONAL_DATA_FIELDS``) is stored
sealed with AES-256-GCM (``cryptography``) under its subject's key; the events
themselves never change, so the history and its hash chain stay intact. Keys
live in ``gam_personal_keys`` beside the events (a deployment that wants them in
a KMS replaces this module). Keys are not cached, so an erasure takes effect in
every process at once.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from infra.postgres_ddl import lock_for_this_transaction
from infra.settings import Settings, conninfo_from_env, pool_wait_seconds

KEY_TABLE = "gam_personal_keys"
NONCE_BYTES = 12


class KeyErased(LookupError):
    """The subject's key was destroyed: their personal data is gone for good."""


@dataclass(frozen=True)
class Sealed:
    """A personal-data value encrypted under its subject's key (nonce ‖ ciphertext, base64)."""

    sealed: str


class PersonalKeys(ABC):
    @abstractmethod
    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        """The subject's key (made on first use if ``create``); None once erased or never made."""

    @abstractmethod
    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        """Forget the key for good, recording who, when and why."""

    def close(self) -> None:  # noqa: B027 - only stores holding connections close anything
        """Nothing to close unless the store holds connections."""

    def seal(self, subject: UUID, field: str, plaintext: bytes) -> Sealed:
        key = self.key(subject, create=True)
        if key is None:
            msg = f"personal data of {subject} was erased; nothing new can be stored for them"
            raise KeyErased(msg)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, plaintext, f"{subject}/{field}".encode())
        return Sealed(base64.b64encode(nonce + ciphertext).decode())

    def open(self, subject: UUID, field: str, sealed: Sealed) -> bytes | None:
        """The plaintext, or None if the subject's key was destroyed."""
        key = self.key(subject, create=False)
        if key is None:
            return None
        raw = base64.b64decode(sealed.sealed)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{subject}/{field}".encode())


class MemoryKeys(PersonalKeys):
    def __init__(self) -> None:
        self._keys: dict[UUID, bytes | None] = {}
        self._lock = threading.Lock()

    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        with self._lock:
            if subject not in self._keys and create:
                self._keys[subject] = AESGCM.generate_key(bit_length=256)
            return self._keys.get(subject)

    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        with self._lock:
            self._keys[subject] = None


class SQLiteKeys(PersonalKeys):
    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {KEY_TABLE} (subject TEXT PRIMARY KEY, key BLOB, "
                "erased_at TEXT, erased_by TEXT, legal_basis TEXT)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        with self._connect() as conn:
            if create:
                conn.execute(
                    f"INSERT INTO {KEY_TABLE} (subject, key) VALUES (?, ?) ON CONFLICT (subject) DO NOTHING",  # noqa: S608
                    (str(subject), AESGCM.generate_key(bit_length=256)),
                )
            row = conn.execute(f"SELECT key FROM {KEY_TABLE} WHERE subject = ?", (str(subject),)).fetchone()  # noqa: S608
        return bytes(row[0]) if row and row[0] is not None else None

    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO {KEY_TABLE} (subject, key, erased_at, erased_by, legal_basis) VALUES (?, NULL, ?, ?, ?) "  # noqa: S608
                "ON CONFLICT (subject) DO UPDATE SET key = NULL, erased_at = excluded.erased_at, "
                "erased_by = excluded.erased_by, legal_basis = excluded.legal_basis",
                (str(subject), erased_at.isoformat(), erased_by, legal_basis),
            )


class PostgresKeys(PersonalKeys):
    def __init__(self, conninfo: str, schema: str) -> None:
        self.table = SQL("{0}.{1}").format(Identifier(schema), Identifier(KEY_TABLE))
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=2, open=True, timeout=pool_wait_seconds(conninfo))
        with self.pool.connection() as conn:
            lock_for_this_transaction(conn, schema)  # other processes may be starting too
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {0} (subject uuid PRIMARY KEY, key bytea, "
                    "erased_at timestamptz, erased_by text, legal_basis text)"
                ).format(self.table)
            )

    def key(self, subject: UUID, *, create: bool) -> bytes | None:
        with self.pool.connection() as conn:
            if create:
                conn.execute(
                    SQL("INSERT INTO {0} (subject, key) VALUES (%s, %s) ON CONFLICT (subject) DO NOTHING").format(
                        self.table
                    ),
                    (subject, AESGCM.generate_key(bit_length=256)),
                )
            row = conn.execute(SQL("SELECT key FROM {0} WHERE subject = %s").format(self.table), (subject,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def destroy(self, subject: UUID, *, erased_by: str, erased_at: datetime, legal_basis: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                SQL(
                    "INSERT INTO {0} (subject, key, erased_at, erased_by, legal_basis) VALUES (%s, NULL, %s, %s, %s) "
                    "ON CONFLICT (subject) DO UPDATE SET key = NULL, erased_at = excluded.erased_at, "
                    "erased_by = excluded.erased_by, legal_basis = excluded.legal_basis"
                ).format(self.table),
                (subject, erased_at, erased_by, legal_basis),
            )

    def close(self) -> None:
        self.pool.close()


def keys_for(settings: Settings) -> PersonalKeys:
    """The key store beside the events, as the settings choose it."""
    if settings.store == "sqlite":
        return SQLiteKeys(str(settings.sqlite_path))
    if settings.store == "postgres":
        return PostgresKeys(settings.postgres_conninfo(), settings.postgres_schema or "public")
    return MemoryKeys()


def keys_for_env(env: Mapping[str, str]) -> PersonalKeys:
    """For an application built from a bare ``eventsourcing`` environment (tests do);
    processes build theirs through ``services.bootstrap`` with :func:`keys_for`."""
    module = env.get("PERSISTENCE_MODULE", "")
    if module.endswith("sqlite"):
        return SQLiteKeys(env["SQLITE_DBNAME"])
    if module.endswith("postgres"):
        return PostgresKeys(conninfo_from_env(env), env.get("POSTGRES_SCHEMA") or "public")
    return MemoryKeys()

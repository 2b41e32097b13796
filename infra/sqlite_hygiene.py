"""Disk hygiene on the embedded SQLite store.

Sealing keeps personal data out of the files, but SQLite keeps the bytes of deleted
or rewritten rows in free pages and in the write-ahead log until they are reused, so
whatever a row held in clear before (a view row rewritten at an erasure, a remembered
answer) can outlive it in a copy of the disk. Every connection gam opens to an SQLite
file therefore runs with ``PRAGMA secure_delete=ON`` (freed content is overwritten
with zeros), and the log is checkpointed and truncated to nothing after an erasure
and when a gam process stops (:func:`truncate_wal`).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteConnection, SQLiteConnectionPool

log = logging.getLogger("gam.sqlite")
SECURE_DELETE = "PRAGMA secure_delete=ON"


def use_wal(path: Path, *, within: float = 10.0) -> None:
    """Puts the file in write-ahead-log mode (the file keeps it).

    Switching needs the file to itself, and SQLite answers "database is locked" at once
    instead of waiting through the busy timeout: processes starting together on a fresh
    file (``docker compose up``) would fail. So it asks again until ``within`` runs out,
    and does nothing when another process has already switched it."""
    deadline = time.monotonic() + within
    with contextlib.closing(sqlite3.connect(path, timeout=within)) as conn:
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def secure(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute(SECURE_DELETE)
    return conn


def secure_pool(datastore: Any) -> None:
    """Every connection of an ``eventsourcing`` SQLite datastore's pool, present and
    future, with ``secure_delete`` (the library opens them, and has no hook for it)."""
    pool = getattr(datastore, "pool", None)
    if not isinstance(pool, SQLiteConnectionPool) or pool.is_sqlite_memory_mode or getattr(pool, "_gam_secured", False):
        return
    create = pool._create_connection

    def create_secured() -> SQLiteConnection:
        made = create()
        secure(made._sqlite_conn)
        return made

    pool._create_connection = create_secured  # type: ignore[method-assign]
    for idle in list(pool._pool):
        secure(idle._sqlite_conn)
    pool._gam_secured = True  # type: ignore[attr-defined]


def truncate_wal(path: str) -> tuple[int, int, int] | None:
    """``PRAGMA wal_checkpoint(TRUNCATE)``: the log's pages written into the database
    and the log file cut to zero bytes. Returns SQLite's (busy, log pages, pages
    checkpointed); busy is 1 when a reader elsewhere kept it from finishing (it is then
    done when that process stops). ``None`` for an in-memory database."""
    if not path or SQLiteConnectionPool.detect_memory_mode(path) or not Path(path).exists():
        return None  # (an application closed again when collected, after its file went)
    try:
        conn = sqlite3.connect(path, timeout=10)
        try:
            row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as failed:
        log.warning("the write-ahead log of %s was not truncated: %s", path, failed)
        return None
    result = (int(row[0]), int(row[1]), int(row[2]))
    if result[0]:
        log.warning("the write-ahead log of %s could not be truncated yet: another process is reading", path)
    return result

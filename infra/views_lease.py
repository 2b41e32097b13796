"""One writer of a store's views at a time.

The API keeps the views current in its own process and ``gam project`` does the
same; run together, as docker-compose runs them, both wrote the same views and
raced on every batch. The loser's tracking write failed, so ``gam project``
exited with an ``IntegrityError`` whenever the API's follower got to a batch
first, and a batch that read a view document its rival had just advanced could
apply an event to it twice.

The writer holds a PostgreSQL session advisory lock, keyed by the schema, on a
connection of its own; any other process stands by and asks again. The lock
goes with its holder's connection, so a holder killed with SIGKILL, or a
database restart, frees it for the next one. SQLite and memory stores are not
shared between processes this way; there the lease is always held.
"""

from __future__ import annotations

import contextlib
import logging
import os

import psycopg

from infra.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
APPLICATION_NAME = "gam views lease"
"""The lease's connection shows in ``pg_stat_activity`` as this and its process id, so an
operator can see which process writes the views: the one whose connection holds the
advisory lock (:meth:`ViewsLease.writer`)."""


class ViewsLease:
    """Ask :meth:`holds` before writing the views; call :meth:`release` when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = f"gam views in schema {settings.postgres_schema or 'public'}"
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._held = False

    def holds(self) -> bool:
        """Whether this process may write the views now, taking the lease if it is free."""
        if self.settings.store != "postgres":
            return True
        try:
            if self._connection is None or self._connection.closed:
                self._held = False
                self._connection = psycopg.connect(
                    self.settings.postgres_dsn or "",
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    application_name=f"{APPLICATION_NAME} {os.getpid()}",
                )
            if self._held:
                self._connection.execute("SELECT 1")  # the lock lives as long as this connection
            else:
                row = self._connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)).fetchone()
                self._held = bool(row and row[0])
                if self._held:
                    log.info("this process now writes the views (%s)", self.key)
        except psycopg.Error as error:
            if self._held:
                log.warning("lost the views lease: %s", error)
            self.release()
        return self._held

    def writer(self) -> str | None:
        """Who writes the views now: the application name (with its process id) of the
        connection holding the lease, or None (or None on SQLite and memory stores)."""
        if self.settings.store != "postgres":
            return None
        with psycopg.connect(self.settings.postgres_dsn or "", connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            row = conn.execute(
                "SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE %s "
                "AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid",
                (f"{APPLICATION_NAME} %", self.key),
            ).fetchone()
        return str(row[0]) if row else None

    def release(self) -> None:
        """Give the lease up (closing its connection frees the lock)."""
        self._held = False
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()

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

Every process that writes the views holds the lease, the commands too (``gam
demo``, ``gam rebuild``, ``gam replay``, ...): one that needs the views at a
position waits for the holder to reach it, or takes the lease when nobody holds
it (see ``services.projector.bring_up_to_date``). ``gam rebuild`` cannot wait for
the follower to go away, so it queues for the lock (:meth:`ViewsLease.acquire`); a
follower asks :meth:`ViewsLease.wanted` between batches and, once it has stopped
writing, releases the lease, which PostgreSQL then grants to the first in the
queue (a follower's ``pg_try_advisory_lock`` does not jump the queue).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import psycopg

from infra.settings import Settings

log = logging.getLogger(__name__)

_WAITERS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid = ((hashtext(%(key)s)::bigint >> 32) & 4294967295)::oid "
    "AND objid = (hashtext(%(key)s)::bigint & 4294967295)::oid)"
)
"""Whether a session waits for the lease's advisory lock (``pg_advisory_lock`` of a
single bigint: its high half is ``classid``, its low half ``objid``)."""


class ViewsLeaseTimeout(TimeoutError):
    """The lease's holder did not hand it over within the time allowed."""


class ViewsLeaseLost(RuntimeError):
    """The lease went away (its connection broke) while this process was writing the views."""


CONNECT_TIMEOUT_SECONDS = 5
WANTED_CHECK_SECONDS = 0.1
"""How often a holder asks PostgreSQL whether another process waits for the lease. A
follower asks between catch-ups, every few milliseconds under load, and the question
reads ``pg_locks``: a round trip and a scan of the lock table per catch-up, for a
rebuild that then starts at most this much later."""
APPLICATION_NAME = "gam views lease"
"""The lease's connection shows in ``pg_stat_activity`` as this and its process id, so an
operator can see which process writes the views: the one whose connection holds the
advisory lock (:meth:`ViewsLease.writer`)."""


lease_observer: Callable[[bool], None] | None = None
"""Told of every lease taken (True) or given up (False) in this process (the metrics set it)."""


class ViewsLease:
    """Ask :meth:`holds` before writing the views; call :meth:`release` when done."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = f"gam views in schema {settings.postgres_schema or 'public'}"
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._holding = False
        self._wanted = (False, -math.inf)
        """The last answer of :meth:`wanted`, and when it was asked (monotonic seconds)."""

    @property
    def _held(self) -> bool:
        return self._holding

    @_held.setter
    def _held(self, held: bool) -> None:
        """Every change of who writes the views is logged (and counted, if observed): a
        fail-over from ``gam project`` to ``gam serve`` must not happen silently."""
        if held == self._holding:
            return
        self._holding = held
        if not held:
            log.info("this process no longer writes the views (%s)", self.key)
        if lease_observer is not None:
            lease_observer(held)

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

    def still_holds(self) -> bool:
        """Whether this process still holds the lease it took (never takes it)."""
        if self.settings.store != "postgres":
            return True
        if not self._held or self._connection is None:
            return False
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            log.warning("lost the views lease: %s", error)
            self.release()
        return self._held

    def acquire(self, timeout: float) -> None:
        """Take the lease, waiting up to ``timeout`` seconds for its holder to hand it
        over (a follower hands it over between batches once it sees someone waiting,
        :meth:`wanted`); raise :class:`ViewsLeaseTimeout` if it did not."""
        if self.settings.store != "postgres" or self.still_holds():
            return
        self.release()
        connection = psycopg.connect(
            self.settings.postgres_dsn or "",
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=f"{APPLICATION_NAME} {os.getpid()}",
        )
        try:
            connection.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(timeout * 1000))}ms",))
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (self.key,))
            connection.execute("SELECT set_config('lock_timeout', '0', false)")
        except psycopg.errors.LockNotAvailable as error:
            connection.close()
            holder = self.writer()
            msg = f"the views lease ({self.key}) is still held by {holder or 'another process'} after {timeout:g} s"
            raise ViewsLeaseTimeout(msg) from error
        except BaseException:
            connection.close()
            raise
        self._connection, self._held = connection, True
        log.info("this process now writes the views (%s)", self.key)

    def wanted(self) -> bool:
        """Whether another process waits for the lease this process holds (``gam rebuild``):
        a follower then stops writing and releases it (:meth:`hand_over`)."""
        if self.settings.store != "postgres" or not self._held or self._connection is None:
            return False
        answer, asked = self._wanted
        if time.monotonic() - asked < WANTED_CHECK_SECONDS:
            return answer
        try:
            row = self._connection.execute(_WAITERS, {"key": self.key}).fetchone()
        except psycopg.Error as error:
            log.warning("lost the views lease: %s", error)
            self.release()
            return False
        self._wanted = (bool(row and row[0]), time.monotonic())
        return self._wanted[0]

    def hand_over(self) -> bool:
        """Release the lease if another process waits for it; say whether it did. Call it
        only when this process is not writing the views."""
        if not self.wanted():
            return False
        log.info("handing the views over to the process waiting for them (%s)", self.key)
        self.release()
        return True

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
        """Give the lease up. The lock is unlocked first: closing the connection frees it
        too, but only once the server has noticed, so the next holder would wait for that."""
        held, self._held = self._held, False
        connection, self._connection = self._connection, None
        self._wanted = (False, -math.inf)
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                if held and not connection.closed:
                    connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self.key,))
            with contextlib.suppress(psycopg.Error):
                connection.close()


class RebuildRunning(RuntimeError):
    """Another ``gam rebuild`` is building the views' next generation in this store."""


class RebuildLockLost(RuntimeError):
    """The rebuild lock went away (its connection broke) while this process was building."""


REBUILD_APPLICATION_NAME = "gam rebuild"


class RebuildLock:
    """One ``gam rebuild`` per store at a time, so that two never write the same new
    generation. It is not the views lease: the follower keeps writing the live generation
    while a rebuild runs. On PostgreSQL a session advisory lock on a connection of its
    own; on SQLite an exclusive ``flock`` of a file beside the database. Either goes with
    its holder, so a rebuild killed with SIGKILL leaves it free, and the next rebuild
    resumes the generation it left (``gam rebuild --fresh`` starts over)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = f"gam views rebuild in schema {settings.postgres_schema or 'public'}"
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._file: IO[str] | None = None

    @property
    def path(self) -> Path:
        """The SQLite store's lock file."""
        return self.settings.sqlite_path.with_name(self.settings.sqlite_path.name + ".rebuild.lock")

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RebuildRunning` naming who holds it."""
        if self.settings.store == "postgres":
            self._acquire_postgres()
        elif self.settings.store == "sqlite":
            self._acquire_file()

    def _acquire_postgres(self) -> None:
        connection = psycopg.connect(
            self.settings.postgres_dsn or "",
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=f"{REBUILD_APPLICATION_NAME} {os.getpid()}",
        )
        row = connection.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)).fetchone()
        if row and row[0]:
            self._connection = connection
            return
        holder = connection.execute(
            "SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid",
            (self.key,),
        ).fetchone()
        connection.close()
        raise RebuildRunning(_running(str(holder[0]) if holder else "another process"))

    def _acquire_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip()
            file.close()
            raise RebuildRunning(_running(holder or "another process")) from None
        file.seek(0)
        file.truncate()
        file.write(f"{REBUILD_APPLICATION_NAME} {os.getpid()}")
        file.flush()
        self._file = file

    def still_holds(self) -> bool:
        """Whether the lock is still this process's (a broken connection loses it)."""
        if self._connection is None:
            return True
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            log.warning("lost the rebuild lock: %s", error)
            self.release()
            return False
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                if not connection.closed:
                    connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self.key,))
            with contextlib.suppress(psycopg.Error):
                connection.close()
        file, self._file = self._file, None
        if file is not None:
            file.close()  # the flock goes with the file


def _running(holder: str) -> str:
    return (
        f"another gam rebuild is running ({holder}): it is building the views' next generation while the "
        "live one keeps serving; wait for it to finish"
    )

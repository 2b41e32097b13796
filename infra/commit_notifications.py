"""Waking a reader of the event log when a commit may have stored events.

The event store's PostgreSQL recorder sends a NOTIFY on the events table's channel with
every commit (``infra.hash_chain``). A follower or the relay that has read everything
LISTENs on it and looks again as soon as one arrives, instead of polling: a poll every
50 ms put 25 ms on average, and up to 50, between a commit and the relay's publishing it.
SQLite has no notifications; there a reader polls.
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


class CommitNotifications:
    """LISTENs on the events table's channel on a connection of its own, opened at the
    first wait. A connection the database dropped is closed and opened again at the next
    wait; until then a wait only sleeps, so a reader polls while the database is away and
    finds out from its own queries."""

    def __init__(self, conninfo: str, channel: str) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._connection: psycopg.Connection | None = None

    def wait(self, seconds: float) -> None:
        """Return when a commit notifies (at once if one did since the last wait), or after
        ``seconds``."""
        try:
            if self._connection is None:
                self._connection = psycopg.connect(self._conninfo, autocommit=True)
                self._connection.execute(sql.SQL("LISTEN {0}").format(sql.Identifier(self._channel)))
            for _ in self._connection.notifies(timeout=seconds, stop_after=1):
                pass
        except psycopg.Error as error:
            log.debug("not listening for commits (%s); polling until the database answers", error)
            self.close()
            time.sleep(seconds)

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
            self._connection = None

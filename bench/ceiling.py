"""PostgreSQL's own ceilings for event-sized rows, measured in the same run as the
contenders, on the same server: what no design built on this database can beat.

The rows look like stored events (a stream id, a version, a time, a payload of
the mean size of gam's stored events) in a bare table with a primary key and
one index, nothing else: no constraints to check, no second table to write.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.common import new_schema

TABLE = """
CREATE TABLE rows (
    id bigserial PRIMARY KEY, stream uuid NOT NULL, version int NOT NULL, at timestamptz NOT NULL,
    payload bytea NOT NULL);
CREATE INDEX ON rows (stream, at);
CREATE TABLE documents (id uuid PRIMARY KEY, document bytea NOT NULL);
"""
START = datetime(2027, 1, 1, tzinfo=UTC)


@dataclass
class Ceiling:
    """A bare table of event-sized rows in its own schema."""

    conn: psycopg.Connection[Any]

    @classmethod
    def create(cls, dsn: str) -> Ceiling:
        conn = psycopg.connect(dsn, autocommit=True, options=f"-c search_path={new_schema(dsn, 'ceiling')}")
        conn.execute(TABLE)
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    def one_row_per_commit(self, count: int, size: int) -> list[float]:
        """Insert ``count`` rows, each in its own transaction; returns each one's seconds."""
        stream, payload = uuid.uuid4(), os.urandom(size)
        latencies = []
        for version in range(1, count + 1):
            started = time.perf_counter()
            self.conn.execute(
                "INSERT INTO rows (stream, version, at, payload) VALUES (%s, %s, %s, %s)",
                [stream, version, START, payload],
            )
            latencies.append(time.perf_counter() - started)
        return latencies

    def copy(self, count: int, size: int, streams: int = 1) -> tuple[float, list[uuid.UUID]]:
        """COPY ``count`` rows (one a minute, round robin over ``streams``); returns (seconds, stream ids)."""
        ids = [uuid.uuid4() for _ in range(streams)]
        payload = os.urandom(size)
        started = time.perf_counter()
        with (
            self.conn.transaction(),
            self.conn.cursor() as cursor,
            cursor.copy("COPY rows (stream, version, at, payload) FROM STDIN") as copy,
        ):
            for n in range(count):
                copy.write_row((ids[n % streams], n // streams + 1, START + timedelta(minutes=n), payload))
        return time.perf_counter() - started, ids

    def read_stream(self, stream: uuid.UUID, until: datetime | None = None) -> tuple[float, int]:
        """Read one stream's rows in order (up to ``until``); returns (seconds, rows read)."""
        started = time.perf_counter()
        rows = self.conn.execute(
            "SELECT version, at, payload FROM rows WHERE stream = %s AND at <= %s ORDER BY id",
            [stream, until or datetime.max.replace(tzinfo=UTC)],
        ).fetchall()
        return time.perf_counter() - started, len(rows)

    def read_all(self) -> tuple[float, int]:
        """Read every row in order: the least a rebuild from the log must do."""
        started = time.perf_counter()
        rows = self.conn.execute("SELECT stream, version, at, payload FROM rows ORDER BY id").fetchall()
        return time.perf_counter() - started, len(rows)

    def truncate(self) -> None:
        self.conn.execute("TRUNCATE rows")

    def document_reads(self, size: int, reads: int) -> list[float]:
        """Read one stored document of ``size`` bytes by primary key, ``reads`` times."""
        key = uuid.uuid4()
        self.conn.execute("INSERT INTO documents VALUES (%s, %s)", [key, os.urandom(size)])
        latencies = []
        for _ in range(reads):
            started = time.perf_counter()
            self.conn.execute("SELECT document FROM documents WHERE id = %s", [key]).fetchone()
            latencies.append(time.perf_counter() - started)
        return latencies

"""Creating gam's tables from several processes at once.

``docker compose up`` starts the API, the projector and the relay together, and
each creates what it needs as it starts (``CREATE TYPE``, ``CREATE TABLE IF NOT
EXISTS``, ``CREATE OR REPLACE FUNCTION``, the latter on every start). PostgreSQL
does not serialise those statements: run side by side on one schema they fail
with ``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``
or ``tuple concurrently updated``, and the process dies (five of six started
together on a fresh schema did). Every creation of gam's tables takes one
advisory lock per schema first, so they run one after another.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore


def lock_key(schema: str) -> str:
    return f"gam: creating tables in {schema}"


def lock_for_this_transaction(conn: psycopg.Connection[Any], schema: str) -> None:
    """Wait for any other process creating tables in ``schema``; the lock ends with the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(schema),))


@contextmanager
def creating_tables(datastore: PostgresDatastore) -> Iterator[None]:
    """Hold the lock while an ``eventsourcing`` recorder creates its tables (in
    several transactions of its own): on a connection of its own, released when
    that connection closes."""
    params = datastore.pool.kwargs() if callable(datastore.pool.kwargs) else datastore.pool.kwargs
    kwargs = {k: v for k, v in (params or {}).items() if k != "row_factory"}
    with psycopg.connect(autocommit=True, **kwargs) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_key(datastore.schema),))
        yield

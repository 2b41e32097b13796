"""A new, empty durable store for each hypothesis example."""

from __future__ import annotations

import psycopg

from infra.settings import Settings


def fresh_store(settings: Settings, n: int) -> Settings:
    if settings.store == "sqlite":
        return settings.model_copy(update={"sqlite_path": settings.sqlite_path.with_name(f"example{n}.db")})
    schema = f"{settings.postgres_schema}_{n}"
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return settings.model_copy(update={"postgres_schema": schema})


def drop_store(settings: Settings) -> None:
    if settings.store == "postgres":
        with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{settings.postgres_schema}" CASCADE')

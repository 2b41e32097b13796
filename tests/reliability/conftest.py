"""Fixtures of the reliability tests: PostgreSQL stores in fresh schemas of the
session's server, ready for gam's own processes."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.settings import Settings


def fresh_settings(dsn: str, **overrides: object) -> Settings:
    """Settings on a new, empty schema (the caller drops it with :func:`drop_schema`)."""
    schema = f"rel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    defaults: dict[str, object] = {
        "store": "postgres",
        "postgres_dsn": dsn,
        "postgres_schema": schema,
        "postgres_pool_size": 5,
        "kafka_topic": f"gam-reliability-{schema}",
        "kafka_max_poll_interval_ms": 3000,
        "key_store_path": _keys_dir() / f"{schema}.keys",  # the keys live outside the database
    }
    return Settings(**{**defaults, **overrides})  # type: ignore[arg-type]


def _keys_dir() -> Path:
    directory = Path(tempfile.gettempdir()) / "gam-test-keys"
    directory.mkdir(exist_ok=True)
    return directory


def drop_schema(settings: Settings) -> None:
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres_schema}" CASCADE')
    if settings.key_store_path is not None:
        for path in settings.key_store_path.parent.glob(settings.key_store_path.name + "*"):
            path.unlink(missing_ok=True)


@pytest.fixture
def settings(postgres_dsn: str) -> Iterator[Settings]:
    chosen = fresh_settings(postgres_dsn)
    yield chosen
    drop_schema(chosen)

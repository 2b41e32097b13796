"""The three stores a contract suite runs on, as mixins providing ``settings``.

A contract is a base class of tests (not collected: its name does not start with
``Test``) that asks for ``settings``; each adapter's test class mixes one of these
in, as ``eventsourcing``'s own recorder test cases are subclassed per database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import Settings


class MemoryStore:
    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(store="memory")


class SQLiteStore:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")


class PostgresStore:
    """A schema of its own per test, on the session's PostgreSQL (see tests/conftest.py)."""

    pytestmark = [pytest.mark.postgres]

    @pytest.fixture
    def settings(self, postgres_dsn: str, postgres_schema: str, tmp_path: Path) -> Settings:
        return Settings(
            store="postgres", postgres_dsn=postgres_dsn, postgres_schema=postgres_schema, postgres_pool_size=2,
            key_store_path=tmp_path / "gam.keys",
        )  # fmt: skip

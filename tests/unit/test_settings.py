"""GAM_* environment variables choose the store; the eventsourcing settings follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import Settings


def test_default_is_an_sqlite_file_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GAM_STORE", "GAM_SQLITE_PATH", "GAM_POSTGRES_DSN", "GAM_SNAPSHOT_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    env = settings.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == "gam.db"
    assert env["IS_SNAPSHOTTING_ENABLED"] == "y"
    assert settings.describe_store() == f"SQLite file {Path('gam.db').resolve()}"


def test_postgres_dsn_from_the_environment_is_split_for_eventsourcing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAM_STORE", "postgres")
    monkeypatch.setenv("GAM_POSTGRES_DSN", "postgresql://gam:s3cret@db.internal:6543/accounts")
    monkeypatch.setenv("GAM_POSTGRES_SCHEMA", "gam")
    monkeypatch.setenv("GAM_SNAPSHOT_INTERVAL", "0")
    env = Settings().eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "6543")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DBNAME"]) == ("gam", "s3cret", "accounts")
    assert env["POSTGRES_SCHEMA"] == "gam"
    assert env["IS_SNAPSHOTTING_ENABLED"] == "n"


def test_a_unix_socket_uri_keeps_the_socket_directory_as_host() -> None:
    env = Settings(
        store="postgres", postgres_dsn="postgresql://postgres:@/postgres?host=/tmp/pgsock"
    ).eventsourcing_env()
    assert env["POSTGRES_HOST"] == "/tmp/pgsock"


def test_postgres_without_a_dsn_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="GAM_POSTGRES_DSN"):
        Settings(store="postgres").eventsourcing_env()


def test_unknown_store_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAM_STORE", "oracle")
    with pytest.raises(ValueError, match="store"):
        Settings()


def test_the_producers_batching_and_compression_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAM_KAFKA_COMPRESSION", "zstd")
    monkeypatch.setenv("GAM_KAFKA_LINGER_MS", "20")
    monkeypatch.setenv("GAM_KAFKA_BATCH_BYTES", "262144")
    settings = Settings()
    assert (settings.kafka_compression, settings.kafka_linger_ms, settings.kafka_batch_bytes) == ("zstd", 20, 262144)
    monkeypatch.setenv("GAM_KAFKA_COMPRESSION", "snappy")  # needs a library gam does not bring
    with pytest.raises(ValueError, match="kafka_compression"):
        Settings()

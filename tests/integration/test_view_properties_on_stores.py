"""The incremental-equals-rebuild property on the real stores (SQLite, PostgreSQL)."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from infra.settings import Settings
from services.app import GamApplication
from services.projector import Projector
from tests.random_commands import World, steps
from tests.views import dump_views


def _fresh(settings: Settings, n: int) -> Settings:
    """A new, empty store for each hypothesis example."""
    if settings.store == "sqlite":
        return settings.model_copy(update={"sqlite_path": settings.sqlite_path.with_name(f"example{n}.db")})
    schema = f"{settings.postgres_schema}_{n}"
    with psycopg.connect(settings.postgres_dsn or "", autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return settings.model_copy(update={"postgres_schema": schema})


@pytest.mark.parametrize("examples", [8])
def test_incremental_views_equal_a_rebuild_on_durable_stores(durable_settings: Settings, examples: int) -> None:
    counter = iter(range(10**6))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps=steps)
    def check(steps: list[tuple[str, int, int, int]]) -> None:
        store = _fresh(durable_settings, next(counter))
        app = GamApplication(store.eventsourcing_env())
        world = World(app)
        world.start()
        incremental = Projector.open(app, store)
        for step in steps:
            world.run(*step)
            if step[0] == "catch_up":
                incremental.catch_up()
        incremental.catch_up()
        expected = dump_views(incremental)
        rebuilt = Projector.open(app, store)
        rebuilt.rebuild()
        assert dump_views(rebuilt) == expected
        for projector in (incremental, rebuilt):
            projector.close()
        app.close()
        if store.store == "postgres":
            with psycopg.connect(store.postgres_dsn or "", autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{store.postgres_schema}" CASCADE')

    check()

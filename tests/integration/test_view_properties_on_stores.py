"""The incremental-equals-rebuild property on the real stores (SQLite, PostgreSQL)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from infra.settings import Settings
from services.app import GamApplication
from services.projector import Projector
from tests.fresh_store import drop_store, fresh_store
from tests.random_commands import World, steps
from tests.views import dump_views


@pytest.mark.parametrize("examples", [8])
def test_incremental_views_equal_a_rebuild_on_durable_stores(durable_settings: Settings, examples: int) -> None:
    counter = iter(range(10**6))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps=steps)
    def check(steps: list[tuple[str, int, int, int]]) -> None:
        store = fresh_store(durable_settings, next(counter))
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
        drop_store(store)

    check()

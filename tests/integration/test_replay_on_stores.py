"""The replay property on SQLite and PostgreSQL: a second application object,
reading only what the first stored, rebuilds every aggregate exactly, with and
without snapshots."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from infra.settings import Settings
from services.app import GamApplication
from tests.fresh_store import drop_store, fresh_store
from tests.random_commands import World, steps
from tests.replay import RecordingApplication, assert_store_rebuilds_what_was_decided


@pytest.mark.parametrize("examples", [10])
def test_aggregates_rebuilt_by_another_process_equal_those_in_memory(durable_settings: Settings, examples: int) -> None:
    counter = iter(range(10**6))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps=steps)
    def check(steps: list[tuple[str, int, int, int]]) -> None:
        store = fresh_store(durable_settings, next(counter))
        writer = RecordingApplication(store.eventsourcing_env(), snapshot_interval=3)
        with_snapshots = GamApplication(store.model_copy(update={"aggregate_cache_size": 0}).eventsourcing_env())
        from_events = GamApplication(
            store.model_copy(update={"aggregate_cache_size": 0, "snapshot_interval": 0}).eventsourcing_env()
        )
        try:
            world = World(writer)
            world.start()
            for step in steps:
                world.run(*step)
            assert_store_rebuilds_what_was_decided(writer.decided, with_snapshots, from_events)
        finally:
            for app in (writer, with_snapshots, from_events):
                app.close()
            drop_store(store)

    check()

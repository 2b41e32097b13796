"""Property: for any sequence of commands, every aggregate rebuilt from the store
(from events alone, and from snapshots) equals the one that made the decisions."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from infra.settings import Settings
from services.app import GamApplication
from tests.random_commands import World, steps
from tests.replay import RecordingApplication, assert_store_rebuilds_what_was_decided


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_aggregates_rebuilt_from_the_store_equal_those_in_memory(steps: list[tuple[str, int, int, int]]) -> None:
    env = Settings(store="memory", aggregate_cache_size=0).eventsourcing_env()
    app = RecordingApplication(env, snapshot_interval=3)
    world = World(app)
    world.start()
    for step in steps:
        world.run(*step)
    assert len(app.decided) >= 2
    # The in-memory store belongs to this application object: read it back through
    # its repository (latest snapshot, then events) and through one that ignores snapshots.
    assert_store_rebuilds_what_was_decided(app.decided, app, _without_snapshots(app))


def _without_snapshots(app: GamApplication) -> GamApplication:
    """A repository over the same events that ignores the snapshots."""
    from eventsourcing.application import Repository

    reader = GamApplication(Settings(store="memory", snapshot_interval=0, aggregate_cache_size=0).eventsourcing_env())
    reader._repository = Repository(event_store=app.events, snapshot_store=None)
    reader.events = app.events
    return reader

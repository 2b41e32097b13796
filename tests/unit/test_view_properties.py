"""Property: views built incrementally, caught up at random points of a random
command sequence, equal the same views rebuilt from the first event."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from infra.settings import Settings
from services.app import GamApplication
from services.projector import Projector
from tests.random_commands import World, steps
from tests.views import dump_views


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_incremental_views_equal_a_rebuild(steps: list[tuple[str, int, int, int]]) -> None:
    app = GamApplication(Settings(store="memory").eventsourcing_env())
    world = World(app)
    world.start()
    incremental = Projector.in_memory(app)
    for step in steps:
        world.run(*step)
        if step[0] == "catch_up":
            incremental.catch_up()
    incremental.catch_up()
    rebuilt = Projector.in_memory(app)
    rebuilt.rebuild()
    assert dump_views(incremental) == dump_views(rebuilt)
    assert set(incremental.positions().values()) == {app.recorder.max_notification_id()}

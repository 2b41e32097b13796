"""How long a follower lets events gather between catch-ups (services.projector)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from services.projector import (
    LINGER_SECONDS,
    MAX_LINGER_SECONDS,
    Projector,
    follow_step,
    linger_after,
)


@pytest.mark.parametrize(
    ("events", "seconds"),
    [
        (1, LINGER_SECONDS),
        (3, LINGER_SECONDS),
        (4, 0.004),
        (12, 0.012),
        (25, MAX_LINGER_SECONDS),
        (500, MAX_LINGER_SECONDS),
    ],
)
def test_a_follower_lingers_a_millisecond_an_event_between_the_least_and_the_most(events: int, seconds: float) -> None:
    assert linger_after(events) == pytest.approx(seconds)


@dataclass
class _CatchingUp:
    """What ``follow_step`` asks of a projector: a catch-up's count and the views."""

    processed: int
    projections: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(("a", "b", "c")))

    def catch_up(self) -> int:
        return self.processed


def test_after_a_catch_up_the_follower_lingers_for_the_events_it_found_not_the_views_it_wrote() -> None:
    pauses: list[float] = []
    follow_step(cast(Projector, _CatchingUp(processed=3 * 12)), None, pauses.append, poll_seconds=0.5)
    assert pauses == [pytest.approx(0.012)]  # 12 events, each taken by the three views


def test_a_follower_that_found_nothing_polls() -> None:
    pauses: list[float] = []
    follow_step(cast(Projector, _CatchingUp(processed=0)), None, pauses.append, poll_seconds=0.5)
    assert pauses == [0.5]

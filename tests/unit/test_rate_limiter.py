"""The token bucket behind the API's rate limits: never more than a burst plus the
rate over any stretch of time, and a refused caller is told a wait that works."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.observability.http import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    rate=st.floats(min_value=0.5, max_value=50),
    burst_seconds=st.floats(min_value=0.1, max_value=5),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200),
)
def test_never_more_than_the_burst_plus_the_rate(rate: float, burst_seconds: float, gaps: list[float]) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst_seconds, clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        if limiter.retry_after("caller") is None:
            allowed += 1
        assert allowed <= limiter.capacity + rate * clock.now + 1e-9


@given(rate=st.floats(min_value=0.5, max_value=50), burst_seconds=st.floats(min_value=0.1, max_value=5))
def test_after_the_wait_it_names_a_refused_caller_is_let_in(rate: float, burst_seconds: float) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, burst_seconds, clock)
    while (wait := limiter.retry_after("caller")) is None:
        pass
    assert wait >= 1
    assert limiter.retry_after("someone else") is None  # buckets are per key
    clock.now += wait
    assert limiter.retry_after("caller") is None


def test_a_rate_of_zero_means_no_limit() -> None:
    limiter = RateLimiter(0, 1)
    assert all(limiter.retry_after("caller") is None for _ in range(10_000))

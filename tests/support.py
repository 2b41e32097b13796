"""Small helpers the tests share: metadata from a deterministic clock, unique ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from domain.metadata import EventMetadata

EPOCH = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


class Clock:
    """A clock that moves one second per reading, so event times are distinct and repeatable."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


_clock = Clock()


def meta(
    actor: str = "alice@vendor.example", reason: str | None = None, causation_id: UUID | None = None
) -> EventMetadata:
    return EventMetadata(actor=actor, at=_clock(), correlation_id=uuid4(), causation_id=causation_id, reason=reason)

"""What a cache may conclude from the writes it was brought past (services.recent_writes)."""

from __future__ import annotations

from uuid import uuid4

from services.recent_writes import RecentWrites


def test_nothing_is_known_until_the_writes_are_listed_from_a_position() -> None:
    writes = RecentWrites()
    assert not writes.untouched_after(10, [uuid4()])
    writes.restart(10)
    assert writes.untouched_after(10, [uuid4()])
    assert not writes.untouched_after(9, [uuid4()])  # what came at 10 is not listed


def test_an_entity_written_after_a_position_is_touched_and_one_written_up_to_it_is_not() -> None:
    a, b = uuid4(), uuid4()
    writes = RecentWrites()
    writes.restart(0)
    for position, entity in ((1, a), (2, b), (3, b)):
        writes.wrote(position, entity)
    assert writes.untouched_after(1, [a])
    assert not writes.untouched_after(1, [a, b])
    assert not writes.untouched_after(0, [a])
    assert writes.untouched_after(3, [a, b])


def test_forgotten_writes_make_older_positions_unknown() -> None:
    a = uuid4()
    writes = RecentWrites(kept=2)
    writes.restart(0)
    for position in (1, 2, 3):
        writes.wrote(position, uuid4())
    assert writes.complete_after == 1  # the write at 1 is forgotten
    assert not writes.untouched_after(0, [a])
    assert writes.untouched_after(1, [a])

"""The aggregate cache when commits of one process finish out of order (``gam serve``'s
threads): an earlier commit that finishes after a later one keeps its aggregates cached
unless a later event wrote them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest

from domain.stakeholder import Stakeholder
from services import handlers as h
from services.app import GamApplication
from tests.conftest import AppFactory
from tests.support import meta
from tests.unit.builders import build_org

Finish = Callable[[], None]


@contextmanager
def finishing_late(app: GamApplication, entity_id: UUID) -> Iterator[Finish]:
    """While inside, the next commit that writes ``entity_id`` updates the cache only when
    the returned function is called: as if its thread lost the interpreter to others
    right after its events were stored."""
    remember = app._remember
    held: list[tuple[Any, ...]] = []

    def late(aggregates: tuple[Any, ...], first: int, last: int, reads: Any = None) -> None:
        if not held and any(aggregate.id == entity_id for aggregate in aggregates):
            held.append((aggregates, first, last, reads))
            return
        remember(aggregates, first, last, reads)

    def finish() -> None:
        assert held, f"no commit wrote {entity_id}"
        remember(*held.pop())

    app._remember = late  # type: ignore[method-assign]
    try:
        yield finish
    finally:
        app._remember = remember  # type: ignore[method-assign]


def stored_reads(app: GamApplication, monkeypatch: pytest.MonkeyPatch) -> list[UUID]:
    """The aggregates read whole from the store from now on."""
    reads: list[UUID] = []
    get = app.repository.get

    def counted(aggregate_id: UUID, *args: Any, **kwargs: Any) -> Any:
        reads.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(app.repository, "get", counted)
    return reads


def test_a_commit_finishing_after_a_later_one_keeps_its_aggregates_cached(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory()
    org = build_org(app)
    ada, bea = org.stakeholder(name="Ada"), org.stakeholder(name="Bea")
    with finishing_late(app, ada) as finish:
        h.rate_influence(app, meta(), stakeholder_id=ada, influence=3)
        h.rate_influence(app, meta(), stakeholder_id=bea, influence=4)  # its cache update comes first
        finish()
    reads = stored_reads(app, monkeypatch)
    assert app.load(Stakeholder, ada).influence == 3
    assert app.load(Stakeholder, bea).influence == 4
    h.rate_influence(app, meta(), stakeholder_id=ada, influence=5)
    assert reads == []  # both came from the cache
    assert app_factory().load(Stakeholder, ada).influence == 5


def test_a_commit_finishing_after_a_later_one_that_wrote_the_same_aggregate_leaves_the_newer_state(
    app_factory: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory()
    org = build_org(app)
    ada = org.stakeholder(name="Ada")
    with finishing_late(app, ada) as finish:
        h.rate_influence(app, meta(), stakeholder_id=ada, influence=3)
        # decided on the cached Ada of before (the first commit has not updated it yet): the
        # store refuses the stale read, and the command is decided again on fresh state
        h.rate_influence(app, meta(), stakeholder_id=ada, influence=4)
        finish()
    reads = stored_reads(app, monkeypatch)
    ada_now = app.load(Stakeholder, ada)
    assert (ada_now.influence, ada_now.version) == (4, app_factory().load(Stakeholder, ada).version)
    assert reads == [ada]  # the late commit's Ada was older: dropped, and read again

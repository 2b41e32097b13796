"""Catch-up commits a view's changes per batch, with the batch's last position:
a failure part-way through a batch stores none of it, and nothing is applied twice."""

from __future__ import annotations

from typing import Any

import pytest

from projections.audit_trail import AuditTrailProjection
from projections.ports import AuditQuery, ViewChange
from services import handlers as h
from services.app import GamApplication
from services.projector import Projector
from tests.support import meta
from tests.unit.world import build_world
from tests.views import dump_views


class FailsOnce(AuditTrailProjection):
    """Breaks on one position the first time it sees it, as a crash would."""

    fail_at = 7
    failed = False

    def change_for(self, event: Any, position: int) -> ViewChange:
        if position == self.fail_at and not FailsOnce.failed:
            FailsOnce.failed = True
            raise RuntimeError("crash")
        return super().change_for(event, position)


def test_a_failed_batch_stores_nothing_and_the_next_catch_up_completes(memory_app: GamApplication) -> None:
    build_world(memory_app)
    total = memory_app.recorder.max_notification_id() or 0
    projector = Projector.in_memory(memory_app, ["audit_trail"])
    view = projector.view("audit_trail")
    projector.projections["audit_trail"] = FailsOnce(view=view)

    assert total > 9
    with pytest.raises(RuntimeError):
        projector.catch_up(batch=3)
    assert projector.position("audit_trail") == 6  # the two whole batches before the failing one
    assert [r.position for r in view.select_audit(AuditQuery(limit=1000))] == list(range(1, 7))

    projector.catch_up(batch=3)
    assert projector.position("audit_trail") == total
    assert [r.position for r in view.select_audit(AuditQuery(limit=1000))] == list(range(1, total + 1))


class CountsReads:
    """A view's storage that counts the documents read from it."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)

    def document(self, key: str) -> Any:
        self.reads += 1
        return self.view.document(key)

    def documents(self, keys: Any) -> Any:
        self.reads += len(keys)
        return self.view.documents(keys)


def test_a_follower_reads_its_documents_back_only_when_another_writer_moved_the_view(
    memory_app: GamApplication,
) -> None:
    """The documents a catch-up stored are kept for the next one while the view is still at
    the position it stored; once another writer (a rebuild, another process holding the lease)
    has moved it, they are read back, so the follower never writes over the other's work."""
    world = build_world(memory_app)
    follower = Projector.in_memory(memory_app, ["account_view"])
    counting = CountsReads(follower.view("account_view"))
    follower.projections["account_view"]._view = counting  # type: ignore[assignment]
    follower.catch_up()

    h.rate_sentiment(memory_app, meta(), stakeholder_id=world.person, sentiment=2)
    counting.reads = 0
    follower.catch_up()
    assert counting.reads == 0  # the account's document was kept from the last catch-up

    other = Projector(memory_app, {"account_view": type(follower.projections["account_view"])(view=counting.view)})
    h.rate_sentiment(memory_app, meta(), stakeholder_id=world.person, sentiment=-1)
    other.catch_up()  # another writer moves the view on
    h.change_deal_probability(memory_app, meta(), deal_id=world.deal, probability=70)
    follower.catch_up()
    assert counting.reads > 0

    rebuilt = Projector.in_memory(memory_app, ["account_view"])
    rebuilt.catch_up()
    assert dump_views(follower) == dump_views(rebuilt)

"""Catch-up commits a view's changes per batch, with the batch's last position:
a failure part-way through a batch stores none of it, and nothing is applied twice."""

from __future__ import annotations

from typing import Any

import pytest

from projections.audit_trail import AuditTrailProjection
from projections.ports import AuditQuery, ViewChange
from services.app import GamApplication
from services.projector import Projector
from tests.unit.world import build_world


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

"""Catch-up commits a view's changes per batch, with the batch's last position:
a failure part-way through a batch stores none of it, and nothing is applied twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from domain.values import DealStatus
from projections.audit_trail import STATE_PREFIX, AuditTrailProjection
from projections.base import OWNER_PREFIX
from projections.ports import AuditQuery, ViewChange
from services import handlers as h
from services.app import GamApplication
from services.demo import seed_account
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


class CountsQueries:
    """A view's storage that notes each query for documents: the keys read one at a time,
    and how many reads of several there were."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.one_at_a_time: list[str] = []
        self.queries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)

    def document(self, key: str) -> Any:
        self.one_at_a_time.append(key)
        return self.view.document(key)

    def documents(self, keys: Any) -> Any:
        self.queries += 1
        return self.view.documents(keys)


def test_a_catch_up_reads_the_owner_and_state_documents_of_a_batch_in_one_query_per_view(
    memory_app: GamApplication,
) -> None:
    """Read as each event first touched an entity, the owner index and the audit trail's
    state cost a query per entity: the first commands after a follower started waited for
    them (commit-to-view lag). The catch-up reads them ahead, for the whole batch."""
    seeded = seed_account(memory_app, 0)
    first = Projector.in_memory(memory_app)
    first.catch_up()
    restarted = Projector(memory_app, {n: type(p)(view=p.view) for n, p in first.projections.items()})
    counting = {name: CountsQueries(restarted.view(name)) for name in restarted.projections}
    for name, view in counting.items():
        restarted.projections[name]._view = view  # type: ignore[assignment]
    people = [p for p in seeded.stakeholder_ids if memory_app.repository.get(p).left_on is None]
    deals = [d for d in seeded.deal_ids if memory_app.repository.get(d).status == DealStatus.OPEN]
    for person in people:
        h.rate_sentiment(memory_app, meta(), stakeholder_id=person, sentiment=1)
    for deal in deals:
        h.change_deal_probability(memory_app, meta(), deal_id=deal, probability=55)

    assert restarted.catch_up() == 3 * (len(people) + len(deals))
    assert len(people) > 5
    assert len(deals) > 5
    for name, view in counting.items():
        named_ahead = [k for k in view.one_at_a_time if k.startswith((OWNER_PREFIX, STATE_PREFIX))]
        assert named_ahead == [], name
    assert counting["audit_trail"].one_at_a_time == []  # all it reads, read ahead
    assert counting["audit_trail"].queries == 1  # one batch, fewer than READ_AHEAD_KEYS keys

    rebuilt = Projector.in_memory(memory_app)
    rebuilt.catch_up(batch=7)  # small batches: read ahead seven events at a time
    assert dump_views(rebuilt) == dump_views(restarted)


class FailsToStoreOnce:
    """A view's storage whose first write fails, noting the threads that wrote it."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.failed = False
        self.writers: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.view, name)

    def record(self, change: ViewChange, tracking: Any) -> None:
        self.writers.add(threading.current_thread().name)
        if not self.failed:
            self.failed = True
            time.sleep(0.05)  # the other views finish their writes first
            raise RuntimeError("the database went away")
        self.view.record(change, tracking)


def test_views_stored_side_by_side_each_commit_or_fail_alone(memory_app: GamApplication) -> None:
    """With writer threads (PostgreSQL), each view's batch is stored on one of them. A view
    that fails to store is waited for with the others, raised, and caught up next time."""
    build_world(memory_app)
    total = memory_app.recorder.max_notification_id() or 0
    plain = Projector.in_memory(memory_app)
    with ThreadPoolExecutor(3, thread_name_prefix="gam-view-writer") as writers:
        projector = Projector(memory_app, plain.projections, writers)
        failing = FailsToStoreOnce(projector.view("audit_trail"))
        projector.projections["audit_trail"]._view = failing  # type: ignore[assignment]

        with pytest.raises(RuntimeError, match="went away"):
            projector.catch_up()
        assert projector.positions() == {"account_view": total, "audit_trail": 0, "strategy_flow": total}

        assert projector.catch_up() == total  # the audit trail's events, again
    assert projector.positions() == dict.fromkeys(projector.projections, total)
    assert failing.writers
    assert all(name.startswith("gam-view-writer") for name in failing.writers)
    rebuilt = Projector.in_memory(memory_app)
    rebuilt.catch_up()
    assert dump_views(projector) == dump_views(rebuilt)

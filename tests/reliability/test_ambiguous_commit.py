"""A COMMIT whose answer is lost: the database committed, the connection dropped
before saying so, and the recorder's retry collided with the events it had just
stored. That is a success; it used to be answered as a conflict (412, or 409 for a
create), so a client was told its change was refused while it was stored (seen
when PostgreSQL was restarted under load)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.utils import retry

from domain.errors import ConcurrencyConflict
from domain.metadata import EventMetadata
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from tests.reliability.harness import Account, small_account, stored_events


@pytest.fixture
def app(any_settings: Settings) -> Iterator[GamApplication]:
    application = GamApplication(any_settings.eventsourcing_env())
    yield application
    application.close()


def meta() -> EventMetadata:
    return EventMetadata(actor="someone@vendor.example", at=datetime.now(UTC), correlation_id=uuid4())


def answer_lost_once(app: GamApplication) -> Callable[[], int]:
    """The next insert commits and then fails as a dropped connection does; the
    recorder's own retry (as eventsourcing decorates it) then runs the insert again."""
    insert = app.recorder.insert_events
    calls = {"n": 0}

    def once(stored_events: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        result = insert(stored_events, **kwargs)
        if calls["n"] == 1:
            msg = "consuming input failed: server closed the connection unexpectedly"
            raise OperationalError(msg)
        return result

    app.recorder.insert_events = retry((OperationalError,), max_attempts=3, wait=0.01)(once)  # type: ignore[method-assign]
    return lambda: calls["n"]


def test_a_change_committed_with_its_answer_lost_is_a_success_at_its_position(app: GamApplication) -> None:
    account: Account = small_account(app)
    deal = account.deals[0]
    version = app.stored_version(deal) or 0
    attempts = answer_lost_once(app)
    result = h.change_deal_probability(app, meta(), deal_id=deal, probability=35, expected_version=version)
    assert attempts() == 2  # the retry collided with the committed events
    assert result.version == version + 1
    stored = [e for e in stored_events(app) if e.entity_id == deal]
    assert [(e.version, e.position) for e in stored][-1] == (version + 1, result.position)
    assert stored[-1].event.to_probability == 35


def test_a_create_committed_with_its_answer_lost_is_a_success(app: GamApplication) -> None:
    account = small_account(app)
    deal = uuid4()
    answer_lost_once(app)
    result = h.open_deal(
        app, meta(), deal_id=deal, account_id=account.account_id, unit_id=account.hq, title="Lost answer",
        amount=app.load(type(app.repository.get(account.deals[0])), account.deals[0]).amount,
        expected_close=datetime(2099, 6, 30, tzinfo=UTC).date(), owner="owner@vendor.example",
    )  # fmt: skip
    assert (result.entity_id, result.version) == (deal, 1)
    assert result.position == max(e.position for e in stored_events(app))


def test_a_real_conflict_is_still_a_conflict(app: GamApplication) -> None:
    account = small_account(app)
    deal = account.deals[0]
    version = app.stored_version(deal) or 0
    h.change_deal_probability(app, meta(), deal_id=deal, probability=10, expected_version=version)
    # A writer that loaded the deal before that change collides with it in the store.
    stale = app.repository.get(deal, version=version)
    stale.change_probability(probability=90, meta=meta())
    with pytest.raises(ConcurrencyConflict):
        app.commit(stale)
    assert app.repository.get(deal).probability == 10

"""A unit of work handed over (:meth:`Session.hand_over`): the next one decides on copies
of what the first decided, is stored after it, and never before it. The bulk import's
storing of one batch while the next is decided rests on this (tests/integration/test_import.py
runs it on the stores)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.account import GlobalAccount
from domain.commands import AddUnit, CreateAccount
from domain.errors import ConcurrencyConflict
from domain.values import UnitLevel
from infra.read_check import StaleRead
from infra.settings import Settings
from services.bootstrap import Runtime, bootstrap
from services.bus import Session
from services.importer import Line, _Storing
from tests.support import meta


@pytest.fixture
def runtime() -> Runtime:
    return bootstrap(Settings(store="memory"))


def create(account_id: object = None) -> CreateAccount:
    return CreateAccount(
        account_id=account_id or uuid4(), name="Nordwind", industry="Machinery", hq_country="DE",
        reporting_currency="EUR",
    )  # fmt: skip


def add_unit(account: CreateAccount, name: str) -> AddUnit:
    return AddUnit(
        account_id=account.account_id, parent_id=account.hq_unit_id, name=name, level=UnitLevel.REGION, code="NORD"
    )


def test_the_next_unit_of_work_decides_on_copies_of_what_the_first_decided(runtime: Runtime) -> None:
    bus, account = runtime.bus, create()
    first = Session(runtime.app)
    bus.decide(first, account, meta())
    second = first.hand_over()
    second.begin()
    bus.decide(second, add_unit(account, "Nordics"), meta())

    in_first, in_second = first.load(GlobalAccount, account.account_id), second.load(GlobalAccount, account.account_id)
    assert in_first is not in_second
    assert (in_first.version, in_second.version) == (1, 2)
    assert len(in_second.pending_events) == 1  # only its own: the first's are the first's to store
    first.commit()
    second.commit()
    assert runtime.app.load(GlobalAccount, account.account_id).version == 2


def test_a_unit_of_work_is_handed_over_once_and_its_successor_never_stored_before_it(runtime: Runtime) -> None:
    bus, account = runtime.bus, create()
    first = Session(runtime.app)
    bus.decide(first, account, meta())
    second = first.hand_over()
    with pytest.raises(RuntimeError, match="handed over once"):
        first.hand_over()
    bus.decide(second, add_unit(account, "Nordics"), meta())
    with pytest.raises(RuntimeError, match="was not stored"):
        second.commit()
    assert runtime.app.recorder.max_notification_id() is None  # nothing of either stored


def test_a_batch_whose_reads_stay_stale_try_after_try_is_a_conflict(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided again on fresh state, and again, then refused as the command gate does."""
    account = create()
    line = Line(1, account, None, None)
    tries: list[int] = []

    def stale(session: Session) -> int:
        tries.append(1)
        raise StaleRead(account.account_id, 1, 2)

    monkeypatch.setattr(Session, "commit", stale)
    storing = _Storing(runtime.bus, lambda batch, position: None, overlapping=False)
    with pytest.raises(ConcurrencyConflict):
        storing.store(Session(runtime.app), [line], meta())
    assert len(tries) == 3

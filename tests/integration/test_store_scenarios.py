"""The same scenarios on SQLite and a real PostgreSQL: whatever one application
object stored, a second one rebuilds exactly, with and without snapshots;
conflicts and multi-aggregate commits behave the same on both."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.account import GlobalAccount
from domain.deal import Deal
from domain.errors import AlreadyExists, ConcurrencyConflict
from domain.plan import AccountPlan, plan_id_for
from domain.stakeholder import Stakeholder
from domain.values import Money
from services import handlers as h
from services.app import GamApplication
from services.demo import FISCAL_PERIOD, seed_account
from tests.conftest import AppFactory
from tests.support import meta


def _all_ids(app: GamApplication) -> list[UUID]:
    notifications = app.recorder.select_notifications(start=1, limit=1_000_000)
    return list(dict.fromkeys(n.originator_id for n in notifications if isinstance(n.originator_id, UUID)))


def test_demo_account_rebuilds_identically_from_the_store(app_factory: AppFactory) -> None:
    writer = app_factory(snapshot_interval=7)
    seeded = seed_account(writer, 0)
    reader_with_snapshots = app_factory(snapshot_interval=7)
    reader_from_events_only = app_factory(snapshot_interval=0)

    ids = _all_ids(writer)
    assert len(ids) == 1 + 1 + 20 + 30  # account, plan, stakeholders, deals
    assert writer.snapshots is not None
    assert list(writer.snapshots.get(seeded.plan_id)), "a long plan stream must have snapshots"
    for entity_id in ids:
        replayed = reader_from_events_only.repository.get(entity_id)
        assert reader_with_snapshots.repository.get(entity_id) == replayed
        assert replayed.version == len(list(reader_from_events_only.events.get(entity_id)))
    plan = reader_from_events_only.load(AccountPlan, seeded.plan_id)
    assert plan.status == "approved"
    assert {d.answer for d in plan.directives.values()} == {"adopted", "adapted", "declined"}


def _account_with_deal(app: GamApplication) -> tuple[UUID, UUID]:
    account_id, hq = uuid4(), uuid4()
    h.onboard_account(
        app, meta(), account_id=account_id, hq_unit_id=hq, name="Acme", industry="Chemicals", hq_country="DE",
        reporting_currency="EUR", tier="tier_1", governance_model="coordinated", fiscal_period=FISCAL_PERIOD,
    )  # fmt: skip
    deal_id = uuid4()
    h.open_deal(
        app, meta(), deal_id=deal_id, account_id=account_id, unit_id=hq, title="Platform",
        amount=Money(Decimal("100000.00"), "EUR"), expected_close=date(2027, 6, 30), owner="bob",
    )  # fmt: skip
    return account_id, deal_id


def test_second_writer_with_a_stale_aggregate_gets_a_conflict_and_stores_nothing(app_factory: AppFactory) -> None:
    first, second = app_factory(), app_factory()
    _, deal_id = _account_with_deal(first)
    mine, theirs = first.load(Deal, deal_id), second.load(Deal, deal_id)
    mine.move_stage(to_stage="qualification", meta=meta())
    theirs.change_amount(amount=Money(Decimal(5), "EUR"), meta=meta())
    first.commit(mine)
    before = first.recorder.max_notification_id()

    with pytest.raises(ConcurrencyConflict) as conflict:
        second.commit(theirs)

    assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)
    assert first.recorder.max_notification_id() == before
    assert app_factory().load(Deal, deal_id).amount == Money(Decimal("100000.00"), "EUR")


def test_racing_clients_on_one_version_exactly_one_wins(app_factory: AppFactory) -> None:
    _, deal_id = _account_with_deal(app_factory())
    clients = [app_factory() for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(clients))

    def client(app: GamApplication, n: int) -> None:
        barrier.wait()
        try:
            h.change_deal_probability(
                app, meta(actor=f"client-{n}"), deal_id=deal_id, probability=n, expected_version=1
            )
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=client, args=(app, n)) for n, app in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["conflict"] * 3 + ["won"]
    deal = app_factory().load(Deal, deal_id)
    assert deal.version == 2
    winner = next(iter(app_factory().events.get(deal_id, gt=1)))
    assert deal.probability == int(winner.actor.removeprefix("client-"))


def test_onboarding_is_atomic_across_account_and_plan(app_factory: AppFactory) -> None:
    app = app_factory()
    account_id = uuid4()
    taken = uuid4()
    h.onboard_account(
        app, meta(), account_id=taken, hq_unit_id=uuid4(), name="First", industry="x", hq_country="FR",
        reporting_currency="EUR", tier="tier_2", governance_model="separate", fiscal_period="FY2027",
    )  # fmt: skip
    # Plant a plan under the id the new account's plan will get, so the second insert fails.
    clash = AccountPlan.start(account_id=account_id, fiscal_period="FY2027", meta=meta())
    app.save(clash)
    before = app.recorder.max_notification_id()

    with pytest.raises(AlreadyExists):
        h.onboard_account(
            app, meta(), account_id=account_id, hq_unit_id=uuid4(), name="Second", industry="x", hq_country="FR",
            reporting_currency="EUR", tier="tier_2", governance_model="separate", fiscal_period="FY2027",
        )  # fmt: skip

    assert app.recorder.max_notification_id() == before
    assert not app_factory().exists(account_id)
    assert app_factory().load(AccountPlan, plan_id_for(account_id, "FY2027")).version == 1


def test_long_streams_are_snapshotted_and_load_the_same(app_factory: AppFactory) -> None:
    writer = app_factory(snapshot_interval=50)
    _, deal_id = _account_with_deal(writer)
    for n in range(120):
        h.change_deal_probability(writer, meta(), deal_id=deal_id, probability=n % 101)
    assert writer.snapshots is not None
    snapshot_versions = [s.originator_version for s in writer.snapshots.get(deal_id)]
    assert snapshot_versions == [50, 100]

    with_snapshots = app_factory(snapshot_interval=50).load(Deal, deal_id)
    from_events = app_factory(snapshot_interval=0).load(Deal, deal_id)
    assert with_snapshots == from_events
    assert from_events.version == 121
    assert from_events.probability == 119 % 101


def test_every_aggregate_kind_reloads_with_unicode_and_large_decimals(app_factory: AppFactory) -> None:
    app = app_factory()
    account_id, deal_id = _account_with_deal(app)
    account = app.load(GlobalAccount, account_id)
    hq = account.tree().hq().unit_id
    person = uuid4()
    from domain.values import PersonalData

    h.identify_stakeholder(
        app, meta(), stakeholder_id=person, account_id=account_id, unit_id=hq, title="Directrice générale 🚀",
        personal=PersonalData("Zoë Łukasiewicz-محمد", "zoe@example.com", "+33 1 23 45 67 89"),
    )  # fmt: skip
    big = Money(Decimal("1234567890123456789012345678901234567.89"), "EUR")
    h.change_deal_amount(app, meta(reason="Ünïcödé reason"), deal_id=deal_id, amount=big)

    other = app_factory()
    assert other.load(Stakeholder, person) == app.load(Stakeholder, person)
    reloaded = other.load(Deal, deal_id)
    assert str(reloaded.amount.amount) == "1234567890123456789012345678901234567.89"
    assert list(other.events.get(deal_id))[-1].reason == "Ünïcödé reason"


def test_a_cached_aggregate_still_sees_what_another_process_wrote(app_factory: AppFactory) -> None:
    reader, writer = app_factory(), app_factory()
    _, deal_id = _account_with_deal(writer)
    assert reader.load(Deal, deal_id).version == 1  # now in reader's cache
    h.change_deal_probability(writer, meta(), deal_id=deal_id, probability=42)
    seen = reader.load(Deal, deal_id)
    assert (seen.version, seen.probability) == (2, 42)


def test_deciding_on_a_loaded_aggregate_leaves_the_cached_copy_untouched(app_factory: AppFactory) -> None:
    app = app_factory()
    _, deal_id = _account_with_deal(app)
    decided = app.load(Deal, deal_id)
    decided.move_stage(to_stage="qualification", meta=meta())
    decided.attach_buying_influence(
        stakeholder_id=uuid4(), stakeholder_account_id=decided.account_id, role="coach", degree="low", meta=meta()
    )
    again = app.load(Deal, deal_id)  # nothing committed
    assert (again.version, again.stage, again.influences) == (1, "prospecting", {})

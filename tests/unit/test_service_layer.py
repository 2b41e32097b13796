"""The application service: expected versions and concurrent writers, NotFound,
atomic multi-aggregate commits, and the positions commands hand back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import errors
from domain.account import GlobalAccount
from domain.deal import Deal
from domain.plan import AccountPlan, plan_id_for
from domain.stakeholder import Stakeholder
from domain.values import PersonalData
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from tests.support import meta
from tests.unit.builders import PERIOD, Org, build_org, refused, stored

AppFactory = Callable[[], GamApplication]


@pytest.fixture
def sqlite_apps(tmp_path: Path) -> Iterator[AppFactory]:
    """Application objects on one SQLite file, as two processes would have."""
    settings = Settings(store="sqlite", sqlite_path=tmp_path / "gam.db")
    apps: list[GamApplication] = []

    def make() -> GamApplication:
        app = GamApplication(settings.eventsourcing_env())
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture(params=["memory", "sqlite"])
def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GamApplication]:
    settings = Settings(store=request.param, sqlite_path=tmp_path / "gam.db")
    app = GamApplication(settings.eventsourcing_env())
    yield app
    app.close()


def account_kwargs(account_id: UUID) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "hq_unit_id": uuid4(),
        "name": "Acme",
        "industry": "Chemicals",
        "hq_country": "DE",
        "reporting_currency": "EUR",
        "tier": "tier_1",
        "governance_model": "coordinated",
    }


def region_kwargs(account_id: UUID, parent: UUID, code: str = "EMEA") -> dict[str, Any]:
    return {
        "account_id": account_id,
        "unit_id": uuid4(),
        "name": code,
        "level": "region",
        "parent_id": parent,
        "code": code,
    }


# --- expected versions --------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-1, -5, 1, 10])
def test_a_stale_expected_version_is_a_conflict_with_both_versions(memory_app: GamApplication, offset: int) -> None:
    org = build_org(memory_app)
    actual = memory_app.load(GlobalAccount, org.account).version
    expected = max(actual + offset, 1)
    error = refused(
        memory_app,
        errors.ConcurrencyConflict,
        h.add_unit,
        **region_kwargs(org.account, org.hq),
        expected_version=expected,
    )
    assert (error.entity_id, error.expected_version, error.actual_version) == (org.account, expected, actual)
    assert error.rule == "concurrency_conflict"
    assert memory_app.load(GlobalAccount, org.account).version == actual


def test_the_current_expected_version_is_accepted(memory_app: GamApplication) -> None:
    org = build_org(memory_app)
    version = memory_app.load(GlobalAccount, org.account).version
    result = h.add_unit(memory_app, meta(), **region_kwargs(org.account, org.hq), expected_version=version)
    assert result.version == version + 1


def test_a_stale_expected_version_is_checked_on_every_kind_of_entity(memory_app: GamApplication) -> None:
    org = build_org(memory_app)
    person, deal_id = org.stakeholder(), org.deal()
    org.objective()
    h.rate_sentiment(memory_app, meta(), stakeholder_id=person, sentiment=1)
    h.change_deal_probability(memory_app, meta(), deal_id=deal_id, probability=15)
    checks = [
        (h.rate_influence, {"stakeholder_id": person, "influence": 3}, person),
        (h.change_deal_probability, {"deal_id": deal_id, "probability": 30}, deal_id),
        (h.add_swot_entry, {"plan_id": org.plan, "entry_id": uuid4(), "kind": "threat", "text": "X"}, org.plan),
    ]
    for handler, kwargs, entity in checks:
        actual = memory_app.stored_version(entity)
        assert actual is not None
        assert actual > 1
        error = refused(memory_app, errors.ConcurrencyConflict, handler, **kwargs, expected_version=actual - 1)
        assert (error.entity_id, error.expected_version, error.actual_version) == (entity, actual - 1, actual)


# --- two writers on one store ---------------------------------------------------------------------


def test_the_second_of_two_concurrent_writers_gets_a_conflict_and_stores_nothing(sqlite_apps: AppFactory) -> None:
    first, second = sqlite_apps(), sqlite_apps()
    account_id = uuid4()
    created = account_kwargs(account_id)
    h.create_account(first, meta(), **created)
    hq = created["hq_unit_id"]

    mine = first.load(GlobalAccount, account_id)
    theirs = second.load(GlobalAccount, account_id)
    assert mine.version == theirs.version == 1
    emea, apac = uuid4(), uuid4()
    mine.add_unit(unit_id=emea, name="EMEA", level="region", parent_id=hq, code="EMEA", meta=meta())
    theirs.add_unit(unit_id=apac, name="APAC", level="region", parent_id=hq, code="APAC", meta=meta())

    result = first.commit(mine)
    assert result.version == 2
    before = stored(second)
    assert before == result.position
    with pytest.raises(errors.ConcurrencyConflict) as raised:
        second.commit(theirs)
    assert (raised.value.entity_id, raised.value.expected_version, raised.value.actual_version) == (account_id, 1, 2)
    assert stored(second) == stored(first) == before
    for app in (first, second, sqlite_apps()):
        units = app.load(GlobalAccount, account_id).units
        assert emea in units
        assert apac not in units
    assert second.stored_version(account_id) == 2


def test_a_handler_reads_what_another_writer_stored(sqlite_apps: AppFactory) -> None:
    first, second = sqlite_apps(), sqlite_apps()
    account_id = uuid4()
    created = account_kwargs(account_id)
    h.create_account(first, meta(), **created)
    second.load(GlobalAccount, account_id)  # now cached in the second application
    h.add_unit(first, meta(), **region_kwargs(account_id, created["hq_unit_id"], "EMEA"))
    result = h.add_unit(second, meta(), **region_kwargs(account_id, created["hq_unit_id"], "APAC"))
    assert result.version == 3
    assert {u.code for u in first.load(GlobalAccount, account_id).units.values()} == {"DE", "EMEA", "APAC"}


def test_a_conflict_on_one_aggregate_stores_none_of_the_others(sqlite_apps: AppFactory) -> None:
    first, second = sqlite_apps(), sqlite_apps()
    account_id = uuid4()
    created = account_kwargs(account_id)
    h.create_account(first, meta(), **created)
    stale = second.load(GlobalAccount, account_id)
    h.add_unit(first, meta(), **region_kwargs(account_id, created["hq_unit_id"]))
    stale.assign_team_member(member="bob", unit_id=created["hq_unit_id"], role="gam", meta=meta())
    plan = AccountPlan.start(account_id=account_id, fiscal_period=PERIOD, meta=meta())
    before = stored(second)
    with pytest.raises(errors.ConcurrencyConflict) as raised:
        second.commit(plan, stale)
    assert (raised.value.entity_id, raised.value.expected_version, raised.value.actual_version) == (account_id, 1, 2)
    assert stored(second) == before
    assert not second.exists(plan.id)
    assert "bob" not in {member for member, _, _ in first.load(GlobalAccount, account_id).team}


# --- NotFound -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [GlobalAccount, AccountPlan, Stakeholder, Deal])
def test_loading_an_unknown_id_is_not_found(memory_app: GamApplication, kind: type[Any]) -> None:
    missing = uuid4()
    with pytest.raises(errors.NotFound) as raised:
        memory_app.load(kind, missing)
    assert (raised.value.kind, raised.value.entity_id, raised.value.rule) == (kind.entity_type, missing, "not_found")


LOOKUPS: list[tuple[Callable[..., Any], str, Callable[[Org, UUID], dict[str, Any]]]] = [
    (h.add_unit, "account", lambda o, i: region_kwargs(i, o.hq)),
    (h.archive_account, "account", lambda o, i: {"account_id": i}),
    (h.start_plan, "account", lambda o, i: {"account_id": i, "fiscal_period": "FY2030"}),
    (
        h.identify_stakeholder,
        "account",
        lambda o, i: {
            "stakeholder_id": uuid4(),
            "account_id": i,
            "unit_id": o.hq,
            "title": "CFO",
            "personal": PersonalData("Ada"),
        },
    ),
    (h.submit_plan, "plan", lambda o, i: {"plan_id": i}),
    (h.rate_influence, "stakeholder", lambda o, i: {"stakeholder_id": i, "influence": 2}),
    (h.reopen_deal, "deal", lambda o, i: {"deal_id": i}),
]


@pytest.mark.parametrize(
    ("handler", "kind", "kwargs", "which"),
    [
        pytest.param(handler, kind, kwargs, which, id=f"{handler.__name__}-{which}")
        for handler, kind, kwargs in LOOKUPS
        for which in ("unknown", "account", "plan", "stakeholder", "deal")
        if which != kind
    ],
)
def test_handlers_refuse_unknown_ids_and_ids_of_another_kind(
    memory_app: GamApplication,
    handler: Callable[..., Any],
    kind: str,
    kwargs: Callable[[Org, UUID], dict[str, Any]],
    which: str,
) -> None:
    org = build_org(memory_app)
    ids = {
        "unknown": uuid4(),
        "account": org.account,
        "plan": org.plan,
        "stakeholder": org.stakeholder(),
        "deal": org.deal(),
    }
    error = refused(memory_app, errors.NotFound, handler, **kwargs(org, ids[which]))
    assert (error.kind, error.entity_id) == (kind, ids[which])


def test_loading_an_id_of_another_kind_is_not_found(memory_app: GamApplication) -> None:
    org = build_org(memory_app)
    with pytest.raises(errors.NotFound) as raised:
        memory_app.load(AccountPlan, org.account)
    assert (raised.value.kind, raised.value.entity_id) == ("plan", org.account)
    with pytest.raises(errors.NotFound) as raised:
        memory_app.load(GlobalAccount, org.plan)
    assert raised.value.kind == "account"
    assert isinstance(memory_app.load(GlobalAccount, org.account), GlobalAccount)


# --- onboarding is atomic ---------------------------------------------------------------------------


def test_onboarding_stores_neither_when_the_plan_already_exists(any_app: GamApplication) -> None:
    account_id = uuid4()
    # A plan stored under this account's plan id (an earlier, half-finished attempt, say).
    any_app.commit(AccountPlan.start(account_id=account_id, fiscal_period=PERIOD, meta=meta()))
    before = stored(any_app)
    error = refused(
        any_app, errors.AlreadyExists, h.onboard_account, **account_kwargs(account_id), fiscal_period=PERIOD
    )
    assert (error.kind, error.entity_id) == ("plan", plan_id_for(account_id, PERIOD))
    assert stored(any_app) == before
    assert not any_app.exists(account_id)
    with pytest.raises(errors.NotFound):
        any_app.load(GlobalAccount, account_id)


def test_onboarding_stores_neither_when_the_account_already_exists(any_app: GamApplication) -> None:
    account_id = uuid4()
    h.create_account(any_app, meta(), **account_kwargs(account_id))
    error = refused(
        any_app, errors.AlreadyExists, h.onboard_account, **account_kwargs(account_id), fiscal_period=PERIOD
    )
    assert (error.kind, error.entity_id) == ("account", account_id)
    assert not any_app.exists(plan_id_for(account_id, PERIOD))
    assert any_app.stored_version(account_id) == 1


def test_onboarding_with_an_invalid_period_stores_nothing(memory_app: GamApplication) -> None:
    account_id = uuid4()
    error = refused(
        memory_app, errors.InvalidValue, h.onboard_account, **account_kwargs(account_id), fiscal_period="2027"
    )
    assert error.field == "fiscal_period"
    assert not memory_app.exists(account_id)


def test_onboarding_stores_both(any_app: GamApplication) -> None:
    account_id = uuid4()
    result = h.onboard_account(any_app, meta(), **account_kwargs(account_id), fiscal_period=PERIOD)
    assert (result.entity_id, result.version, result.position) == (account_id, 1, 2)
    assert any_app.load(AccountPlan, plan_id_for(account_id, PERIOD)).account_id == account_id


# --- positions ------------------------------------------------------------------------------------


def test_command_positions_increase_with_every_command(any_app: GamApplication) -> None:
    account_id = uuid4()
    created = account_kwargs(account_id)
    results = [h.onboard_account(any_app, meta(), **created, fiscal_period=PERIOD)]
    for code in ("EMEA", "APAC", "AMER"):
        results.append(h.add_unit(any_app, meta(), **region_kwargs(account_id, created["hq_unit_id"], code)))
        assert results[-1].position == stored(any_app)
    person = uuid4()
    results.append(
        h.identify_stakeholder(
            any_app,
            meta(),
            stakeholder_id=person,
            account_id=account_id,
            unit_id=created["hq_unit_id"],
            title="CFO",
            personal=PersonalData("Ada"),
        )
    )
    results.append(h.rate_influence(any_app, meta(), stakeholder_id=person, influence=4))
    positions = [r.position for r in results]
    assert positions == sorted(set(positions))
    assert positions == [2, 3, 4, 5, 6, 7]
    assert [r.version for r in results] == [1, 2, 3, 4, 1, 2]
    assert [r.entity_id for r in results[-2:]] == [person, person]


def test_a_refused_command_does_not_use_up_a_position(memory_app: GamApplication) -> None:
    org = build_org(memory_app)
    first = h.rate_influence(memory_app, meta(), stakeholder_id=(person := org.stakeholder()), influence=2)
    refused(memory_app, errors.InvalidValue, h.rate_influence, stakeholder_id=person, influence=9)
    second = h.rate_influence(memory_app, meta(), stakeholder_id=person, influence=3)
    assert second.position == first.position + 1
    assert second.version == first.version + 1
    assert memory_app.load(Stakeholder, person).influence == 3


def test_the_cache_refresh_tolerates_a_commit_landing_between_its_query_and_its_lock(
    sqlite_apps: AppFactory,
) -> None:
    """Found by the API bench: with threads, a commit of ours can move the cache's
    position past the last position a refresh read a moment before."""
    app = sqlite_apps()
    account_id = uuid4()
    h.create_account(app, meta(), **account_kwargs(account_id))
    app.refresh_cache()
    position = app._cache_position
    assert position == app.recorder.max_notification_id()
    app._cache_position = position + 3  # as if commits of ours had landed meanwhile
    app.refresh_cache()
    assert app._cache_position == position + 3
    assert app.load(GlobalAccount, account_id, fresh=True).version == 1

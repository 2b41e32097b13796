"""GlobalAccount rules: the unit tree, codes, closed units, the team, archiving."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

import pytest

from domain import errors
from domain.account import GlobalAccount
from domain.values import Money, PersonalData, Target
from services import handlers as h
from services.app import GamApplication
from tests.support import meta
from tests.unit.world import World, build_world


@pytest.fixture
def w(memory_app: GamApplication) -> World:
    return build_world(memory_app)


@pytest.mark.parametrize(
    ("level", "parent", "code", "error"),
    [
        ("country", "hq", "FR", errors.InvalidUnitHierarchy),  # skips the region level
        ("local", "emea", "FR", errors.InvalidUnitHierarchy),
        ("region", "france", "EMEA", errors.InvalidUnitHierarchy),
        ("hq", "hq", "DE", errors.InvalidUnitHierarchy),
        ("planet", "hq", "XX", errors.InvalidValue),
        ("country", "emea", "XX", errors.InvalidValue),  # not an ISO 3166 code
        ("local", "france", "DE", errors.InvalidValue),  # a local unit lies in its country
        ("region", "hq", "EM EA!", errors.InvalidValue),
    ],
)
def test_units_form_the_four_level_tree_with_valid_codes(
    w: World, level: str, parent: str, code: str, error: type
) -> None:
    w.assert_refused(
        error,
        h.add_unit,
        account_id=w.account,
        unit_id=uuid4(),
        name="X",
        level=level,
        parent_id=getattr(w, parent),
        code=code,
    )


def test_unit_ids_are_unique_and_parents_must_exist(w: World) -> None:
    w.assert_refused(
        errors.AlreadyExists,
        h.add_unit,
        account_id=w.account,
        unit_id=w.paris,
        name="Again",
        level="local",
        parent_id=w.france,
        code="FR",
    )
    w.assert_refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=w.account,
        unit_id=uuid4(),
        name="Orphan",
        level="region",
        parent_id=uuid4(),
        code="EMEA",
    )


def test_closing_needs_closed_children_and_never_hits_hq(w: World) -> None:
    w.assert_refused(errors.UnitHasOpenChildren, h.close_unit, account_id=w.account, unit_id=w.france)
    w.assert_refused(errors.InvalidUnitHierarchy, h.close_unit, account_id=w.account, unit_id=w.hq)
    h.close_unit(w.app, meta(), account_id=w.account, unit_id=w.paris)
    h.close_unit(w.app, meta(), account_id=w.account, unit_id=w.france)
    assert w.app.load(GlobalAccount, w.account).units[w.france].closed


def test_a_closed_unit_takes_nothing_new(w: World) -> None:
    h.close_unit(w.app, meta(), account_id=w.account, unit_id=w.paris)
    w.assert_refused(
        errors.UnitClosed,
        h.add_unit,
        account_id=w.account,
        unit_id=uuid4(),
        name="X",
        level="local",
        parent_id=w.paris,
        code="FR",
    )
    w.assert_refused(errors.UnitClosed, h.rename_unit, account_id=w.account, unit_id=w.paris, name="Y")
    w.assert_refused(errors.UnitClosed, h.close_unit, account_id=w.account, unit_id=w.paris)
    w.assert_refused(
        errors.UnitClosed, h.assign_team_member, account_id=w.account, member="a", unit_id=w.paris, role="gam"
    )
    w.assert_refused(
        errors.UnitClosed,
        h.open_deal,
        deal_id=uuid4(),
        account_id=w.account,
        unit_id=w.paris,
        title="D",
        amount=Money(Decimal(1), "EUR"),
        expected_close=date(2027, 1, 1),
        owner="bob",
    )
    w.assert_refused(
        errors.UnitClosed,
        h.identify_stakeholder,
        stakeholder_id=uuid4(),
        account_id=w.account,
        unit_id=w.paris,
        title="CEO",
        personal=PersonalData("X"),
    )
    w.assert_refused(
        errors.UnitClosed,
        h.set_objective,
        plan_id=w.plan,
        objective_id=uuid4(),
        unit_id=w.paris,
        title="O",
        description="",
        target=Target("n", Decimal(1)),
        due_date=date(2027, 1, 1),
    )


def test_team_assignments_are_unique_and_removal_needs_one(w: World) -> None:
    h.assign_team_member(w.app, meta(), account_id=w.account, member="ann", unit_id=w.emea, role="regional_am")
    w.assert_refused(
        errors.AlreadyExists,
        h.assign_team_member,
        account_id=w.account,
        member="ann",
        unit_id=w.emea,
        role="regional_am",
    )
    w.assert_refused(
        errors.InvalidValue, h.assign_team_member, account_id=w.account, member="ann", unit_id=w.emea, role="boss"
    )
    w.assert_refused(
        errors.NotFound, h.remove_team_member, account_id=w.account, member="bob", unit_id=w.emea, role="gam"
    )
    h.remove_team_member(w.app, meta(), account_id=w.account, member="ann", unit_id=w.emea, role="regional_am")
    assert w.app.load(GlobalAccount, w.account).team == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hq_country", "ZZ"),
        ("reporting_currency", "EURO"),
        ("tier", "gold"),
        ("governance_model", "anarchy"),
        ("name", "  "),
    ],
)
def test_account_creation_validates_its_facts(w: World, field: str, value: str) -> None:
    facts = {
        "name": "New",
        "industry": "x",
        "hq_country": "FR",
        "reporting_currency": "EUR",
        "tier": "tier_2",
        "governance_model": "separate",
        field: value,
    }
    error = w.assert_refused(errors.InvalidValue, h.create_account, account_id=uuid4(), hq_unit_id=uuid4(), **facts)
    assert error.field == field  # type: ignore[attr-defined]


def test_an_archived_account_refuses_every_change(w: World) -> None:
    h.archive_account(w.app, meta(), account_id=w.account)
    account_commands = [
        (
            h.add_unit,
            {
                "account_id": w.account,
                "unit_id": uuid4(),
                "name": "X",
                "level": "region",
                "parent_id": w.hq,
                "code": "X",
            },
        ),
        (h.rename_unit, {"account_id": w.account, "unit_id": w.emea, "name": "Y"}),
        (h.assign_team_member, {"account_id": w.account, "member": "z", "unit_id": w.hq, "role": "gam"}),
        (h.archive_account, {"account_id": w.account}),
        (h.set_whitespace_cell, {"plan_id": w.plan, "offering": "o", "unit_id": w.hq, "status": "in_use"}),
        (h.report_progress, {"plan_id": w.plan, "objective_id": w.objective, "unit_id": w.hq, "percent": 5}),
        (h.submit_plan, {"plan_id": w.plan}),
        (h.rate_influence, {"stakeholder_id": w.person, "influence": 3}),
        (h.move_deal_stage, {"deal_id": w.deal, "to_stage": "qualification"}),
        (h.start_plan, {"account_id": w.account, "fiscal_period": "FY2028"}),
    ]
    for handler, kwargs in account_commands:
        w.assert_refused(errors.AccountArchived, handler, **kwargs)


def test_unknown_accounts_are_not_found(w: World) -> None:
    w.assert_refused(errors.NotFound, h.rename_unit, account_id=uuid4(), unit_id=w.hq, name="X")
    w.assert_refused(
        errors.NotFound, h.rename_unit, account_id=w.deal, unit_id=w.hq, name="X"
    )  # a deal's id, not an account's

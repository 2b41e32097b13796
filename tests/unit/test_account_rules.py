"""GlobalAccount rules: the unit hierarchy and its codes, closed units, the team,
and archived accounts (read-only, also for plans, stakeholders and deals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import errors
from domain.account import GlobalAccount
from domain.plan import plan_id_for
from domain.values import Money, PersonalData, Target
from services import handlers as h
from services.app import GamApplication
from tests.support import EPOCH, meta
from tests.unit.builders import DUE, Org, build_org, refused, stored


@pytest.fixture
def org(memory_app: GamApplication) -> Org:
    return build_org(memory_app)


def account(org: Org) -> GlobalAccount:
    return org.app.load(GlobalAccount, org.account)


def add_unit(org: Org, parent: UUID, level: str, code: str, unit_id: UUID | None = None) -> UUID:
    unit_id = unit_id or uuid4()
    h.add_unit(
        org.app,
        meta(),
        account_id=org.account,
        unit_id=unit_id,
        name="New unit",
        level=level,
        parent_id=parent,
        code=code,
    )
    return unit_id


# --- creating an account ---------------------------------------------------------------

CREATE = {
    "name": "Acme",
    "industry": "Chemicals",
    "hq_country": "DE",
    "reporting_currency": "EUR",
    "tier": "tier_2",
    "governance_model": "central_control",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tier", "tier_4"),
        ("tier", "TIER_1"),
        ("tier", ""),
        ("governance_model", "federated"),
        ("governance_model", "Coordinated"),
        ("hq_country", "de"),
        ("hq_country", "DEU"),
        ("hq_country", "XX"),
        ("hq_country", ""),
        ("reporting_currency", "eur"),
        ("reporting_currency", "EURO"),
        ("reporting_currency", "XYZ"),
        ("reporting_currency", ""),
        ("name", "   "),
        ("industry", ""),
        ("name", "x" * 301),
        ("hq_unit_name", " "),
    ],
)
def test_create_account_refuses_invalid_enums_and_codes(memory_app: GamApplication, field: str, value: str) -> None:
    account_id = uuid4()
    error = refused(
        memory_app,
        errors.InvalidValue,
        h.create_account,
        account_id=account_id,
        hq_unit_id=uuid4(),
        **{**CREATE, field: value},
    )
    assert error.field == field
    assert error.rule == "invalid_value"
    assert not memory_app.exists(account_id)


def test_create_account_accepts_valid_values(memory_app: GamApplication) -> None:
    account_id, hq = uuid4(), uuid4()
    h.create_account(memory_app, meta(), account_id=account_id, hq_unit_id=hq, **CREATE)
    created = memory_app.load(GlobalAccount, account_id)
    assert (created.tier, created.governance_model, created.hq_country) == ("tier_2", "central_control", "DE")
    assert created.units[hq].level == "hq"
    assert created.units[hq].code == "DE"


def test_the_same_account_cannot_be_created_twice(memory_app: GamApplication) -> None:
    account_id = uuid4()
    h.create_account(memory_app, meta(), account_id=account_id, hq_unit_id=uuid4(), **CREATE)
    error = refused(
        memory_app, errors.AlreadyExists, h.create_account, account_id=account_id, hq_unit_id=uuid4(), **CREATE
    )
    assert error.kind == "account"
    assert error.entity_id == account_id


# --- the unit hierarchy ------------------------------------------------------------------

CODE_FOR_LEVEL = {"hq": "DE", "region": "NEW", "country": "FR", "local": "FR"}
LEGAL = {("hq", "region"), ("emea", "country"), ("france", "local")}


@pytest.mark.parametrize("parent", ["hq", "emea", "france", "paris"])
@pytest.mark.parametrize("level", ["hq", "region", "country", "local"])
def test_units_sit_exactly_one_level_below_their_parent(org: Org, parent: str, level: str) -> None:
    parent_id = getattr(org, parent)
    unit_id = uuid4()
    kwargs = {
        "account_id": org.account,
        "unit_id": unit_id,
        "name": "New unit",
        "level": level,
        "parent_id": parent_id,
        "code": CODE_FOR_LEVEL[level],
    }
    if (parent, level) in LEGAL:
        h.add_unit(org.app, meta(), **kwargs)
        unit = account(org).units[unit_id]
        assert (unit.level, unit.parent_id) == (level, parent_id)
    else:
        error = org.refused(errors.InvalidUnitHierarchy, h.add_unit, **kwargs)
        assert error.rule == "invalid_unit_hierarchy"
        assert unit_id not in account(org).units


@pytest.mark.parametrize("level", ["site", "HQ", "Region", "", "department"])
def test_unit_level_must_be_one_of_the_four(org: Org, level: str) -> None:
    error = org.refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="X",
        level=level,
        parent_id=org.hq,
        code="NEW",
    )
    assert error.field == "level"


def test_region_codes_are_normalised_to_upper_case(org: Org) -> None:
    unit_id = add_unit(org, org.hq, "region", " latam-n ")
    assert account(org).units[unit_id].code == "LATAM-N"


@pytest.mark.parametrize("code", ["", "   ", "E M", "EMEA!", "ÉMEA/", "---", "ABCDEFGHIJKLM"])
def test_region_codes_are_letters_and_digits(org: Org, code: str) -> None:
    error = org.refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="Region",
        level="region",
        parent_id=org.hq,
        code=code,
    )
    assert error.field == "code"


@pytest.mark.parametrize("code", ["fr", "FRA", "XX", "", "EU", "F"])
def test_country_units_carry_an_iso_country_code(org: Org, code: str) -> None:
    error = org.refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="Country",
        level="country",
        parent_id=org.emea,
        code=code,
    )
    assert error.field == "code"


def test_a_country_unit_with_a_valid_code_is_accepted(org: Org) -> None:
    unit_id = add_unit(org, org.emea, "country", "IT")
    assert account(org).units[unit_id].code == "IT"


@pytest.mark.parametrize("code", ["DE", "US", "fr", "XX"])
def test_local_units_lie_in_their_country(org: Org, code: str) -> None:
    error = org.refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="Marseille",
        level="local",
        parent_id=org.france,
        code=code,
    )
    assert error.field == "code"


def test_unknown_parent_is_refused(org: Org) -> None:
    error = org.refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="Orphan",
        level="region",
        parent_id=uuid4(),
        code="NEW",
    )
    assert error.field == "parent_id"


def test_a_unit_of_another_account_is_not_a_parent(org: Org) -> None:
    other = build_org(org.app, name="Other")
    error = org.refused(
        errors.InvalidValue,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="Elsewhere",
        level="country",
        parent_id=other.emea,
        code="FR",
    )
    assert error.field == "parent_id"


@pytest.mark.parametrize("existing", ["hq", "emea", "paris"])
def test_a_unit_id_is_added_once(org: Org, existing: str) -> None:
    unit_id = getattr(org, existing)
    error = org.refused(
        errors.AlreadyExists,
        h.add_unit,
        account_id=org.account,
        unit_id=unit_id,
        name="Again",
        level="local",
        parent_id=org.france,
        code="FR",
    )
    assert (error.kind, error.entity_id) == ("unit", unit_id)


# --- closing units -------------------------------------------------------------------------


def close(org: Org, unit: UUID) -> None:
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=unit)


def test_the_hq_unit_cannot_be_closed(org: Org) -> None:
    for unit in (org.houston, org.us, org.amer, org.paris, org.lyon, org.france, org.emea):
        close(org, unit)
    org.refused(errors.InvalidUnitHierarchy, h.close_unit, account_id=org.account, unit_id=org.hq)
    assert not account(org).units[org.hq].closed


def test_a_unit_closes_only_when_every_unit_below_is_closed(org: Org) -> None:
    org.refused(errors.UnitHasOpenChildren, h.close_unit, account_id=org.account, unit_id=org.france)
    org.refused(errors.UnitHasOpenChildren, h.close_unit, account_id=org.account, unit_id=org.emea)
    close(org, org.paris)
    error = org.refused(errors.UnitHasOpenChildren, h.close_unit, account_id=org.account, unit_id=org.france)
    assert error.rule == "unit_has_open_children"
    close(org, org.lyon)
    close(org, org.france)
    close(org, org.emea)
    units = account(org).units
    assert all(units[u].closed for u in (org.paris, org.lyon, org.france, org.emea))
    assert not units[org.hq].closed


def test_closing_an_unknown_unit_is_not_found(org: Org) -> None:
    missing = uuid4()
    error = org.refused(errors.NotFound, h.close_unit, account_id=org.account, unit_id=missing)
    assert (error.kind, error.entity_id) == ("unit", missing)
    org.refused(errors.NotFound, h.rename_unit, account_id=org.account, unit_id=missing, name="X")


def test_a_closed_unit_takes_no_changes_and_no_new_units(org: Org) -> None:
    close(org, org.houston)
    close(org, org.us)
    org.refused(errors.UnitClosed, h.close_unit, account_id=org.account, unit_id=org.us)
    org.refused(errors.UnitClosed, h.rename_unit, account_id=org.account, unit_id=org.us, name="USA")
    error = org.refused(
        errors.UnitClosed,
        h.add_unit,
        account_id=org.account,
        unit_id=uuid4(),
        name="Dallas",
        level="local",
        parent_id=org.us,
        code="US",
    )
    assert error.rule == "unit_closed"
    org.refused(
        errors.UnitClosed, h.assign_team_member, account_id=org.account, member="lam", unit_id=org.us, role="local_am"
    )
    assert account(org).units[org.us].name == "Us"


def test_rename_refuses_a_blank_name(org: Org) -> None:
    org.refused(errors.InvalidValue, h.rename_unit, account_id=org.account, unit_id=org.paris, name="  ")
    h.rename_unit(org.app, meta(), account_id=org.account, unit_id=org.paris, name="Paris La Défense")
    assert account(org).units[org.paris].name == "Paris La Défense"


# --- the team ---------------------------------------------------------------------------------


def assign(org: Org, member: str, unit: UUID, role: str) -> None:
    h.assign_team_member(org.app, meta(), account_id=org.account, member=member, unit_id=unit, role=role)


def test_a_member_is_assigned_once_per_unit_and_role(org: Org) -> None:
    assign(org, "bob@vendor.example", org.paris, "local_am")
    error = org.refused(
        errors.AlreadyExists,
        h.assign_team_member,
        account_id=org.account,
        member="bob@vendor.example",
        unit_id=org.paris,
        role="local_am",
    )
    assert error.kind == "team assignment"
    # Surrounding blanks do not make a different member.
    org.refused(
        errors.AlreadyExists,
        h.assign_team_member,
        account_id=org.account,
        member="  bob@vendor.example ",
        unit_id=org.paris,
        role="local_am",
    )
    # Another role, or another unit, is a different assignment.
    assign(org, "bob@vendor.example", org.paris, "specialist")
    assign(org, "bob@vendor.example", org.lyon, "local_am")
    assert len(account(org).team) == 4  # and alice, who took the account on, as its lead GAM


@pytest.mark.parametrize(
    ("member", "role", "field"), [("bob", "boss", "role"), ("bob", "", "role"), (" ", "gam", "member")]
)
def test_team_assignment_validates_role_and_member(org: Org, member: str, role: str, field: str) -> None:
    error = org.refused(
        errors.InvalidValue, h.assign_team_member, account_id=org.account, member=member, unit_id=org.hq, role=role
    )
    assert error.field == field


def test_team_assignment_on_an_unknown_unit_is_not_found(org: Org) -> None:
    org.refused(
        errors.NotFound, h.assign_team_member, account_id=org.account, member="bob", unit_id=uuid4(), role="gam"
    )


def test_removing_an_assignment_that_does_not_exist_is_not_found(org: Org) -> None:
    assign(org, "bob", org.paris, "local_am")
    for member, unit, role in (
        ("alice", org.paris, "local_am"),
        ("bob", org.lyon, "local_am"),
        ("bob", org.paris, "gam"),
    ):
        error = org.refused(
            errors.NotFound, h.remove_team_member, account_id=org.account, member=member, unit_id=unit, role=role
        )
        assert error.kind == "team assignment"
    h.remove_team_member(org.app, meta(), account_id=org.account, member="bob", unit_id=org.paris, role="local_am")
    org.refused(
        errors.NotFound, h.remove_team_member, account_id=org.account, member="bob", unit_id=org.paris, role="local_am"
    )
    assert [a.role for a in account(org).team.values()] == ["lead_gam"]


# --- archived accounts -------------------------------------------------------------------------


def archive(org: Org) -> None:
    h.archive_account(org.app, meta(), account_id=org.account)


ACCOUNT_COMMANDS: dict[str, tuple[Callable[..., Any], Callable[[Org], dict[str, Any]]]] = {
    "add_unit": (
        h.add_unit,
        lambda o: {"unit_id": uuid4(), "name": "Nice", "level": "local", "parent_id": o.france, "code": "FR"},
    ),
    "rename_unit": (h.rename_unit, lambda o: {"unit_id": o.paris, "name": "Paris Nord"}),
    "close_unit": (h.close_unit, lambda o: {"unit_id": o.paris}),
    "assign_team_member": (h.assign_team_member, lambda o: {"member": "eve", "unit_id": o.hq, "role": "gam"}),
    "remove_team_member": (h.remove_team_member, lambda o: {"member": "bob", "unit_id": o.hq, "role": "gam"}),
    "archive_account": (h.archive_account, lambda o: {}),
}


@pytest.mark.parametrize("archived", [False, True], ids=["active", "archived"])
@pytest.mark.parametrize("command", list(ACCOUNT_COMMANDS))
def test_an_archived_account_refuses_every_change(org: Org, command: str, archived: bool) -> None:
    assign(org, "bob", org.hq, "gam")
    handler, kwargs = ACCOUNT_COMMANDS[command]
    if not archived:  # the same command is fine on an active account
        handler(org.app, meta(), account_id=org.account, **kwargs(org))
        return
    archive(org)
    version = account(org).version
    error = org.refused(errors.AccountArchived, handler, account_id=org.account, **kwargs(org))
    assert error.rule == "account_archived"
    assert account(org).version == version


@dataclass
class Scene:
    """Everything the plan, stakeholder and deal commands below need, in valid states."""

    org: Org
    objective: UUID
    action: UUID
    swot: UUID
    submitted_plan: UUID
    person: UUID
    manager: UUID
    deal: UUID
    proposal_deal: UUID
    lost_deal: UUID


def build_scene(org: Org) -> Scene:
    app = org.app
    objective = org.objective()
    org.cascade(objective, org.hq, org.emea, org.amer)  # unanswered directive, for respond_to_cascade
    org.respond(objective, org.amer, "declined")  # for ask_to_reconsider
    action = org.action(objective, org.hq)
    swot = uuid4()
    h.add_swot_entry(app, meta(), plan_id=org.plan, entry_id=swot, kind="threat", text="A rival's price cut")
    h.start_plan(app, meta(), account_id=org.account, fiscal_period="FY2028")
    submitted = plan_id_for(org.account, "FY2028")
    h.set_objective(
        app,
        meta(),
        plan_id=submitted,
        objective_id=uuid4(),
        unit_id=org.hq,
        title="Keep growing",
        description="",
        target=Target("revenue", Decimal(5), "EUR"),
        due_date=DUE,
    )
    h.submit_plan(app, meta("submitter@vendor.example"), plan_id=submitted)  # so alice, its lead, approves
    person, manager = org.stakeholder(), org.stakeholder(name="Grace Hopper")
    deal, proposal, lost = org.deal(), org.deal(stage="proposal"), org.deal()
    h.attach_buying_influence(app, meta(), deal_id=deal, stakeholder_id=person, role="coach", degree="high")
    h.lose_deal(app, meta(), deal_id=lost, loss_reason="Budget cut")
    return Scene(org, objective, action, swot, submitted, person, manager, deal, proposal, lost)


def _personal() -> PersonalData:
    return PersonalData("Ada King", "ada.king@customer.example")


OTHER_COMMANDS: dict[str, tuple[Callable[..., Any], Callable[[Scene], dict[str, Any]]]] = {
    # plans
    "start_plan": (h.start_plan, lambda s: {"account_id": s.org.account, "fiscal_period": "FY2029"}),
    "set_objective": (
        h.set_objective,
        lambda s: {
            "plan_id": s.org.plan,
            "objective_id": uuid4(),
            "unit_id": s.org.emea,
            "title": "Grow EMEA",
            "description": "",
            "target": Target("revenue", Decimal(10), "EUR"),
            "due_date": DUE,
            "linked_objective_id": s.objective,
        },
    ),
    "cascade_objective": (
        h.cascade_objective,
        lambda s: {
            "plan_id": s.org.plan,
            "objective_id": s.objective,
            "from_unit_id": s.org.hq,
            "to_unit_ids": (s.org.france,),
        },
    ),
    "respond_to_cascade": (
        h.respond_to_cascade,
        lambda s: {"plan_id": s.org.plan, "objective_id": s.objective, "unit_id": s.org.emea, "answer": "adopted"},
    ),
    "add_action": (
        h.add_action,
        lambda s: {
            "plan_id": s.org.plan,
            "action_id": uuid4(),
            "objective_id": s.objective,
            "unit_id": s.org.hq,
            "title": "Call the CPO",
            "owner": "bob",
            "due_date": DUE,
        },
    ),
    "change_action_status": (
        h.change_action_status,
        lambda s: {"plan_id": s.org.plan, "action_id": s.action, "status": "in_progress"},
    ),
    "report_progress": (
        h.report_progress,
        lambda s: {"plan_id": s.org.plan, "objective_id": s.objective, "unit_id": s.org.hq, "percent": 10},
    ),
    "add_swot_entry": (
        h.add_swot_entry,
        lambda s: {"plan_id": s.org.plan, "entry_id": uuid4(), "kind": "strength", "text": "Trusted brand"},
    ),
    "remove_swot_entry": (h.remove_swot_entry, lambda s: {"plan_id": s.org.plan, "entry_id": s.swot}),
    "set_whitespace_cell": (
        h.set_whitespace_cell,
        lambda s: {"plan_id": s.org.plan, "offering": "MRO", "unit_id": s.org.paris, "status": "opportunity"},
    ),
    "hold_business_review": (
        h.hold_business_review,
        lambda s: {"plan_id": s.org.plan, "review_id": uuid4(), "held_on": date(2027, 1, 1), "participants": ("a",)},
    ),
    "submit_plan": (h.submit_plan, lambda s: {"plan_id": s.org.plan}),
    "ask_to_reconsider": (
        h.ask_to_reconsider,
        lambda s: {"plan_id": s.org.plan, "objective_id": s.objective, "unit_id": s.org.amer, "note": "Reconsider"},
    ),
    "approve_plan": (h.approve_plan, lambda s: {"plan_id": s.submitted_plan}),
    "reopen_plan": (h.reopen_plan, lambda s: {"plan_id": s.submitted_plan}),
    # stakeholders
    "identify_stakeholder": (
        h.identify_stakeholder,
        lambda s: {
            "stakeholder_id": uuid4(),
            "account_id": s.org.account,
            "unit_id": s.org.paris,
            "title": "Plant manager",
            "personal": _personal(),
        },
    ),
    "correct_personal_data": (h.correct_personal_data, lambda s: {"stakeholder_id": s.person, "personal": _personal()}),
    "change_stakeholder_title": (h.change_stakeholder_title, lambda s: {"stakeholder_id": s.person, "title": "CEO"}),
    "change_buying_role": (h.change_buying_role, lambda s: {"stakeholder_id": s.person, "role": "champion"}),
    "rate_influence": (h.rate_influence, lambda s: {"stakeholder_id": s.person, "influence": 4}),
    "rate_sentiment": (h.rate_sentiment, lambda s: {"stakeholder_id": s.person, "sentiment": 1}),
    "assign_relationship_owner": (h.assign_relationship_owner, lambda s: {"stakeholder_id": s.person, "owner": "bob"}),
    "set_reports_to": (h.set_reports_to, lambda s: {"stakeholder_id": s.person, "manager_id": s.manager}),
    "log_interaction": (
        h.log_interaction,
        lambda s: {
            "stakeholder_id": s.person,
            "interaction_id": uuid4(),
            "occurred_at": EPOCH - timedelta(days=1),
            "channel": "call",
            "summary": "Discussed the renewal",
        },
    ),
    "record_departure": (h.record_departure, lambda s: {"stakeholder_id": s.person, "left_on": date(2027, 1, 2)}),
    # deals
    "open_deal": (
        h.open_deal,
        lambda s: {
            "deal_id": uuid4(),
            "account_id": s.org.account,
            "unit_id": s.org.lyon,
            "title": "Training",
            "amount": Money(Decimal(500), "EUR"),
            "expected_close": date(2027, 9, 30),
            "owner": "bob",
            "plan_id": s.org.plan,
            "linked_objective_ids": (s.objective,),
        },
    ),
    "move_deal_stage": (h.move_deal_stage, lambda s: {"deal_id": s.deal, "to_stage": "qualification"}),
    "change_deal_amount": (h.change_deal_amount, lambda s: {"deal_id": s.deal, "amount": Money(Decimal(9), "EUR")}),
    "change_deal_close_date": (
        h.change_deal_close_date,
        lambda s: {"deal_id": s.deal, "expected_close": date(2027, 8, 1)},
    ),
    "change_deal_probability": (h.change_deal_probability, lambda s: {"deal_id": s.deal, "probability": 35}),
    "win_deal": (h.win_deal, lambda s: {"deal_id": s.proposal_deal, "final_amount": Money(Decimal(900), "EUR")}),
    "lose_deal": (h.lose_deal, lambda s: {"deal_id": s.deal, "loss_reason": "No budget"}),
    "reopen_deal": (h.reopen_deal, lambda s: {"deal_id": s.lost_deal}),
    "attach_buying_influence": (
        h.attach_buying_influence,
        lambda s: {"deal_id": s.deal, "stakeholder_id": s.manager, "role": "economic_buyer", "degree": "high"},
    ),
    "detach_buying_influence": (
        h.detach_buying_influence,
        lambda s: {"deal_id": s.deal, "stakeholder_id": s.person, "role": "coach"},
    ),
    "assess_qualification": (
        h.assess_qualification,
        lambda s: {"deal_id": s.deal, "element": "champion", "status": "confirmed"},
    ),
}


def test_every_handler_on_another_aggregate_is_covered() -> None:
    """Erasing a person's data is a legal duty that outlives the account, so it is exempt."""
    account_handlers = {"create_account", "onboard_account", *ACCOUNT_COMMANDS}
    assert set(h.__all__) - account_handlers - {"erase_personal_data"} == set(OTHER_COMMANDS)


@pytest.mark.parametrize("archived", [False, True], ids=["active", "archived"])
@pytest.mark.parametrize("command", list(OTHER_COMMANDS))
def test_an_archived_account_refuses_plan_stakeholder_and_deal_commands(org: Org, command: str, archived: bool) -> None:
    scene = build_scene(org)
    handler, kwargs = OTHER_COMMANDS[command]
    if not archived:  # the command is valid: it succeeds while the account is active
        result = handler(org.app, meta(), **kwargs(scene))
        assert result.position == stored(org.app)
        return
    archive(org)
    error = org.refused(errors.AccountArchived, handler, **kwargs(scene))
    assert error.rule == "account_archived"


def test_archived_account_refuses_through_the_aggregate_too(org: Org) -> None:
    archive(org)
    acc = account(org)
    version = acc.version
    with pytest.raises(errors.AccountArchived):
        acc.require_open_unit(org.paris)
    with pytest.raises(errors.AccountArchived):
        acc.rename_unit(unit_id=org.paris, name="P", meta=meta())
    assert acc.version == version
    assert acc.pending_events == []

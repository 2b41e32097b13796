"""AccountPlan rules: fiscal periods, objectives and their links, the cascade and
its answers, actions and progress, SWOT, whitespace, reviews and approval."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import errors
from domain.account import GlobalAccount, UnitTree
from domain.plan import AccountPlan, plan_id_for
from domain.values import ACTION_TRANSITIONS, ActionStatus, Money, Target
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from services.bootstrap import bootstrap
from tests.support import EPOCH, meta
from tests.unit.builders import (
    DUE,
    PERIOD,
    SPONSOR,
    Org,
    approve_as_sponsor,
    build_org,
    ensure_sponsor,
    refused,
    stored,
)

EUR_TARGET = Target("revenue", Decimal(100_000), "EUR")


@pytest.fixture
def org(memory_app: GamApplication) -> Org:
    return build_org(memory_app)


def plan(org: Org, plan_id: UUID | None = None) -> AccountPlan:
    return org.app.load(AccountPlan, plan_id or org.plan)


def objective_kwargs(org: Org, unit: UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "plan_id": org.plan,
        "objective_id": uuid4(),
        "unit_id": unit,
        "title": "Grow",
        "description": "More of everything",
        "target": EUR_TARGET,
        "due_date": DUE,
        **overrides,
    }


# --- fiscal periods and one plan per account and period -----------------------------------


@pytest.mark.parametrize(
    "period",
    [
        "2027",
        "FY27",
        "fy2028",
        "FY2028-Q5",
        "FY2028-Q0",
        "FY2028-H3",
        "FY2028Q1",
        "FY2028-",
        "FY 2028",
        "FY20281",
        "",
        "FY2028-Q1-H1",
    ],
)
def test_fiscal_period_must_look_like_fy_year_half_or_quarter(org: Org, period: str) -> None:
    error = org.refused(errors.InvalidValue, h.start_plan, account_id=org.account, fiscal_period=period)
    assert error.field == "fiscal_period"


@pytest.mark.parametrize(
    "period",
    ["FY\uff12\uff10\uff12\uff18", "FY\u0662\u0660\u0662\u0668"],
    ids=["fullwidth", "arabic-indic"],
)
def test_fiscal_period_year_is_ascii_digits(org: Org, period: str) -> None:
    """FY2028 in full-width or Arabic-Indic digits is FY2028 written another way; it must not get a
    second plan id, so a second plan for the same account and period."""
    h.start_plan(org.app, meta(), account_id=org.account, fiscal_period="FY2028")
    org.refused((errors.InvalidValue, errors.AlreadyExists), h.start_plan, account_id=org.account, fiscal_period=period)


@pytest.mark.parametrize("period", ["FY2028", "FY2028-H1", "FY2028-H2", "FY2028-Q1", "FY2028-Q4"])
def test_valid_fiscal_periods_start_a_draft_plan(org: Org, period: str) -> None:
    result = h.start_plan(org.app, meta(), account_id=org.account, fiscal_period=period)
    started = plan(org, result.entity_id)
    assert result.entity_id == plan_id_for(org.account, period)
    assert (started.fiscal_period, started.status, started.account_id) == (period, "draft", org.account)


@pytest.mark.parametrize("period", [PERIOD, f"  {PERIOD} "])
def test_a_second_plan_for_the_same_account_and_period_already_exists(org: Org, period: str) -> None:
    h.set_objective(org.app, meta(), **objective_kwargs(org, org.hq))
    version = plan(org).version
    error = org.refused(errors.AlreadyExists, h.start_plan, account_id=org.account, fiscal_period=period)
    assert (error.kind, error.entity_id, error.rule) == ("plan", org.plan, "already_exists")
    assert plan(org).version == version
    assert len(plan(org).objectives) == 1


def test_another_account_may_plan_the_same_period(org: Org) -> None:
    other = build_org(org.app, with_plan=False, name="Other")
    result = h.start_plan(org.app, meta(), account_id=other.account, fiscal_period=PERIOD)
    assert result.entity_id == plan_id_for(other.account, PERIOD) != org.plan


def test_a_plan_needs_an_existing_account(memory_app: GamApplication) -> None:
    error = refused(memory_app, errors.NotFound, h.start_plan, account_id=uuid4(), fiscal_period=PERIOD)
    assert error.kind == "account"


# --- objectives ------------------------------------------------------------------------------


def submit(org: Org, plan_id: UUID | None = None) -> None:
    h.submit_plan(org.app, meta(), plan_id=plan_id or org.plan)


def test_objectives_are_set_only_while_the_plan_is_a_draft(org: Org) -> None:
    org.objective()
    submit(org)
    error = org.refused(errors.PlanNotEditable, h.set_objective, **objective_kwargs(org, org.emea))
    assert error.rule == "plan_not_editable"
    approve_as_sponsor(org.app, plan_id=org.plan)
    org.refused(errors.PlanNotEditable, h.set_objective, **objective_kwargs(org, org.emea))
    h.reopen_plan(org.app, meta(), plan_id=org.plan)
    org.objective(org.emea)
    assert len(plan(org).objectives) == 2


def test_swot_is_strategy_too_and_frozen_once_submitted(org: Org) -> None:
    org.objective()
    entry = uuid4()
    h.add_swot_entry(org.app, meta(), plan_id=org.plan, entry_id=entry, kind="strength", text="Installed base")
    submit(org)
    org.refused(errors.PlanNotEditable, h.add_swot_entry, plan_id=org.plan, entry_id=uuid4(), kind="threat", text="X")
    org.refused(errors.PlanNotEditable, h.remove_swot_entry, plan_id=org.plan, entry_id=entry)
    assert entry in plan(org).swot


def test_an_objective_id_is_used_once(org: Org) -> None:
    objective = org.objective()
    error = org.refused(
        errors.AlreadyExists, h.set_objective, **objective_kwargs(org, org.emea, objective_id=objective)
    )
    assert (error.kind, error.entity_id) == ("objective", objective)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"target": Money(Decimal(5), "EUR")}, "target"),
        ({"target": Decimal(5)}, "target"),
        ({"title": "  "}, "title"),
        ({"due_date": datetime(2027, 12, 31, tzinfo=EPOCH.tzinfo)}, "due_date"),
        ({"due_date": "2027-12-31"}, "due_date"),
    ],
)
def test_objective_values_are_validated(org: Org, overrides: dict[str, Any], field: str) -> None:
    error = org.refused(errors.InvalidValue, h.set_objective, **objective_kwargs(org, org.hq, **overrides))
    assert error.field == field


def test_objectives_sit_on_open_units_of_the_account(org: Org) -> None:
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.lyon)
    org.refused(errors.UnitClosed, h.set_objective, **objective_kwargs(org, org.lyon))
    error = org.refused(errors.NotFound, h.set_objective, **objective_kwargs(org, uuid4()))
    assert error.kind == "unit"


def test_a_money_target_is_never_negative(org: Org) -> None:
    before = stored(org.app)
    with pytest.raises(errors.NegativeAmount) as raised:
        h.set_objective(
            org.app, meta(), **objective_kwargs(org, org.hq, target=Target("revenue", Decimal("-0.01"), "EUR"))
        )
    assert raised.value.rule == "negative_amount"
    assert stored(org.app) == before
    assert plan(org).objectives == {}
    # A negative target that is not money (a reduction, say) is fine; so is zero money.
    org.objective(target=Target("defects per month", Decimal(-5)))
    org.objective(target=Target("revenue", Decimal(0), "EUR"))
    assert len(plan(org).objectives) == 2


@pytest.mark.parametrize(
    ("metric", "value", "currency"),
    [
        ("revenue", Decimal(1), "eur"),
        ("revenue", Decimal("NaN"), "EUR"),
        ("revenue", Decimal("Infinity"), None),
        ("", Decimal(1), None),
    ],
)
def test_targets_are_validated(metric: str, value: Decimal, currency: str | None) -> None:
    with pytest.raises(errors.InvalidValue):
        Target(metric, value, currency)


def test_a_linked_objective_belongs_to_a_unit_above(org: Org) -> None:
    group = org.objective(org.hq)
    emea = org.objective(org.emea, linked=group)
    paris = org.objective(org.paris, linked=emea)  # two levels above is above too
    assert plan(org).objectives[paris].linked_objective_id == emea
    for unit in (org.hq, org.emea, org.amer, org.us, org.houston):  # not strictly above these
        error = org.refused(
            errors.InvalidValue, h.set_objective, **objective_kwargs(org, unit, linked_objective_id=emea)
        )
        assert error.field == "linked_objective_id"
    error = org.refused(
        errors.InvalidValue, h.set_objective, **objective_kwargs(org, org.emea, linked_objective_id=uuid4())
    )
    assert error.field == "linked_objective_id"
    assert len(plan(org).objectives) == 3


# --- the cascade ------------------------------------------------------------------------------


def cascade_kwargs(org: Org, objective: UUID, source: UUID, *to: UUID) -> dict[str, Any]:
    return {"plan_id": org.plan, "objective_id": objective, "from_unit_id": source, "to_unit_ids": to}


def test_cascade_goes_only_to_units_strictly_below_the_source(org: Org) -> None:
    objective = org.objective(org.hq)
    error = org.refused(
        errors.CascadeNotBelowSource, h.cascade_objective, **cascade_kwargs(org, objective, org.hq, org.hq)
    )
    assert error.rule == "cascade_not_below_source"
    org.cascade(objective, org.hq, org.emea)
    org.respond(objective, org.emea)
    for target in (org.emea, org.hq, org.amer, org.us, org.houston):
        org.refused(
            errors.CascadeNotBelowSource, h.cascade_objective, **cascade_kwargs(org, objective, org.emea, target)
        )
    # One bad unit spoils the whole command: France does not receive it either.
    org.refused(
        errors.CascadeNotBelowSource,
        h.cascade_objective,
        **cascade_kwargs(org, objective, org.emea, org.france, org.us),
    )
    assert set(plan(org).directives) == {(objective, org.emea)}
    org.cascade(objective, org.emea, org.france, org.paris)
    assert set(plan(org).directives) == {(objective, u) for u in (org.emea, org.france, org.paris)}


def test_only_the_owner_or_a_unit_that_took_it_on_cascades(org: Org) -> None:
    objective = org.objective(org.hq)
    # EMEA never received it.
    error = org.refused(
        errors.CascadeSourceNotEntitled, h.cascade_objective, **cascade_kwargs(org, objective, org.emea, org.france)
    )
    assert error.rule == "cascade_source_not_entitled"
    org.cascade(objective, org.hq, org.emea, org.amer, org.france)
    # EMEA received it but has not answered yet.
    org.refused(
        errors.CascadeSourceNotEntitled, h.cascade_objective, **cascade_kwargs(org, objective, org.emea, org.lyon)
    )
    # AMER declined it.
    org.respond(objective, org.amer, "declined")
    org.refused(
        errors.CascadeSourceNotEntitled, h.cascade_objective, **cascade_kwargs(org, objective, org.amer, org.us)
    )
    # A unit below the owner is not the owner.
    org.refused(
        errors.CascadeSourceNotEntitled, h.cascade_objective, **cascade_kwargs(org, objective, org.us, org.houston)
    )
    # Adopting or adapting entitles.
    org.respond(objective, org.emea, "adopted")
    org.respond(objective, org.france, "adapted")
    org.cascade(objective, org.emea, org.lyon)
    org.cascade(objective, org.france, org.paris)
    directives = plan(org).directives
    assert directives[(objective, org.lyon)].from_unit_id == org.emea
    assert directives[(objective, org.paris)].from_unit_id == org.france


def test_a_unit_receives_an_objective_once(org: Org) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.emea, org.france)
    error = org.refused(
        errors.AlreadyCascaded, h.cascade_objective, **cascade_kwargs(org, objective, org.hq, org.france)
    )
    assert error.rule == "already_cascaded"
    org.refused(
        errors.AlreadyCascaded, h.cascade_objective, **cascade_kwargs(org, objective, org.hq, org.paris, org.france)
    )
    assert (objective, org.paris) not in plan(org).directives
    # Also when another entitled unit passes it on.
    org.respond(objective, org.emea)
    org.refused(errors.AlreadyCascaded, h.cascade_objective, **cascade_kwargs(org, objective, org.emea, org.france))
    # Naming a unit twice in one command is one directive.
    org.cascade(objective, org.hq, org.paris, org.paris)
    assert len(plan(org).directives) == 3


def test_cascade_checks_objective_units_and_targets(org: Org) -> None:
    objective = org.objective(org.hq)
    error = org.refused(errors.NotFound, h.cascade_objective, **cascade_kwargs(org, uuid4(), org.hq, org.emea))
    assert error.kind == "objective"
    error = org.refused(errors.InvalidValue, h.cascade_objective, **cascade_kwargs(org, objective, org.hq))
    assert error.field == "to_unit_ids"
    error = org.refused(errors.InvalidValue, h.cascade_objective, **cascade_kwargs(org, objective, org.hq, uuid4()))
    assert error.field == "to_unit_ids[0]"
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    org.refused(errors.UnitClosed, h.cascade_objective, **cascade_kwargs(org, objective, org.hq, org.us, org.houston))
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.paris)
    org.refused(errors.UnitClosed, h.cascade_objective, **cascade_kwargs(org, objective, org.paris, org.lyon))
    assert plan(org).directives == {}


# --- answers to the cascade -------------------------------------------------------------------


def respond_kwargs(org: Org, objective: UUID, unit: UUID, answer: str, **extra: Any) -> dict[str, Any]:
    return {"plan_id": org.plan, "objective_id": objective, "unit_id": unit, "answer": answer, **extra}


def test_only_a_unit_the_objective_was_cascaded_to_responds(org: Org) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.emea)
    for unit in (org.hq, org.france, org.amer):
        error = org.refused(
            errors.CascadeNotAddressedToUnit, h.respond_to_cascade, **respond_kwargs(org, objective, unit, "adopted")
        )
        assert error.rule == "cascade_not_addressed_to_unit"
    error = org.refused(errors.NotFound, h.respond_to_cascade, **respond_kwargs(org, uuid4(), org.emea, "adopted"))
    assert error.kind == "objective"
    assert plan(org).directives[(objective, org.emea)].answer is None


@pytest.mark.parametrize("first", ["adopted", "adapted", "declined"])
@pytest.mark.parametrize("second", ["adopted", "adapted", "declined"])
def test_a_unit_answers_once(org: Org, first: str, second: str) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.emea)
    org.respond(objective, org.emea, first)
    extra = {
        "rationale": "Changed our mind",
        "local_title": "Other",
        "local_target": Target("revenue", Decimal(1), "EUR"),
    }
    error = org.refused(
        errors.CascadeAlreadyAnswered, h.respond_to_cascade, **respond_kwargs(org, objective, org.emea, second, **extra)
    )
    assert error.rule == "cascade_already_answered"
    assert plan(org).directives[(objective, org.emea)].answer == first


@pytest.mark.parametrize(
    ("answer", "extra", "field"),
    [
        ("accepted", {}, "answer"),
        ("ADOPTED", {}, "answer"),
        ("adapted", {"local_title": "Local", "rationale": "Smaller market"}, "local_target"),
        (
            "adapted",
            {"local_title": "Local", "rationale": "Smaller market", "local_target": Money(Decimal(1), "EUR")},
            "local_target",
        ),
        ("adapted", {"local_title": "Local", "local_target": EUR_TARGET}, "rationale"),
        ("adapted", {"local_title": "Local", "local_target": EUR_TARGET, "rationale": "   "}, "rationale"),
        ("adapted", {"rationale": "Smaller market", "local_target": EUR_TARGET}, "local_title"),
        ("declined", {}, "rationale"),
        ("declined", {"rationale": ""}, "rationale"),
    ],
)
def test_adapting_needs_a_local_target_and_rationale_declining_a_rationale(
    org: Org, answer: str, extra: dict[str, Any], field: str
) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.france)
    error = org.refused(
        errors.InvalidValue, h.respond_to_cascade, **respond_kwargs(org, objective, org.france, answer, **extra)
    )
    assert error.field == field
    assert plan(org).directives[(objective, org.france)].answer is None
    org.respond(objective, org.france, "declined", rationale="Not our market")  # still open for an answer
    directive = plan(org).directives[(objective, org.france)]
    assert (directive.answer, directive.rationale) == ("declined", "Not our market")


def test_an_adapted_money_target_is_never_negative(org: Org) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.france)
    before = stored(org.app)
    with pytest.raises(errors.NegativeAmount):
        org.respond(objective, org.france, "adapted", local_target=Target("revenue", Decimal(-1), "EUR"))
    assert stored(org.app) == before
    org.respond(objective, org.france, "adapted")
    assert plan(org).directives[(objective, org.france)].local_target == Target("revenue", Decimal(200_000), "EUR")


def test_responding_needs_an_open_unit(org: Org) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.houston)
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.houston)
    org.refused(errors.UnitClosed, h.respond_to_cascade, **respond_kwargs(org, objective, org.houston, "adopted"))


# --- actions and progress -----------------------------------------------------------------------


@pytest.fixture
def entitlement(org: Org) -> tuple[Org, UUID]:
    """HQ owns the objective; EMEA adopted, France adapted, Lyon declined, Paris has
    not answered, AMER never received it."""
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.emea, org.france, org.lyon, org.paris)
    org.respond(objective, org.emea, "adopted")
    org.respond(objective, org.france, "adapted")
    org.respond(objective, org.lyon, "declined")
    return org, objective


def progress_kwargs(org: Org, objective: UUID, unit: UUID, percent: Any = 40) -> dict[str, Any]:
    return {"plan_id": org.plan, "objective_id": objective, "unit_id": unit, "percent": percent}


def action_kwargs(org: Org, objective: UUID, unit: UUID, **extra: Any) -> dict[str, Any]:
    return {
        "plan_id": org.plan,
        "action_id": uuid4(),
        "objective_id": objective,
        "unit_id": unit,
        "title": "Workshop",
        "owner": "bob",
        "due_date": DUE,
        **extra,
    }


@pytest.mark.parametrize("unit", ["lyon", "paris", "amer", "us"])
def test_progress_and_actions_only_from_units_that_hold_the_objective(entitlement: tuple[Org, UUID], unit: str) -> None:
    org, objective = entitlement
    unit_id = getattr(org, unit)
    error = org.refused(errors.ProgressNotEntitled, h.report_progress, **progress_kwargs(org, objective, unit_id))
    assert error.rule == "progress_not_entitled"
    org.refused(errors.ProgressNotEntitled, h.add_action, **action_kwargs(org, objective, unit_id))
    assert plan(org).progress == []
    assert plan(org).actions == {}


@pytest.mark.parametrize("unit", ["hq", "emea", "france"])
def test_the_owner_and_units_that_took_it_on_report_and_act(entitlement: tuple[Org, UUID], unit: str) -> None:
    org, objective = entitlement
    unit_id = getattr(org, unit)
    h.report_progress(org.app, meta(), **progress_kwargs(org, objective, unit_id))
    action = org.action(objective, unit_id)
    current = plan(org)
    assert [(p.unit_id, p.percent) for p in current.progress] == [(unit_id, 40)]
    assert current.actions[action].unit_id == unit_id


@pytest.mark.parametrize("percent", [-1, 101, 1000, True, False, 50.5, "50", None])
def test_progress_is_a_whole_percent_from_0_to_100(entitlement: tuple[Org, UUID], percent: Any) -> None:
    org, objective = entitlement
    error = org.refused(errors.InvalidValue, h.report_progress, **progress_kwargs(org, objective, org.hq, percent))
    assert error.field == "percent"


def test_progress_bounds_are_inclusive(entitlement: tuple[Org, UUID]) -> None:
    org, objective = entitlement
    for percent in (0, 100):
        h.report_progress(org.app, meta(), **progress_kwargs(org, objective, org.hq, percent))
    assert [p.percent for p in plan(org).progress] == [0, 100]


def test_progress_and_actions_need_a_known_objective(entitlement: tuple[Org, UUID]) -> None:
    org, _ = entitlement
    assert org.refused(errors.NotFound, h.report_progress, **progress_kwargs(org, uuid4(), org.hq)).kind == "objective"
    assert org.refused(errors.NotFound, h.add_action, **action_kwargs(org, uuid4(), org.hq)).kind == "objective"


def test_an_action_id_is_used_once(entitlement: tuple[Org, UUID]) -> None:
    org, objective = entitlement
    action = org.action(objective, org.hq)
    error = org.refused(errors.AlreadyExists, h.add_action, **action_kwargs(org, objective, org.emea, action_id=action))
    assert (error.kind, error.entity_id) == ("action", action)
    assert plan(org).actions[action].unit_id == org.hq


# --- action status -----------------------------------------------------------------------------

STATUSES = [s.value for s in ActionStatus]


def set_status(org: Org, action: UUID, status: str) -> None:
    h.change_action_status(org.app, meta(), plan_id=org.plan, action_id=action, status=status)


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_action_status_changes_follow_the_transition_table(org: Org, start: str, target: str) -> None:
    objective = org.objective(org.hq)
    action = org.action(objective, org.hq)
    if start != "planned":
        set_status(org, action, start)
    assert plan(org).actions[action].status == start
    if ActionStatus(target) in ACTION_TRANSITIONS[ActionStatus(start)]:
        set_status(org, action, target)
        assert plan(org).actions[action].status == target
    else:
        error = org.refused(
            errors.InvalidActionTransition, h.change_action_status, plan_id=org.plan, action_id=action, status=target
        )
        assert error.rule == "invalid_action_transition"
        assert plan(org).actions[action].status == start


def test_the_transition_table_forbids_staying_put_and_reopens_done_to_in_progress() -> None:
    for status, allowed in ACTION_TRANSITIONS.items():
        assert status not in allowed
    assert ACTION_TRANSITIONS[ActionStatus.DONE] == {ActionStatus.IN_PROGRESS}
    assert set(ACTION_TRANSITIONS) == set(ActionStatus)


def test_action_status_needs_a_known_action_and_status(org: Org) -> None:
    action = org.action(org.objective(org.hq), org.hq)
    error = org.refused(errors.NotFound, h.change_action_status, plan_id=org.plan, action_id=uuid4(), status="done")
    assert error.kind == "action"
    error = org.refused(
        errors.InvalidValue, h.change_action_status, plan_id=org.plan, action_id=action, status="finished"
    )
    assert error.field == "status"


# --- plan status -----------------------------------------------------------------------------

PLAN_COMMANDS = {"submit": h.submit_plan, "approve": approve_as_sponsor, "reopen": h.reopen_plan}
ALLOWED_PLAN_MOVES = {("draft", "submit"): "submitted", ("submitted", "approve"): "approved"}
ALLOWED_PLAN_MOVES |= {("submitted", "reopen"): "draft", ("approved", "reopen"): "draft"}


@pytest.mark.parametrize("state", ["draft", "submitted", "approved"])
@pytest.mark.parametrize("command", list(PLAN_COMMANDS))
def test_plan_goes_draft_submitted_approved_and_back_only_by_reopening(org: Org, state: str, command: str) -> None:
    org.objective(org.hq)
    ensure_sponsor(org.app, org.plan)
    if state in ("submitted", "approved"):
        submit(org)
    if state == "approved":
        approve_as_sponsor(org.app, plan_id=org.plan)
    assert plan(org).status == state
    expected = ALLOWED_PLAN_MOVES.get((state, command))
    if expected is not None:
        PLAN_COMMANDS[command](org.app, meta(), plan_id=org.plan)
        assert plan(org).status == expected
    else:
        error = org.refused(errors.InvalidPlanTransition, PLAN_COMMANDS[command], plan_id=org.plan)
        assert error.rule == "invalid_plan_transition"
        assert plan(org).status == state


def test_a_plan_without_objectives_cannot_be_submitted(org: Org) -> None:
    org.refused(errors.InvalidPlanTransition, h.submit_plan, plan_id=org.plan)
    assert plan(org).status == "draft"


def test_approval_records_the_baseline_and_reopening_keeps_it(org: Org) -> None:
    org.objective(org.hq)
    submit(org)
    result = approve_as_sponsor(org.app, plan_id=org.plan)
    assert plan(org).baseline_version == result.version
    h.reopen_plan(org.app, meta(), plan_id=org.plan)
    assert (plan(org).status, plan(org).baseline_version) == ("draft", result.version)


# --- approval: separation of duties -----------------------------------------------------------

TEAM_ROLES = ("lead_gam", "gam", "executive_sponsor", "regional_am", "local_am", "specialist")


@settings(max_examples=25, deadline=None)
@given(
    held=st.sets(st.sampled_from(TEAM_ROLES), max_size=3),
    approvers=st.sets(st.sampled_from(("lead_gam", "gam", "executive_sponsor")), min_size=1),
    approver_submitted=st.booleans(),
)
def test_a_plan_is_approved_only_by_an_approver_who_did_not_submit_it(
    held: set[str], approvers: set[str], approver_submitted: bool
) -> None:
    """Accepted exactly when the caller holds one of the configured approver roles on
    the team and is not the one who submitted; otherwise refused, nothing stored."""
    runtime = bootstrap(Settings(store="memory", approver_roles=sorted(approvers)))
    try:
        _approve_once(runtime.app, held, approver_submitted)
    finally:
        runtime.close()


def _approve_once(app: GamApplication, held: set[str], approver_submitted: bool) -> None:
    org = build_org(app)
    org.objective(org.hq)
    who = "approver@vendor.example"
    for role in held:
        unit = org.france if role in ("regional_am", "local_am") else org.hq
        h.assign_team_member(app, meta(), account_id=org.account, member=who, unit_id=unit, role=role)
    h.submit_plan(app, meta(who if approver_submitted else "alice@vendor.example"), plan_id=org.plan)
    before = stored(app)
    if approver_submitted:
        with pytest.raises(errors.SelfApproval):
            h.approve_plan(app, meta(who), plan_id=org.plan)
    elif not held & app.approver_roles:
        with pytest.raises(errors.NotAnApprover):
            h.approve_plan(app, meta(who), plan_id=org.plan)
    else:
        h.approve_plan(app, meta(who), plan_id=org.plan)
        assert plan(org).status == "approved"
        return
    assert stored(app) == before
    assert plan(org).status == "submitted"


def test_the_lead_gam_who_submitted_cannot_approve_but_the_sponsor_can(org: Org) -> None:
    org.objective(org.hq)
    submit(org)  # alice took the account on: its lead GAM, an approver role
    error = org.refused(errors.SelfApproval, h.approve_plan, plan_id=org.plan)
    assert error.rule == "self_approval"
    approve_as_sponsor(org.app, plan_id=org.plan)
    assert [e.actor for e in org.app.events.get(org.plan, desc=True, limit=1)] == [SPONSOR]  # type: ignore[attr-defined]


# --- asking a declining unit to reconsider ------------------------------------------------------


def test_a_declining_unit_is_asked_to_reconsider_and_answers_again(org: Org) -> None:
    objective = org.objective(org.hq)
    org.cascade(objective, org.hq, org.emea, org.amer)
    org.respond(objective, org.emea, "declined", rationale="No budget in EMEA")
    org.respond(objective, org.amer, "adopted")
    ask = {"plan_id": org.plan, "objective_id": objective, "note": "EMEA carries 40% of the target"}
    org.refused(errors.ReconsiderNeedsDecline, h.ask_to_reconsider, **ask, unit_id=org.amer)
    org.refused(errors.NotFound, h.ask_to_reconsider, **ask, unit_id=org.france)  # never received it
    org.refused(errors.InvalidValue, h.ask_to_reconsider, **{**ask, "note": " "}, unit_id=org.emea)
    h.ask_to_reconsider(org.app, meta(), **ask, unit_id=org.emea)
    directive = plan(org).directives[(objective, org.emea)]
    assert (directive.answer, directive.reconsider_note) == (None, "EMEA carries 40% of the target")
    org.refused(errors.ReconsiderNeedsDecline, h.ask_to_reconsider, **ask, unit_id=org.emea)  # asked already
    org.respond(objective, org.emea, "adapted")
    assert plan(org).directives[(objective, org.emea)].answer == "adapted"
    history = [type(e).__name__ for e in org.app.events.get(org.plan)]
    assert history[-4:] == ["ObjectiveDeclined", "ObjectiveAdopted", "ReconsiderationRequested", "ObjectiveAdapted"]


# --- SWOT, whitespace, business reviews ------------------------------------------------------


def test_swot_entries_are_validated_and_unique(org: Org) -> None:
    entry = uuid4()
    h.add_swot_entry(org.app, meta(), plan_id=org.plan, entry_id=entry, kind="weakness", text="Thin coverage")
    error = org.refused(
        errors.AlreadyExists, h.add_swot_entry, plan_id=org.plan, entry_id=entry, kind="threat", text="X"
    )
    assert error.kind == "swot entry"
    error = org.refused(
        errors.InvalidValue, h.add_swot_entry, plan_id=org.plan, entry_id=uuid4(), kind="risk", text="X"
    )
    assert error.field == "kind"
    org.refused(errors.NotFound, h.remove_swot_entry, plan_id=org.plan, entry_id=uuid4())
    h.remove_swot_entry(org.app, meta(), plan_id=org.plan, entry_id=entry)
    org.refused(errors.NotFound, h.remove_swot_entry, plan_id=org.plan, entry_id=entry)


def test_whitespace_cells_need_a_known_status_and_open_unit(org: Org) -> None:
    kwargs = {"plan_id": org.plan, "offering": "MRO", "unit_id": org.paris}
    assert org.refused(errors.InvalidValue, h.set_whitespace_cell, **kwargs, status="maybe").field == "status"
    h.close_unit(org.app, meta(), account_id=org.account, unit_id=org.paris)
    org.refused(errors.UnitClosed, h.set_whitespace_cell, **kwargs, status="in_use")
    assert plan(org).whitespace == {}


def test_business_reviews_have_participants_and_are_held_once(org: Org) -> None:
    review = uuid4()
    kwargs = {"plan_id": org.plan, "review_id": review, "held_on": date(2027, 1, 2)}
    assert org.refused(errors.InvalidValue, h.hold_business_review, **kwargs, participants=()).field == "participants"
    h.hold_business_review(org.app, meta(), **kwargs, participants=("cpo", "gam"))
    error = org.refused(errors.AlreadyExists, h.hold_business_review, **kwargs, participants=("cfo",))
    assert error.kind == "business review"
    assert plan(org).reviews[review].participants == ("cpo", "gam")


# --- units of another account ------------------------------------------------------------------


def tree_of(app: GamApplication, account_id: UUID) -> UnitTree:
    return app.load(GlobalAccount, account_id).tree()


def test_a_plan_refuses_the_unit_tree_of_another_account(org: Org) -> None:
    objective = org.objective(org.hq)
    other = build_org(org.app, with_plan=False, name="Other")
    foreign = tree_of(org.app, other.account)
    own = tree_of(org.app, org.account)
    forged = UnitTree(other.account, own.units)  # our units, but labelled as another account's
    current = plan(org)
    version = current.version
    calls = [
        lambda tree: current.set_objective(
            objective_id=uuid4(),
            unit_id=other.hq if tree is foreign else org.hq,
            title="T",
            description="",
            target=EUR_TARGET,
            due_date=DUE,
            tree=tree,
            meta=meta(),
        ),
        lambda tree: current.cascade_objective(
            objective_id=objective, from_unit_id=org.hq, to_unit_ids=(org.emea,), tree=tree, meta=meta()
        ),
        lambda tree: current.add_action(
            action_id=uuid4(),
            objective_id=objective,
            unit_id=org.hq,
            title="T",
            owner="bob",
            due_date=DUE,
            tree=tree,
            meta=meta(),
        ),
        lambda tree: current.add_swot_entry(
            entry_id=uuid4(), kind="threat", text="T", unit_id=None, tree=tree, meta=meta()
        ),
        lambda tree: current.set_whitespace_cell(
            offering="MRO",
            unit_id=other.paris if tree is foreign else org.paris,
            status="in_use",
            tree=tree,
            meta=meta(),
        ),
    ]
    for call in calls:
        for tree in (foreign, forged):
            with pytest.raises(errors.UnitOfAnotherAccount) as raised:
                call(tree)
            assert raised.value.rule == "unit_of_another_account"
            assert current.pending_events == []
            assert current.version == version
    # The same calls with the plan's own tree are fine.
    for call in calls:
        call(own)
    assert len(current.pending_events) == len(calls)

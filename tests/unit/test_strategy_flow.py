"""The strategy flow against the plan it follows."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from domain.account import GlobalAccount
from domain.catalog import event_classes
from domain.plan import AccountPlan
from domain.values import Target
from infra.settings import Settings
from projections.strategy_flow import IGNORED, PLAN_EVOLVE, UNIT_EVOLVE, read_strategy_flow
from services import handlers as h
from services.app import GamApplication
from services.demo import seed_account
from services.projector import Projector
from tests.support import meta
from tests.unit.world import World, build_world


def flow_of(app: GamApplication, plan_id: Any, now: datetime, days: int = 14) -> dict[str, Any]:
    projector = Projector.in_memory(app, ["strategy_flow"])
    projector.catch_up()
    flow = read_strategy_flow(projector.view("strategy_flow"), plan_id, now=now, answer_within_days=days)
    assert flow is not None
    return flow


def test_every_account_and_plan_event_is_handled_or_deliberately_ignored() -> None:
    aggregates = ("GlobalAccount", "AccountPlan")
    relevant = {c.__qualname__ for c in event_classes() if c.__qualname__.split(".")[0] in aggregates}
    assert relevant == set(PLAN_EVOLVE) | set(UNIT_EVOLVE) | IGNORED | {"AccountPlan.Started"}


def test_demo_flow_matches_the_plan() -> None:
    app = GamApplication(Settings(store="memory").eventsourcing_env())
    seeded = seed_account(app, 0)
    plan = app.load(AccountPlan, seeded.plan_id)
    flow = flow_of(app, seeded.plan_id, now=datetime(2026, 11, 24, tzinfo=UTC))
    assert len(flow["objectives"]) == 10
    for item in flow["objectives"]:
        directives = [d for (oid, _), d in plan.directives.items() if str(oid) == item["objective_id"]]
        answers = Counter(d.answer for d in directives)
        rollup = item["rollup"]
        assert rollup["addressed_units"] == len(directives)
        assert (rollup["adopted"], rollup["adapted"], rollup["declined"]) == (
            answers["adopted"], answers["adapted"], answers["declined"],
        )  # fmt: skip
        taken = answers["adopted"] + answers["adapted"]
        assert Decimal(rollup["share_taken_on"]) == (Decimal(100 * taken) / len(directives)).quantize(Decimal("0.1"))
    declined = [d for d in plan.directives.values() if d.answer == "declined"]
    assert len(flow["gaps"]["declined"]) == len(declined)
    assert {g["rationale"] for g in flow["gaps"]["declined"]} == {d.rationale for d in declined}
    directions = {f["direction"] for f in flow["flows"]}
    assert directions == {"down", "up"}
    assert [f["at"] for f in flow["flows"]] == sorted(f["at"] for f in flow["flows"])


@pytest.fixture
def w(memory_app: GamApplication) -> World:
    return build_world(memory_app)


def test_unanswered_becomes_a_gap_only_after_the_allowed_days(w: World) -> None:
    m = meta()
    h.cascade_objective(w.app, m, plan_id=w.plan, objective_id=w.objective, from_unit_id=w.hq,
                        to_unit_ids=(w.emea, w.amer))  # fmt: skip
    h.respond_to_cascade(w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.emea, answer="adopted")
    soon = flow_of(w.app, w.plan, now=m.at + timedelta(days=2))
    assert soon["gaps"]["unanswered"] == []
    later = flow_of(w.app, w.plan, now=m.at + timedelta(days=30))
    assert [g["unit"] for g in later["gaps"]["unanswered"]] == ["Amer"]
    assert later["gaps"]["unanswered"][0]["days_waiting"] == 30


def test_time_to_respond_is_measured_in_hours(w: World) -> None:
    from domain.metadata import EventMetadata

    sent = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    h.cascade_objective(w.app, EventMetadata("gam", sent, uuid4()), plan_id=w.plan, objective_id=w.objective,
                        from_unit_id=w.hq, to_unit_ids=(w.emea,))  # fmt: skip
    h.respond_to_cascade(w.app, EventMetadata("ram", sent + timedelta(hours=30), uuid4()), plan_id=w.plan,
                         objective_id=w.objective, unit_id=w.emea, answer="adopted")  # fmt: skip
    flow = flow_of(w.app, w.plan, now=sent + timedelta(days=3))
    (emea,) = flow["objectives"][0]["cascade"]["children"]
    assert (emea["state"], emea["hours_to_respond"]) == ("adopted", 30.0)


def test_local_objectives_must_link_up_to_hq(w: World) -> None:
    base = {"plan_id": w.plan, "description": "", "target": Target("n", Decimal(1)), "due_date": date(2027, 1, 1)}
    region = uuid4()
    h.set_objective(w.app, meta(), objective_id=region, unit_id=w.emea, title="Regional",
                    linked_objective_id=w.objective, **base)  # fmt: skip
    h.set_objective(w.app, meta(), objective_id=uuid4(), unit_id=w.paris, title="Linked via region",
                    linked_objective_id=region, **base)  # fmt: skip
    h.set_objective(w.app, meta(), objective_id=uuid4(), unit_id=w.france, title="Orphan", **base)
    flow = flow_of(w.app, w.plan, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert [g["title"] for g in flow["gaps"]["unlinked_local_objectives"]] == ["Orphan"]


def test_blocked_actions_flow_up_as_escalations_and_progress_rolls_up(w: World) -> None:
    h.cascade_objective(w.app, meta(), plan_id=w.plan, objective_id=w.objective, from_unit_id=w.hq,
                        to_unit_ids=(w.emea, w.amer))  # fmt: skip
    h.respond_to_cascade(w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.emea, answer="adopted")
    action = uuid4()
    h.add_action(w.app, meta(), plan_id=w.plan, action_id=action, objective_id=w.objective, unit_id=w.emea,
                 title="Workshop", owner="ram", due_date=date(2027, 3, 1))  # fmt: skip
    h.change_action_status(w.app, meta(), plan_id=w.plan, action_id=action, status="blocked")
    h.report_progress(w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.emea, percent=60)
    h.report_progress(w.app, meta(), plan_id=w.plan, objective_id=w.objective, unit_id=w.hq, percent=20)
    flow = flow_of(w.app, w.plan, now=datetime(2027, 1, 1, tzinfo=UTC))
    kinds = [f["kind"] for f in flow["flows"] if f["direction"] == "up"]
    assert kinds == ["adopted", "action_added", "escalation", "progress", "progress"]
    rollup = flow["objectives"][0]["rollup"]
    assert rollup["weighted_progress"] == "40.0"  # HQ 20 and EMEA 60; AMER has not taken it on
    assert rollup["share_taken_on"] == "50.0"
    assert w.app.load(GlobalAccount, w.account).version >= 1

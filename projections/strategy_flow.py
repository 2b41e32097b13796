"""Strategy flow: how each HQ objective travels down the account and how
execution comes back up.

Stored (facts only, evolved event by event on a private copy of each document):

* ``units:<account id>``: the account's unit tree and the ids of its plans. A plan
  needs the tree to tell HQ objectives from local ones and to name units, and
  units change after a plan starts (added, renamed, closed), so every unit event
  is also copied into each plan of the account.
* ``plan:<plan id>``: the plan's status, its copy of the unit tree, its objectives
  (owner unit, title, target, linked objective) each with its directives (one per
  unit it was cascaded to: from which unit, when, the answer, the local variant
  or rationale), the units' actions and progress reports, and the flows in log
  order, each with an explicit direction: ``down`` for directives, ``up`` for
  answers, new actions, action status changes (an action turning ``blocked`` is
  an ``escalation``) and progress reports.

Everything that depends on *when* one reads is derived at read time by
:func:`strategy_flow`: the nested cascade tree per HQ objective, time to respond,
roll-ups, and the gaps (late answers, local objectives linked to no HQ objective,
declined directives). The plan document alone is enough for that.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from uuid import UUID

from domain.account import GlobalAccount
from domain.base import GamAggregate, GamEvent
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.values import ActionStatus, CascadeAnswer, PlanStatus, UnitLevel
from projections.account_view.figures import ZERO, money_text, percent_text
from projections.base import OWNER_PREFIX, ViewProjection, owner_keys, owner_of
from projections.encoding import format_time, parse_time
from projections.exchange_rates import PLANNING_RATES, ExchangeRates
from projections.facts import EventFacts
from projections.ports import Document, ViewChange, ViewRecorder

PLAN_PREFIX = "plan:"
UNITS_PREFIX = "units:"
DOWN, UP = "down", "up"
AWAITING = "awaiting_response"
OWNER = "owner"
"""The state of the objective's own unit at the root of its cascade tree."""
TAKEN_ON = frozenset({CascadeAnswer.ADOPTED.value, CascadeAnswer.ADAPTED.value})
STARTED: type[GamEvent] = AccountPlan.Started
"""The event that creates a plan's document (see the projection)."""

PlanEvolve = Callable[[Document, dict[str, Any], EventFacts], None]
"""Changes a plan document (a private copy) in place, given the event's JSON payload and the event."""
UnitEvolve = Callable[[dict[str, Document], dict[str, Any]], None]
"""Changes an account's units (a private copy) in place, given the event's JSON payload."""


def plan_key(plan_id: UUID | str) -> str:
    return f"{PLAN_PREFIX}{plan_id}"


def units_key(account_id: UUID | str) -> str:
    return f"{UNITS_PREFIX}{account_id}"


# --- evolve: units ---------------------------------------------------------------------


def _unit(name: str, level: str, parent_id: str | None) -> Document:
    return {"name": name, "level": level, "parent_id": parent_id, "closed": False}


def _account_created(units: dict[str, Document], p: dict[str, Any]) -> None:
    units[p["hq_unit_id"]] = _unit(p["hq_unit_name"], UnitLevel.HQ.value, None)


def _unit_added(units: dict[str, Document], p: dict[str, Any]) -> None:
    units[p["unit_id"]] = _unit(p["name"], p["level"], p["parent_id"])


def _unit_renamed(units: dict[str, Document], p: dict[str, Any]) -> None:
    units[p["unit_id"]]["name"] = p["name"]


def _unit_closed(units: dict[str, Document], p: dict[str, Any]) -> None:
    units[p["unit_id"]]["closed"] = True


UNIT_EVOLVE: dict[type[GamEvent], UnitEvolve] = {
    GlobalAccount.Created: _account_created,
    GlobalAccount.UnitAdded: _unit_added,
    GlobalAccount.UnitRenamed: _unit_renamed,
    GlobalAccount.UnitClosed: _unit_closed,
}


# --- evolve: plans ---------------------------------------------------------------------


def _directive_source(plan: Document, objective_id: str, unit_id: str) -> str | None:
    """The unit an ``up`` flow goes back to: the one that cascaded the objective to
    ``unit_id`` (``None`` for the objective's own unit, which reports to no one)."""
    directive = plan["objectives"][objective_id]["directives"].get(unit_id)
    return directive["from_unit_id"] if directive else None


def _flow(
    plan: Document,
    e: EventFacts,
    direction: str,
    kind: str,
    objective_id: str,
    unit_id: str,
    other: str | None,
    **detail: Any,
) -> None:
    """Record one flow. ``unit_id`` is the lower unit (the addressed one going down,
    the answering or reporting one going up), ``other`` the unit above it (if any);
    ``from_unit_id``/``to_unit_id`` spell out which way it went."""
    plan["flows"].append({
        "direction": direction, "kind": kind, "objective_id": objective_id, "unit_id": unit_id,
        "from_unit_id": other if direction == DOWN else unit_id, "to_unit_id": unit_id if direction == DOWN else other,
        "at": e.at, "actor": e.actor, **detail,
    })  # fmt: skip


def _up(plan: Document, e: EventFacts, kind: str, objective_id: str, unit_id: str, **detail: Any) -> None:
    source = _directive_source(plan, objective_id, unit_id)
    _flow(plan, e, UP, kind, objective_id, unit_id, source, **detail)


def _objective_set(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
    plan["objectives"][p["objective_id"]] = {
        "unit_id": p["unit_id"], "title": p["title"], "target": p["target"], "due_date": p["due_date"],
        "linked_objective_id": p["linked_objective_id"], "set_at": e.at, "set_by": e.actor,
        "directives": {}, "actions": {}, "progress": {},
    }  # fmt: skip


def _cascaded(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
    directives = plan["objectives"][p["objective_id"]]["directives"]
    for unit_id in p["to_unit_ids"]:
        directives[unit_id] = {
            "from_unit_id": p["from_unit_id"], "cascaded_at": e.at, "cascaded_by": e.actor,
            "answer": None, "answered_at": None, "answered_by": None,
            "local_title": None, "local_target": None, "rationale": None,
        }  # fmt: skip
        _flow(plan, e, DOWN, "directive", p["objective_id"], unit_id, p["from_unit_id"])


def _answered(answer: CascadeAnswer) -> PlanEvolve:
    def evolve(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
        directive = plan["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
        directive.update(
            answer=answer.value, answered_at=e.at, answered_by=e.actor,
            local_title=p.get("local_title"), local_target=p.get("local_target"), rationale=p.get("rationale"),
        )  # fmt: skip
        _up(plan, e, answer.value, p["objective_id"], p["unit_id"], rationale=p.get("rationale"))

    return evolve


def _reconsider(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
    """Asked to answer again: the decline stays in the flows and in ``earlier_answers``."""
    directive = plan["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
    earlier = {name: directive[name] for name in ("answer", "answered_at", "answered_by", "rationale")}
    directive.setdefault("earlier_answers", []).append(earlier)
    directive.update(
        answer=None, answered_at=None, answered_by=None, local_title=None, local_target=None, rationale=None,
        reconsider_note=p["note"], cascaded_at=e.at,
    )  # fmt: skip
    _flow(plan, e, DOWN, "reconsider", p["objective_id"], p["unit_id"], directive["from_unit_id"], note=p["note"])


def _action_added(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
    plan["objectives"][p["objective_id"]]["actions"][p["action_id"]] = {
        "unit_id": p["unit_id"], "title": p["title"], "owner": p["owner"], "due_date": p["due_date"],
        "status": ActionStatus.PLANNED.value, "added_at": e.at,
        "status_at": e.at,
    }  # fmt: skip
    plan["action_objective"][p["action_id"]] = p["objective_id"]
    _up(plan, e, "action_added", p["objective_id"], p["unit_id"], action_id=p["action_id"], title=p["title"])


def _action_status(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
    """A blocked action is the unit asking for help: it flows up as an escalation."""
    objective_id = plan["action_objective"][p["action_id"]]
    action = plan["objectives"][objective_id]["actions"][p["action_id"]]
    action.update(status=p["to_status"], status_at=e.at)
    kind = "escalation" if p["to_status"] == ActionStatus.BLOCKED.value else "action_status"
    _up(plan, e, kind, objective_id, action["unit_id"], action_id=p["action_id"], from_status=p["from_status"],
        status=p["to_status"])  # fmt: skip


def _progress(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
    reports = plan["objectives"][p["objective_id"]]["progress"].setdefault(p["unit_id"], [])
    reports.append({"percent": p["percent"], "comment": p["comment"], "at": e.at, "by": e.actor})
    _up(plan, e, "progress", p["objective_id"], p["unit_id"], percent=p["percent"], comment=p["comment"])


def _status(status: PlanStatus) -> PlanEvolve:
    def evolve(plan: Document, p: dict[str, Any], e: EventFacts) -> None:
        plan["status"] = status.value

    return evolve


PLAN_EVOLVE: dict[type[GamEvent], PlanEvolve] = {
    AccountPlan.ObjectiveSet: _objective_set,
    AccountPlan.ObjectiveCascaded: _cascaded,
    AccountPlan.ObjectiveAdopted: _answered(CascadeAnswer.ADOPTED),
    AccountPlan.ObjectiveAdapted: _answered(CascadeAnswer.ADAPTED),
    AccountPlan.ObjectiveDeclined: _answered(CascadeAnswer.DECLINED),
    AccountPlan.ReconsiderationRequested: _reconsider,
    AccountPlan.ActionAdded: _action_added,
    AccountPlan.ActionStatusChanged: _action_status,
    AccountPlan.ProgressReported: _progress,
    AccountPlan.Submitted: _status(PlanStatus.SUBMITTED),
    AccountPlan.Approved: _status(PlanStatus.APPROVED),
    AccountPlan.Reopened: _status(PlanStatus.DRAFT),
}
"""Plan events after ``AccountPlan.Started`` (which creates the document, see the projection)."""

# --- evolve: deals linked to objectives ---------------------------------------------------

DealEvolve = Callable[[Document, dict[str, Any]], None]
"""Changes one linked deal (a private copy) in place, given the event's JSON payload."""


def _deal_fields(constants: dict[str, Any] | None = None, **fields: str) -> DealEvolve:
    """Set fields from payload fields (by name), and others to ``constants``."""

    def evolve(deal: Document, p: dict[str, Any]) -> None:
        for name, source in fields.items():
            deal[name] = p[source]
        deal.update(constants or {})

    return evolve


DEAL_EVOLVE: dict[type[GamEvent], DealEvolve] = {
    Deal.StageAdvanced: _deal_fields(stage="to_stage", probability="probability"),
    Deal.StageMovedBack: _deal_fields(stage="to_stage", probability="probability"),
    Deal.AmountChanged: _deal_fields(amount="to_amount"),
    Deal.CloseDateChanged: _deal_fields(expected_close="to_date"),
    Deal.ProbabilityChanged: _deal_fields(probability="to_probability"),
    Deal.Won: _deal_fields({"status": "won", "probability": 100}),
    Deal.Lost: _deal_fields({"status": "lost", "probability": 0}),
    Deal.Reopened: _deal_fields({"status": "open"}, probability="probability"),
}
"""Deal events after ``Deal.Opened`` that change what a linked deal adds to the
pipeline of its objectives (a deal's links are set when it is opened)."""

DEAL_IGNORED: tuple[type[GamEvent], ...] = (
    Deal.BuyingInfluenceAttached,
    Deal.BuyingInfluenceDetached,
    Deal.QualificationAssessed,
)
"""Deal events that change nothing the money flow reads."""

IGNORED: tuple[type[GamEvent], ...] = (
    GlobalAccount.TeamMemberAssigned,
    GlobalAccount.TeamMemberRemoved,
    GlobalAccount.Archived,
    AccountPlan.SwotEntryAdded,
    AccountPlan.SwotEntryRemoved,
    AccountPlan.WhitespaceCellSet,
    AccountPlan.BusinessReviewHeld,
)
"""Account and plan events that say nothing about how strategy flows (who is on
the team, SWOT, whitespace, reviews; an archived account's plans keep their flow)."""

IGNORED_AGGREGATES: tuple[type[GamAggregate], ...] = (Stakeholder,)
"""Aggregates whose events this view ignores wholesale (their position is still tracked).
Of deals, it keeps only those linked to objectives (``deals:<account id>``), and of
those, what the money flow reads."""

DEALS_PREFIX = "deals:"


def deals_key(account_id: UUID | str) -> str:
    return f"{DEALS_PREFIX}{account_id}"


class StrategyFlowProjection(ViewProjection):
    view_name: ClassVar[str] = "strategy_flow"
    rebuild_cost: ClassVar[float] = 21.0
    """µs of CPU per event, rebuilt alone (``python -m bench.rebuild``, events/CPU-s)."""

    @classmethod
    def reads(cls, event_class: type[GamEvent]) -> bool:
        return (
            event_class in UNIT_EVOLVE
            or event_class is STARTED
            or event_class in PLAN_EVOLVE
            or event_class is Deal.Opened
            or event_class in DEAL_EVOLVE
        )

    def keys_read(self, event: EventFacts) -> tuple[str, ...]:
        if event.event_class in UNIT_EVOLVE:
            return (units_key(event.entity),)
        if event.event_class in PLAN_EVOLVE:
            return (plan_key(event.entity),)
        if event.event_class in DEAL_EVOLVE:
            return owner_keys(event)
        return ()

    def change(self, event: EventFacts, position: int) -> ViewChange | None:
        event_class = event.event_class
        unit_evolve = UNIT_EVOLVE.get(event_class)
        if unit_evolve is not None:
            return self._unit_change(event, unit_evolve)
        if event_class is STARTED:
            return self._plan_started(event)
        plan_evolve = PLAN_EVOLVE.get(event_class)
        if plan_evolve is not None:
            return self._plan_change(event, plan_evolve)
        if event_class is Deal.Opened:
            return self._deal_opened(event)
        deal_evolve = DEAL_EVOLVE.get(event_class)
        if deal_evolve is not None:
            return self._deal_change(event, deal_evolve)
        return None  # IGNORED, and every event of IGNORED_AGGREGATES

    def _deal_opened(self, event: EventFacts) -> ViewChange | None:
        """A deal linked to objectives joins its account's linked deals (with the owner
        index, so its later events find the account); an unlinked one is not kept."""
        p = event.payload
        if not p.get("linked_objective_ids"):
            return None
        account_id, index = owner_of(self.view, event)
        key = deals_key(str(account_id))
        deals = self.view.document(key) or {"deals": {}}
        deals["deals"][event.entity] = {
            "title": p["title"], "unit_id": p["unit_id"], "amount": p["amount"], "stage": p["stage"],
            "probability": p["probability"], "expected_close": p["expected_close"], "owner": p["owner"],
            "status": "open", "linked_objective_ids": p["linked_objective_ids"],
        }  # fmt: skip
        return ViewChange(documents={**index, key: deals})

    def _deal_change(self, event: EventFacts, evolve: DealEvolve) -> ViewChange | None:
        found = self.view.document(OWNER_PREFIX + event.entity)
        if found is None:  # not linked to any objective
            return None
        key = deals_key(found["account_id"])
        deals = self.view.document(key)
        if deals is None or event.entity not in deals["deals"]:
            return None
        evolve(deals["deals"][event.entity], event.payload)
        return ViewChange(documents={key: deals})

    def _unit_change(self, event: EventFacts, evolve: UnitEvolve) -> ViewChange:
        """The document to change is changed in place: every view store hands out a
        private copy, and a catch-up batch hands out its own pending document, which
        is stored with the batch or not at all. (Copying it here made each event cost
        the size of its plan's whole history: quadratic in progress reports.)"""
        key = units_key(event.entity)
        account = self.view.document(key) or _new_units_document(event.entity)
        evolve(account["units"], event.payload)
        if "reporting_currency" in event.payload:  # the account's creation: money is read in it
            account["reporting_currency"] = event.payload["reporting_currency"]
        documents: dict[str, Document | None] = {key: account}
        for plan_id in account["plan_ids"]:
            plan = self.view.document(plan_key(plan_id))
            if plan is not None:
                plan["units"] = copy.deepcopy(account["units"])
                documents[plan_key(plan_id)] = plan
        return ViewChange(documents=documents)

    def _plan_started(self, event: EventFacts) -> ViewChange:
        """The plan starts with a copy of its account's units; the account document
        learns the plan, so later unit events reach it."""
        account_id, index = owner_of(self.view, event)
        key = units_key(str(account_id))
        account = self.view.document(key) or _new_units_document(str(account_id))
        if event.entity not in account["plan_ids"]:
            account["plan_ids"].append(event.entity)
        plan: Document = {
            "plan_id": event.entity, "account_id": str(account_id),
            "fiscal_period": event.payload.get("fiscal_period"), "status": PlanStatus.DRAFT.value,
            "units": copy.deepcopy(account["units"]), "objectives": {}, "action_objective": {}, "flows": [],
        }  # fmt: skip
        return ViewChange(documents={**index, key: account, plan_key(event.entity): plan})

    def _plan_change(self, event: EventFacts, evolve: PlanEvolve) -> ViewChange | None:
        key = plan_key(event.entity)
        plan = self.view.document(key)
        if plan is None:  # only a view rebuilt from the middle of the log; nothing to attach to
            return None
        evolve(plan, event.payload, event)
        return ViewChange(documents={key: plan})


def _new_units_document(account_id: UUID | str) -> Document:
    return {"account_id": str(account_id), "units": {}, "plan_ids": []}


# --- read --------------------------------------------------------------------------------


def read_strategy_flow(
    view: ViewRecorder,
    plan_id: UUID | str,
    *,
    now: datetime,
    answer_within_days: int = 14,
    rates: ExchangeRates = PLANNING_RATES,
) -> dict[str, Any] | None:
    """The strategy flow of one plan, or ``None`` if the view does not know the plan."""
    key = plan_key(plan_id)
    document = view.documents([key]).get(key)
    if document is None:
        return None
    account = document["account_id"]
    found = view.documents([units_key(account), deals_key(account)])
    return strategy_flow(
        document,
        now=now,
        answer_within_days=answer_within_days,
        deals=found.get(deals_key(account), {}).get("deals", {}),
        reporting=found.get(units_key(account), {}).get("reporting_currency"),
        rates=rates,
    )


def strategy_flow(
    document: Document,
    *,
    now: datetime,
    answer_within_days: int = 14,
    deals: dict[str, Document] | None = None,
    reporting: str | None = None,
    rates: ExchangeRates = PLANNING_RATES,
) -> dict[str, Any]:
    """The plan's strategy flow as of ``now``.

    Per HQ objective (one set at the HQ unit), oldest first: the nested cascade
    tree from the HQ unit to every unit the objective reached, each node with its
    state (``owner``, ``awaiting_response``, ``adopted``, ``adapted``,
    ``declined``), hours to respond (answered) or hours waiting (not yet), its
    local variant or rationale, its actions and its progress reports; the local
    objectives that support it through their links; and the roll-up:

    * ``share_taken_on``: 100 × (adopted + adapted) / addressed units, where the
      addressed units are every unit that received the objective, at any depth
      (a region that cascades it on to its countries adds them). ``None`` when
      the objective was not cascaded.
    * ``weighted_progress``: the mean, over the units holding the objective (its
      owner and every unit that adopted or adapted it), of each unit's latest
      reported percent. Each holding unit weighs the same (1), whatever its level
      or how often it reported; a holder that has not reported counts as 0, so
      silence never looks like progress (``units_reporting`` says how many did).

    An objective with a money target also has ``money`` (see :func:`money_flow`),
    in the account's ``reporting`` currency (the target's own if the view does not
    know the account's), converted at ``rates``, with the linked ``deals``.

    Percentages are decimal strings with one digit (half up). Gaps, over all of
    the plan's objectives: ``unanswered``, every directive still waiting for its
    unit's answer; ``overdue``, those waiting more than ``answer_within_days`` days
    since they were cascaded; objectives below HQ whose chain of links reaches no
    HQ objective; and declined directives with their rationale. ``flows`` lists
    every flow in time order (log order within the same instant).
    """
    units: dict[str, Document] = document["units"]
    objectives: dict[str, Document] = document["objectives"]
    allowed = timedelta(days=answer_within_days)
    hq_ids = {oid for oid, o in objectives.items() if _level(units, o["unit_id"]) == UnitLevel.HQ.value}
    roots = {oid: hq_root(oid, objectives, hq_ids) for oid in objectives}
    return {
        "plan_id": document["plan_id"],
        "account_id": document["account_id"],
        "fiscal_period": document["fiscal_period"],
        "status": document["status"],
        "as_of": format_time(now),
        "answer_within_days": answer_within_days,
        "objectives": [
            _hq_objective(oid, objectives, units, roots, now, allowed)
            | {"money": money_flow(oid, objectives, units, roots, deals or {}, reporting, rates)}
            for oid in sorted(hq_ids, key=lambda oid: (objectives[oid]["set_at"], oid))
        ],
        "gaps": {
            "unanswered": _waiting(objectives, units, now, allowed, overdue_only=False),
            "overdue": _waiting(objectives, units, now, allowed, overdue_only=True),
            "unlinked_local_objectives": [
                _objective_ref(oid, objectives[oid], units) | {"linked_objective_id": o["linked_objective_id"]}
                for oid, o in sorted(objectives.items(), key=lambda item: (item[1]["set_at"], item[0]))
                if oid not in hq_ids and roots[oid] is None
            ],
            "declined": _declined(objectives, units),
        },
        "flows": [
            {**flow, "unit": _name(units, flow["unit_id"])}
            for flow in sorted(document["flows"], key=lambda flow: str(flow["at"]))
        ],
    }


def hq_root(objective_id: str, objectives: dict[str, Document], hq_ids: set[str]) -> str | None:
    """The HQ objective an objective serves, following its chain of links (itself
    if it is one); ``None`` when the chain ends, or loops, before reaching HQ."""
    seen: set[str] = set()
    current: str | None = objective_id
    while current is not None and current in objectives and current not in seen:
        if current in hq_ids:
            return current
        seen.add(current)
        current = objectives[current]["linked_objective_id"]
    return None


def _hq_objective(
    objective_id: str,
    objectives: dict[str, Document],
    units: dict[str, Document],
    roots: dict[str, str | None],
    now: datetime,
    allowed: timedelta,
) -> dict[str, Any]:
    objective = objectives[objective_id]
    return {
        "objective_id": objective_id,
        "title": objective["title"],
        "target": objective["target"],
        "due_date": objective["due_date"],
        "owner_unit_id": objective["unit_id"],
        "owner_unit": _name(units, objective["unit_id"]),
        "set_at": objective["set_at"],
        "cascade": _node(objective["unit_id"], objective, units, now, allowed),
        "supporting_objectives": [
            _objective_ref(oid, o, units) | {"linked_objective_id": o["linked_objective_id"]}
            for oid, o in sorted(objectives.items(), key=lambda item: (item[1]["set_at"], item[0]))
            if oid != objective_id and roots[oid] == objective_id
        ],
        "rollup": rollup(objective),
    }


def _node(
    unit_id: str, objective: Document, units: dict[str, Document], now: datetime, allowed: timedelta
) -> dict[str, Any]:
    """One unit of the cascade tree and, nested, the units it passed the objective to."""
    directive: Document | None = objective["directives"].get(unit_id)
    reports: list[Document] = objective["progress"].get(unit_id, [])
    children = sorted(
        (child for child, d in objective["directives"].items() if d["from_unit_id"] == unit_id),
        key=lambda child: (_name(units, child), child),
    )
    node: dict[str, Any] = {
        "unit_id": unit_id,
        "unit": _name(units, unit_id),
        "level": _level(units, unit_id),
        "closed": bool(units.get(unit_id, {}).get("closed", False)),
        "state": OWNER if directive is None else state_of(directive),
        **_directive_fields(directive, now, allowed),
        "actions": [
            {"action_id": action_id, **action}
            for action_id, action in objective["actions"].items()
            if action["unit_id"] == unit_id
        ],
        "progress": reports,
        "latest_progress": latest_percent(reports),
        "children": [_node(child, objective, units, now, allowed) for child in children],
    }
    return node


def _directive_fields(directive: Document | None, now: datetime, allowed: timedelta) -> dict[str, Any]:
    """The directive's timing and answer as a node shows them (all ``None`` for the owner)."""
    names = ("from_unit_id", "cascaded_at", "cascaded_by", "answered_at", "answered_by", "local_title",
             "local_target", "rationale")  # fmt: skip
    if directive is None:
        return {**dict.fromkeys((*names, "hours_to_respond", "hours_waiting", "overdue")), "earlier_answers": []}
    answered = directive["answered_at"] is not None
    cascaded = parse_time(directive["cascaded_at"])
    return {
        **{name: directive[name] for name in names},
        "earlier_answers": directive.get("earlier_answers", []),
        "reconsider_note": directive.get("reconsider_note"),
        "hours_to_respond": hours_between(cascaded, parse_time(directive["answered_at"])) if answered else None,
        "hours_waiting": None if answered else hours_between(cascaded, now),
        "overdue": is_overdue(directive, now, allowed),
    }


def state_of(directive: Document) -> str:
    return str(directive["answer"] or AWAITING)


def hours_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 3600, 2)


def is_overdue(directive: Document, now: datetime, allowed: timedelta) -> bool:
    """Unanswered for longer than the units are given to answer."""
    return directive["answer"] is None and now - parse_time(directive["cascaded_at"]) > allowed


def latest_percent(reports: list[Document]) -> int | None:
    """The last report in log order is the unit's current word on its progress."""
    return int(reports[-1]["percent"]) if reports else None


def rollup(objective: Document) -> dict[str, Any]:
    """Counts per state, the share taken on and the weighted progress (rules in :func:`strategy_flow`)."""
    directives: dict[str, Document] = objective["directives"]
    counts = dict.fromkeys((*(a.value for a in CascadeAnswer), AWAITING), 0)
    for directive in directives.values():
        counts[state_of(directive)] += 1
    holders = [objective["unit_id"], *(u for u, d in directives.items() if d["answer"] in TAKEN_ON)]
    latest = [latest_percent(objective["progress"].get(unit, [])) for unit in holders]
    blocked = sum(1 for a in objective["actions"].values() if a["status"] == ActionStatus.BLOCKED.value)
    return {
        "addressed_units": len(directives),
        **counts,
        "share_taken_on": percent(counts["adopted"] + counts["adapted"], len(directives)),
        "units_holding": len(holders),
        "units_reporting": sum(1 for p in latest if p is not None),
        "weighted_progress": percent(sum(p or 0 for p in latest), 100 * len(holders)),
        "blocked_actions": blocked,
    }


def percent(part: int, whole: int) -> str | None:
    """``100 × part / whole`` with one decimal (half up), or ``None`` when there is no whole."""
    if whole == 0:
        return None
    return str((Decimal(100 * part) / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _waiting(
    objectives: dict[str, Document],
    units: dict[str, Document],
    now: datetime,
    allowed: timedelta,
    *,
    overdue_only: bool,
) -> list[dict[str, Any]]:
    """Directives still waiting for their unit's answer (only those past the window, if asked)."""
    late = [
        {
            "objective_id": oid, "objective": o["title"], "unit_id": unit_id, "unit": _name(units, unit_id),
            "from_unit_id": d["from_unit_id"], "from_unit": _name(units, d["from_unit_id"]),
            "cascaded_at": d["cascaded_at"], "days_waiting": (now - parse_time(d["cascaded_at"])).days,
            "overdue": is_overdue(d, now, allowed),
        }
        for oid, o in objectives.items()
        for unit_id, d in o["directives"].items()
        if d["answer"] is None and (is_overdue(d, now, allowed) or not overdue_only)
    ]  # fmt: skip
    return sorted(late, key=lambda gap: (gap["cascaded_at"], gap["unit"], gap["objective_id"]))


def money_flow(
    objective_id: str,
    objectives: dict[str, Document],
    units: dict[str, Document],
    roots: dict[str, str | None],
    deals: dict[str, Document],
    reporting: str | None,
    rates: ExchangeRates,
) -> dict[str, Any] | None:
    """How far the local answers and the linked deals cover an HQ objective's money
    target, in the reporting currency; ``None`` for a target that is not money.

    * ``committed``: the targets the units the owner cascaded to (the first level)
      took on: an adapted unit's local target, an adopted unit's the objective's own
      (it holds the target of the unit that gave it, as the account view's roll-ups
      read it). A unit further down answers to its region, whose target covers it,
      so it is not added again. An adapted target that is not money adds nothing.
    * ``pipeline``/``weighted_pipeline``: the open deals linked to the objective or
      to an objective serving it (its chain of links reaches it); weighted is
      amount × probability. ``linked_deals`` lists every linked deal, won and lost too.
    * ``*_coverage``: 100 × that sum / the target, one decimal.
    * ``rates_used``: each conversion's rate, read as "<rate> <reporting> per <currency>".
    """
    objective = objectives[objective_id]
    target = objective["target"]
    if not target.get("currency"):
        return None
    currency = reporting or target["currency"]
    used: dict[str, Decimal] = {}

    def convert(amount: Decimal, from_currency: str) -> Decimal:
        value, rate = rates.convert(amount, from_currency, currency)
        if from_currency != currency:
            used[from_currency] = rate
        return value

    target_value = convert(Decimal(target["value"]), target["currency"])
    committed, by_unit = ZERO, []
    for unit_id, d in sorted(objective["directives"].items(), key=lambda item: (_name(units, item[0]), item[0])):
        if d["from_unit_id"] != objective["unit_id"] or d["answer"] not in TAKEN_ON:
            continue
        held = d["local_target"] if d["answer"] == CascadeAnswer.ADAPTED.value else target
        value = convert(Decimal(held["value"]), held["currency"]) if held and held.get("currency") else None
        committed += value or ZERO
        by_unit.append({
            "unit_id": unit_id, "unit": _name(units, unit_id), "answer": d["answer"], "target": held,
            "in_reporting_currency": None if value is None else money_text(value),
        })  # fmt: skip
    serving = {oid for oid, root in roots.items() if root == objective_id}
    linked, pipeline, weighted = [], ZERO, ZERO
    for deal_id, deal in sorted(deals.items(), key=lambda item: (item[1]["title"], item[0])):
        if serving.isdisjoint(deal["linked_objective_ids"]):
            continue
        amount = convert(Decimal(deal["amount"]["amount"]), deal["amount"]["currency"])
        deal_weighted = amount * Decimal(deal["probability"]) / 100
        if deal["status"] == "open":
            pipeline += amount
            weighted += deal_weighted
        linked.append({
            "deal_id": deal_id, **{k: deal[k] for k in ("title", "unit_id", "stage", "probability", "status",
                                                         "expected_close", "owner", "amount")},
            "unit": _name(units, deal["unit_id"]), "in_reporting_currency": money_text(amount),
            "weighted_in_reporting_currency": money_text(deal_weighted),
        })  # fmt: skip
    return {
        "reporting_currency": currency,
        "target": money_text(target_value),
        "committed": money_text(committed),
        "committed_coverage": percent_text(committed, target_value),
        "committed_by_unit": by_unit,
        "pipeline": money_text(pipeline),
        "weighted_pipeline": money_text(weighted),
        "pipeline_coverage": percent_text(weighted, target_value),
        "linked_deals": linked,
        "rates_used": [
            {"currency": code, "rate": str(rate), "reads": f"{rate} {currency} per {code}"}
            for code, rate in sorted(used.items())
        ],
        "rates": rates.describe(),
    }


def _declined(objectives: dict[str, Document], units: dict[str, Document]) -> list[dict[str, Any]]:
    declined = [
        {
            "objective_id": oid, "objective": o["title"], "unit_id": unit_id, "unit": _name(units, unit_id),
            "from_unit_id": d["from_unit_id"], "rationale": d["rationale"], "answered_at": d["answered_at"],
            "answered_by": d["answered_by"],
        }
        for oid, o in objectives.items()
        for unit_id, d in o["directives"].items()
        if d["answer"] == CascadeAnswer.DECLINED.value
    ]  # fmt: skip
    return sorted(declined, key=lambda gap: (gap["answered_at"], gap["unit"], gap["objective_id"]))


def _objective_ref(objective_id: str, objective: Document, units: dict[str, Document]) -> dict[str, Any]:
    return {
        "objective_id": objective_id,
        "title": objective["title"],
        "unit_id": objective["unit_id"],
        "unit": _name(units, objective["unit_id"]),
        "level": _level(units, objective["unit_id"]),
    }


def _name(units: dict[str, Document], unit_id: str) -> str:
    return str(units.get(unit_id, {}).get("name", unit_id))


def _level(units: dict[str, Document], unit_id: str) -> str | None:
    level = units.get(unit_id, {}).get("level")
    return None if level is None else str(level)

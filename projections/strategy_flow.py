"""Strategy flow: how each HQ objective travels down the account and how
execution comes back up.

Stored: per plan (``plan:<id>``) its objectives with every directive (from unit →
to unit, answer, timing, who), the actions and progress reports of the units,
and the flows in time order, each with an explicit direction: ``down`` for
directives, ``up`` for answers, progress and action changes (an action turning
``blocked`` is an escalation). Per account (``units:<id>``) the unit tree.
Derived at read time by :func:`strategy_flow`: the cascade tree per HQ
objective, time to respond, roll-ups, and the gaps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.base import GamEvent
from projections.base import ViewProjection, event_type_of, payload_of
from projections.encoding import format_time, parse_time, to_json_value
from projections.ports import Document, ViewChange, ViewRecorder

Evolve = Callable[[Document, dict[str, Any], GamEvent], None]


def plan_key(plan_id: UUID | str) -> str:
    return f"plan:{plan_id}"


def units_key(account_id: UUID | str) -> str:
    return f"units:{account_id}"


def _flow(
    plan: Document, e: GamEvent, direction: str, kind: str, objective_id: str, unit_id: str, **detail: Any
) -> None:
    plan["flows"].append({
        "direction": direction, "kind": kind, "objective_id": objective_id, "unit_id": unit_id,
        "at": format_time(e.timestamp), "actor": e.actor, **detail,
    })  # fmt: skip


def _objective_set(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
    plan["objectives"][p["objective_id"]] = {
        "unit_id": p["unit_id"], "title": p["title"], "target": p["target"], "due_date": p["due_date"],
        "linked_objective_id": p["linked_objective_id"], "set_at": format_time(e.timestamp),
        "directives": {}, "actions": {}, "progress": {},
    }  # fmt: skip


def _cascaded(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
    objective = plan["objectives"][p["objective_id"]]
    for unit in p["to_unit_ids"]:
        objective["directives"][unit] = {
            "from_unit_id": p["from_unit_id"], "cascaded_at": format_time(e.timestamp), "cascaded_by": e.actor,
            "answer": None, "answered_at": None, "answered_by": None, "rationale": None, "local_title": None,
            "local_target": None,
        }  # fmt: skip
        _flow(plan, e, "down", "directive", p["objective_id"], unit, from_unit_id=p["from_unit_id"])


def _answered(answer: str) -> Evolve:
    def evolve(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
        directive = plan["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
        directive.update(answer=answer, answered_at=format_time(e.timestamp), answered_by=e.actor,
                         rationale=p.get("rationale"), local_title=p.get("local_title"),
                         local_target=p.get("local_target"))  # fmt: skip
        _flow(plan, e, "up", answer, p["objective_id"], p["unit_id"], rationale=p.get("rationale"))

    return evolve


def _action_added(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
    plan["objectives"][p["objective_id"]]["actions"][p["action_id"]] = {
        "unit_id": p["unit_id"], "title": p["title"], "owner": p["owner"], "due_date": p["due_date"],
        "status": "planned",
    }  # fmt: skip
    plan["action_objective"][p["action_id"]] = p["objective_id"]
    _flow(plan, e, "up", "action_added", p["objective_id"], p["unit_id"], action_id=p["action_id"])


def _action_status(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
    objective_id = plan["action_objective"][p["action_id"]]
    action = plan["objectives"][objective_id]["actions"][p["action_id"]]
    action["status"] = p["to_status"]
    kind = "escalation" if p["to_status"] == "blocked" else "action_status"
    _flow(plan, e, "up", kind, objective_id, action["unit_id"], action_id=p["action_id"], status=p["to_status"])


def _progress(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
    reports = plan["objectives"][p["objective_id"]]["progress"].setdefault(p["unit_id"], [])
    reports.append({"percent": p["percent"], "comment": p["comment"], "at": format_time(e.timestamp), "by": e.actor})
    _flow(plan, e, "up", "progress", p["objective_id"], p["unit_id"], percent=p["percent"])


def _status(status: str) -> Evolve:
    def evolve(plan: Document, p: dict[str, Any], e: GamEvent) -> None:
        plan["status"] = status

    return evolve


PLAN_EVOLVE: dict[str, Evolve] = {
    "AccountPlan.ObjectiveSet": _objective_set,
    "AccountPlan.ObjectiveCascaded": _cascaded,
    "AccountPlan.ObjectiveAdopted": _answered("adopted"),
    "AccountPlan.ObjectiveAdapted": _answered("adapted"),
    "AccountPlan.ObjectiveDeclined": _answered("declined"),
    "AccountPlan.ActionAdded": _action_added,
    "AccountPlan.ActionStatusChanged": _action_status,
    "AccountPlan.ProgressReported": _progress,
    "AccountPlan.Submitted": _status("submitted"),
    "AccountPlan.Approved": _status("approved"),
    "AccountPlan.Reopened": _status("draft"),
}

UNIT_EVOLVE: dict[str, Callable[[Document, dict[str, Any]], None]] = {
    "GlobalAccount.Created": lambda units, p: units.update(
        {p["hq_unit_id"]: {"name": p["hq_unit_name"], "level": "hq", "parent_id": None, "closed": False}}
    ),
    "GlobalAccount.UnitAdded": lambda units, p: units.update(
        {p["unit_id"]: {"name": p["name"], "level": p["level"], "parent_id": p["parent_id"], "closed": False}}
    ),
    "GlobalAccount.UnitRenamed": lambda units, p: units[p["unit_id"]].update(name=p["name"]),
    "GlobalAccount.UnitClosed": lambda units, p: units[p["unit_id"]].update(closed=True),
}

IGNORED = frozenset({
    "GlobalAccount.TeamMemberAssigned", "GlobalAccount.TeamMemberRemoved", "GlobalAccount.Archived",
    "AccountPlan.SwotEntryAdded", "AccountPlan.SwotEntryRemoved", "AccountPlan.WhitespaceCellSet",
    "AccountPlan.BusinessReviewHeld",
})  # fmt: skip
"""Account and plan events that say nothing about the flow of strategy (Stakeholder
and Deal events are ignored wholesale)."""


class StrategyFlowProjection(ViewProjection):
    view_name: ClassVar[str] = "strategy_flow"

    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        if not isinstance(event, GamEvent):
            return ViewChange()
        event_type = event_type_of(event)
        if event_type in UNIT_EVOLVE:
            key = units_key(event.originator_id)
            document = self.view.documents([key]).get(key) or {"units": {}}
            UNIT_EVOLVE[event_type](document["units"], to_json_value(payload_of(event)))
            return ViewChange(documents={key: document})
        if event_type == "AccountPlan.Started":
            plan: Document = {
                "plan_id": str(event.originator_id), "account_id": str(getattr(event, "account_id", "")),
                "fiscal_period": getattr(event, "fiscal_period", ""), "status": "draft", "objectives": {},
                "action_objective": {}, "flows": [],
            }  # fmt: skip
            return ViewChange(documents={plan_key(event.originator_id): plan})
        if event_type in PLAN_EVOLVE:
            key = plan_key(event.originator_id)
            stored = self.view.documents([key]).get(key)
            if stored is None:
                return ViewChange()
            PLAN_EVOLVE[event_type](stored, to_json_value(payload_of(event)), event)
            return ViewChange(documents={key: stored})
        return ViewChange()


# --- read ------------------------------------------------------------------------------


def read_strategy_flow(
    view: ViewRecorder, plan_id: UUID, *, now: datetime, answer_within_days: int = 14
) -> dict[str, Any] | None:
    plan = view.documents([plan_key(plan_id)]).get(plan_key(plan_id))
    if plan is None:
        return None
    units = view.documents([units_key(plan["account_id"])]).get(units_key(plan["account_id"]), {"units": {}})["units"]
    return strategy_flow(plan, units, now=now, answer_within_days=answer_within_days)


def strategy_flow(
    plan: Document, units: dict[str, Document], *, now: datetime, answer_within_days: int = 14
) -> dict[str, Any]:
    objectives: dict[str, Document] = plan["objectives"]
    hq_objectives = {oid: o for oid, o in objectives.items() if units.get(o["unit_id"], {}).get("level") == "hq"}
    return {
        "plan_id": plan["plan_id"],
        "fiscal_period": plan["fiscal_period"],
        "status": plan["status"],
        "objectives": [
            _objective_flow(oid, objective, units) for oid, objective in sorted(hq_objectives.items(), key=_by_set_at)
        ],
        "gaps": {
            "unanswered": _unanswered(objectives, units, now, answer_within_days),
            "unlinked_local_objectives": _unlinked(objectives, set(hq_objectives), units),
            "declined": [
                {"objective": o["title"], "unit": _name(units, u), "rationale": d["rationale"], "at": d["answered_at"]}
                for o in objectives.values()
                for u, d in sorted(o["directives"].items())
                if d["answer"] == "declined"
            ],
        },
        "answer_within_days": answer_within_days,
        "flows": plan["flows"],
    }


def _by_set_at(item: tuple[str, Document]) -> str:
    return str(item[1]["set_at"])


def _name(units: dict[str, Document], unit_id: str) -> str:
    return str(units.get(unit_id, {}).get("name", unit_id))


def _latest(reports: list[Document]) -> int | None:
    return int(reports[-1]["percent"]) if reports else None


def _objective_flow(objective_id: str, objective: Document, units: dict[str, Document]) -> dict[str, Any]:
    directives: dict[str, Document] = objective["directives"]

    def node(unit_id: str, directive: Document | None) -> dict[str, Any]:
        hours = None
        if directive and directive["answered_at"]:
            delta = parse_time(directive["answered_at"]) - parse_time(directive["cascaded_at"])
            hours = round(delta.total_seconds() / 3600, 2)
        return {
            "unit_id": unit_id, "unit": _name(units, unit_id), "level": units.get(unit_id, {}).get("level"),
            "state": "owner" if directive is None else (directive["answer"] or "awaiting_response"),
            "cascaded_at": directive and directive["cascaded_at"],
            "answered_at": directive and directive["answered_at"],
            "hours_to_respond": hours, "rationale": directive and directive["rationale"],
            "local_title": directive and directive["local_title"],
            "actions": [a for a in objective["actions"].values() if a["unit_id"] == unit_id],
            "progress": _latest(objective["progress"].get(unit_id, [])),
            "children": [node(child, d) for child, d in sorted(directives.items()) if d["from_unit_id"] == unit_id],
        }  # fmt: skip

    counts = dict.fromkeys(("adopted", "adapted", "declined", "awaiting_response"), 0)
    for directive in directives.values():
        counts[directive["answer"] or "awaiting_response"] += 1
    holders = [objective["unit_id"], *(u for u, d in directives.items() if d["answer"] in ("adopted", "adapted"))]
    progress = [_latest(objective["progress"].get(u, [])) or 0 for u in holders]
    addressed = len(directives)
    return {
        "objective_id": objective_id,
        "title": objective["title"],
        "target": objective["target"],
        "owner_unit": _name(units, objective["unit_id"]),
        "cascade": node(objective["unit_id"], None),
        "rollup": {
            "addressed_units": addressed,
            **counts,
            "share_taken_on": None if not addressed else _percent(counts["adopted"] + counts["adapted"], addressed),
            "weighted_progress": _percent(sum(progress), 100 * len(progress)),
        },
    }


def _percent(part: int, whole: int) -> str:
    """Weighted progress: the mean of the latest percent reported by each unit that
    holds the objective (its owner and every unit that adopted or adapted it), each
    unit counting once and a unit that has not reported counting as 0."""
    return str((Decimal(100 * part) / whole).quantize(Decimal("0.1")))


def _unanswered(
    objectives: dict[str, Document], units: dict[str, Document], now: datetime, days: int
) -> list[dict[str, Any]]:
    cutoff = now - timedelta(days=days)
    return [
        {"objective": o["title"], "unit": _name(units, u), "cascaded_at": d["cascaded_at"],
         "days_waiting": (now - parse_time(d["cascaded_at"])).days}
        for o in objectives.values()
        for u, d in sorted(o["directives"].items())
        if d["answer"] is None and parse_time(d["cascaded_at"]) < cutoff
    ]  # fmt: skip


def _unlinked(objectives: dict[str, Document], hq: set[str], units: dict[str, Document]) -> list[dict[str, Any]]:
    """Objectives below HQ whose chain of links does not reach an HQ objective."""

    def reaches_hq(objective_id: str | None, seen: frozenset[str] = frozenset()) -> bool:
        if objective_id is None or objective_id in seen or objective_id not in objectives:
            return False
        return objective_id in hq or reaches_hq(objectives[objective_id]["linked_objective_id"], seen | {objective_id})

    return [
        {"objective_id": oid, "title": o["title"], "unit": _name(units, o["unit_id"])}
        for oid, o in sorted(objectives.items())
        if oid not in hq and not reaches_hq(o["linked_objective_id"])
    ]

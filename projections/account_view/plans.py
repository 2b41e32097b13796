"""The plans section: each plan's objectives per owning unit with their cascade
state, actions (and which are overdue), SWOT and business reviews."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

from domain.values import CascadeAnswer, SwotKind
from projections.account_view.units import in_tree_order, unit_label
from projections.ports import Document

AWAITING = "awaiting_response"
CASCADE_STATES = (*(answer.value for answer in CascadeAnswer), AWAITING)


def cascade_counts(directives: Iterable[Document]) -> dict[str, int]:
    """How the units an objective was cascaded to answered: adopted, adapted,
    declined, and awaiting_response (not answered yet)."""
    counts = Counter(d["answer"] or AWAITING for d in directives)
    return {state: counts[state] for state in CASCADE_STATES}


def objective_summary(objective_id: str, objective: Document, units: dict[str, Document]) -> dict[str, Any]:
    directives = objective["directives"]
    own_progress = objective["progress"].get(objective["unit_id"])
    return {
        "objective_id": objective_id,
        "title": objective["title"],
        "description": objective["description"],
        "target": objective["target"],
        "due_date": objective["due_date"],
        "linked_objective_id": objective["linked_objective_id"],
        "progress_percent": own_progress["percent"] if own_progress else None,
        "cascade": cascade_counts(directives.values()),
        "directives": [
            {**unit_label(units, unit_id), **{k: directives[unit_id][k] for k in sorted(directives[unit_id])}}
            for unit_id in in_tree_order(directives, units)
        ],
    }


def action_row(action_id: str, action: Document, units: dict[str, Document], today: date) -> dict[str, Any]:
    """An action, and whether it is overdue (past its due date and not done)."""
    overdue = action["status"] != "done" and date.fromisoformat(action["due_date"]) < today
    return {"action_id": action_id, **action, **unit_label(units, action["unit_id"]), "overdue": overdue}


def plan_summary(plan_id: str, plan: Document, units: dict[str, Document], *, today: date) -> dict[str, Any]:
    """One plan: its objectives per owning unit (with their cascade state), actions,
    SWOT and reviews."""
    by_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for objective_id, objective in sorted(plan["objectives"].items(), key=lambda i: (i[1]["title"], i[0])):
        by_unit[objective["unit_id"]].append(objective_summary(objective_id, objective, units))
    actions = [
        action_row(action_id, action, units, today)
        for action_id, action in sorted(plan["actions"].items(), key=lambda i: (i[1]["due_date"], i[1]["title"], i[0]))
    ]
    swot: dict[str, list[dict[str, Any]]] = {kind.value: [] for kind in SwotKind}
    for entry_id, entry in sorted(plan["swot"].items(), key=lambda i: (i[1]["text"], i[0])):
        swot[entry["kind"]].append({"entry_id": entry_id, "text": entry["text"], **unit_label(units, entry["unit_id"])})
    return {
        "plan_id": plan_id,
        "fiscal_period": plan["fiscal_period"],
        "status": plan["status"],
        "baseline_version": plan["baseline_version"],
        "objectives_by_unit": {
            unit_id: {**unit_label(units, unit_id), "objectives": by_unit[unit_id]}
            for unit_id in in_tree_order(by_unit, units)
        },
        "cascade": cascade_counts(d for o in plan["objectives"].values() for d in o["directives"].values()),
        "actions": actions,
        "actions_by_status": dict(sorted(Counter(a["status"] for a in actions).items())),
        "overdue_actions": sum(1 for a in actions if a["overdue"]),
        "swot": swot,
        "reviews": [
            {"review_id": review_id, **review}
            for review_id, review in sorted(plan["reviews"].items(), key=lambda i: (i[1]["held_on"], i[0]))
        ],
    }

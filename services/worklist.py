"""A person's worklist: what waits for them today, across every account whose team
they are on.

Served from the account view: the member index (``member:<who>``) names their
accounts, and each account's stored document holds the facts (directives and
their answers, actions and owners, deals and close dates, stakeholders and their
last contact, plans and who submitted them). Nothing is replayed, so the answer
costs one document read per account, whatever the accounts' histories.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from domain.values import ActionStatus, BuyingRole, TeamRole
from infra.sealed_reads import PersonalOpener, open_people
from projections.account_view.evolve import account_key, member_key
from projections.encoding import parse_time
from projections.ports import Document, ViewRecorder

ANSWER_WITHIN_DAYS = 14
"""Units are given this long to answer a directive (as the strategy flow counts overdue)."""
DEFAULT_STALE_DAYS = 30
KEY_INFLUENCE = 4
KEY_ROLES = frozenset({BuyingRole.DECISION_MAKER.value, BuyingRole.CHAMPION.value})
ANSWERING_ROLES = frozenset({TeamRole.REGIONAL_AM.value, TeamRole.LOCAL_AM.value})


@dataclass(frozen=True)
class WorklistQuery:
    member: str
    now: datetime
    approver_roles: frozenset[str]
    stale_days: int = DEFAULT_STALE_DAYS


def worklist(view: ViewRecorder, query: WorklistQuery, opener: PersonalOpener | None = None) -> dict[str, Any]:
    """``opener`` opens the people's names the view keeps sealed (else they stay sealed)."""
    index = view.document(member_key(query.member)) or {"accounts": {}}
    roles_by_account: dict[str, list[str]] = index["accounts"]
    documents = view.documents([account_key(a) for a in sorted(roles_by_account)])
    items: dict[str, list[dict[str, Any]]] = {
        "directives_awaiting_answer": [],
        "overdue_actions": [],
        "deals_past_expected_close": [],
        "stakeholders_not_contacted": [],
        "plans_awaiting_approval": [],
    }
    for key, document in documents.items():
        if document.get("account", {}).get("archived"):
            continue
        if opener is not None:
            document = open_people(document, opener)
        _one_account(document, query, set(roles_by_account[key.removeprefix("account:")]), items)
    for rows in items.values():
        rows.sort(key=lambda row: (row.get("sort") or "", row["account_id"]))
        for row in rows:
            row.pop("sort", None)
    return {
        "member": query.member,
        "as_of": query.now.isoformat(),
        "stale_days": query.stale_days,
        "accounts": len(documents),
        **items,
    }


def _one_account(document: Document, query: WorklistQuery, roles: set[str], items: dict[str, list[Any]]) -> None:
    account = document["account"]
    base = {"account_id": account["id"], "account": account["name"]}
    units = document["units"]
    today = query.now.date()
    my_units = {
        a["unit_id"] for a in document["team"].values() if a["member"] == query.member and a["role"] in ANSWERING_ROLES
    }
    approver = bool(roles & query.approver_roles)
    for plan_id, plan in document["plans"].items():
        in_plan = {**base, "plan_id": plan_id, "fiscal_period": plan["fiscal_period"]}
        for objective_id, objective in plan["objectives"].items():
            for unit_id, directive in objective["directives"].items():
                if directive["answer"] is None and unit_id in my_units:
                    items["directives_awaiting_answer"].append(
                        _directive(in_plan, objective_id, objective, unit_id, directive, units, query.now)
                    )
        for action_id, action in plan["actions"].items():
            mine_open = action["owner"] == query.member and action["status"] != ActionStatus.DONE.value
            if mine_open and date.fromisoformat(action["due_date"]) < today:
                items["overdue_actions"].append(
                        {
                            **in_plan, "action_id": action_id, "title": action["title"], "status": action["status"],
                            "due_date": action["due_date"], "unit": _name(units, action["unit_id"]),
                            "days_overdue": (today - date.fromisoformat(action["due_date"])).days,
                            "sort": action["due_date"],
                        }
                    )  # fmt: skip
        if approver and plan["status"] == "submitted" and plan.get("submitted_by") != query.member:
            items["plans_awaiting_approval"].append({**in_plan, "submitted_by": plan.get("submitted_by")})
    for deal_id, deal in document["deals"].items():
        if deal["owner"] == query.member and deal["status"] == "open" and deal["expected_close"] < today.isoformat():
            items["deals_past_expected_close"].append(
                {
                    **base, "deal_id": deal_id, "title": deal["title"], "stage": deal["stage"],
                    "expected_close": deal["expected_close"], "unit": _name(units, deal["unit_id"]),
                    "days_past": (today - date.fromisoformat(deal["expected_close"])).days,
                    "sort": deal["expected_close"],
                }
            )  # fmt: skip
    stale_before = query.now - timedelta(days=query.stale_days)
    for person_id, person in document["stakeholders"].items():
        if person["relationship_owner"] != query.member or person.get("left_on") or person.get("erased"):
            continue
        if not _key(person):
            continue
        last = person["last_contact"]
        if last is None or parse_time(last) < stale_before:
            items["stakeholders_not_contacted"].append(
                {
                    **base, "stakeholder_id": person_id, "name": person["personal"]["name"], "title": person["title"],
                    "last_contact": last,
                    "days_since_contact": None if last is None else (query.now - parse_time(last)).days,
                    "sort": last or "",
                }
            )  # fmt: skip


def _key(person: Document) -> bool:
    """A key person: influence rated 4 or 5 (of 5), or the one who decides or champions us."""
    return (person["influence"] or 0) >= KEY_INFLUENCE or person["buying_role"] in KEY_ROLES


def _directive(
    in_plan: dict[str, Any],
    objective_id: str,
    objective: Document,
    unit_id: str,
    directive: Document,
    units: Document,
    now: datetime,
) -> dict[str, Any]:
    """Waiting since the cascade, or since the unit was asked to reconsider."""
    since = parse_time(directive.get("reconsider_asked_at") or directive["cascaded_at"])
    answer_due = since + timedelta(days=ANSWER_WITHIN_DAYS)
    return {
        **in_plan,
        "objective_id": objective_id,
        "objective": objective["title"],
        "unit_id": unit_id,
        "unit": _name(units, unit_id),
        "from_unit": _name(units, directive["from_unit_id"]),
        "waiting_since": since.isoformat(),
        "days_waiting": (now - since).days,
        "answer_due": answer_due.date().isoformat(),
        "overdue": now > answer_due,
        "objective_due_date": objective["due_date"],
        "reconsider_note": directive.get("reconsider_note"),
        "sort": since.isoformat(),
    }


def _name(units: Document, unit_id: str) -> str | None:
    unit = units.get(unit_id)
    return None if unit is None else str(unit["name"])


def counts(answer: dict[str, Any], sections: Iterable[str] | None = None) -> dict[str, int]:
    """How many items each section holds (for the CLI's summary)."""
    names = sections or [k for k, v in answer.items() if isinstance(v, list)]
    return {name: len(answer[name]) for name in names}

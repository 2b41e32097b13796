"""Account view: the account at a glance, for the GAM.

Stored: one document per account (``account:<id>``), the normalised current
state of its units, team, plans, stakeholders and deals, evolved event by event.
Derived at read time by :func:`read_account_view` (so "now" and the exchange
rates are the reader's): the unit tree, objectives and cascade state per unit,
the stakeholder map with coverage and relationship health, the whitespace grid,
the pipeline by stage, unit and level (weighted and unweighted, in deal and
reporting currency), roll-ups up the tree against targets, and the win rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.base import GamEvent
from projections.base import ViewProjection, event_type_of, owner_of, payload_of
from projections.encoding import format_time, parse_time, to_json_value
from projections.exchange_rates import PLANNING_RATES, ExchangeRates
from projections.ports import Document, ViewChange, ViewRecorder

KEY_PREFIX = "account:"
LEVELS = ("hq", "region", "country", "local")
Evolve = Callable[[Document, dict[str, Any], GamEvent], None]


def account_key(account_id: UUID | str) -> str:
    return f"{KEY_PREFIX}{account_id}"


def empty_document(account_id: UUID) -> Document:
    return {"account": {"id": str(account_id)}, "units": {}, "team": {}, "plans": {}, "stakeholders": {}, "deals": {}}


# --- evolve: one function per event type -------------------------------------------


def _account_created(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["account"].update(
        {k: p[k] for k in ("name", "industry", "hq_country", "reporting_currency", "tier", "governance_model")}
    )
    doc["account"]["archived"] = False
    doc["units"][p["hq_unit_id"]] = {
        "name": p["hq_unit_name"], "level": "hq", "parent_id": None, "code": p["hq_country"], "closed": False,
    }  # fmt: skip


def _unit_added(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["units"][p["unit_id"]] = {
        "name": p["name"], "level": p["level"], "parent_id": p["parent_id"], "code": p["code"], "closed": False,
    }  # fmt: skip


def _team_key(p: dict[str, Any]) -> str:
    return f"{p['member']}|{p['unit_id']}|{p['role']}"


def _plan(doc: Document, e: GamEvent) -> Document:
    plan: Document = doc["plans"][str(e.originator_id)]
    return plan


def _plan_started(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["plans"][str(e.originator_id)] = {
        "fiscal_period": p["fiscal_period"], "status": "draft", "baseline_version": None, "objectives": {},
        "actions": {}, "swot": {}, "whitespace": {}, "reviews": {},
    }  # fmt: skip


def _objective_set(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["objectives"][p["objective_id"]] = {
        "unit_id": p["unit_id"], "title": p["title"], "target": p["target"], "due_date": p["due_date"],
        "linked_objective_id": p["linked_objective_id"], "directives": {}, "progress": {},
    }  # fmt: skip


def _cascaded(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    directives = _plan(doc, e)["objectives"][p["objective_id"]]["directives"]
    for unit in p["to_unit_ids"]:
        directives[unit] = {"from_unit_id": p["from_unit_id"], "answer": None, "cascaded_at": format_time(e.timestamp)}


def _answered(answer: str) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        directive = _plan(doc, e)["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
        directive.update(answer=answer, answered_at=format_time(e.timestamp), rationale=p.get("rationale"))
        if answer == "adapted":
            directive.update(local_title=p["local_title"], local_target=p["local_target"])

    return evolve


def _action_added(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["actions"][p["action_id"]] = {
        "objective_id": p["objective_id"], "unit_id": p["unit_id"], "title": p["title"], "owner": p["owner"],
        "due_date": p["due_date"], "status": "planned",
    }  # fmt: skip


def _progress(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["objectives"][p["objective_id"]]["progress"][p["unit_id"]] = {
        "percent": p["percent"], "comment": p["comment"], "at": format_time(e.timestamp),
    }  # fmt: skip


def _plan_status(status: str) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        plan = _plan(doc, e)
        plan["status"] = status
        if "baseline_version" in p:
            plan["baseline_version"] = p["baseline_version"]

    return evolve


def _person(doc: Document, e: GamEvent) -> Document:
    person: Document = doc["stakeholders"][str(e.originator_id)]
    return person


def _identified(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["stakeholders"][str(e.originator_id)] = {
        "unit_id": p["unit_id"], "title": p["title"], "personal": {"name": p["personal"]["name"]},
        "buying_role": None, "influence": None, "sentiment": None, "relationship_owner": None, "reports_to": None,
        "last_contact": None, "interactions": 0, "left_on": None,
    }  # fmt: skip


def _person_field(field: str, source: str) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        _person(doc, e)[field] = p[source]

    return evolve


def _interaction(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    person = _person(doc, e)
    person["interactions"] += 1
    if person["last_contact"] is None or p["occurred_at"] > person["last_contact"]:
        person["last_contact"] = p["occurred_at"]


def _deal(doc: Document, e: GamEvent) -> Document:
    deal: Document = doc["deals"][str(e.originator_id)]
    return deal


def _deal_opened(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["deals"][str(e.originator_id)] = {
        "unit_id": p["unit_id"], "title": p["title"], "amount": p["amount"], "stage": p["stage"],
        "probability": p["probability"], "expected_close": p["expected_close"], "owner": p["owner"],
        "products": p["products"], "linked_objective_ids": p["linked_objective_ids"], "status": "open",
        "final_amount": None, "loss_reason": None, "competitor": None, "influences": {}, "qualification": {},
    }  # fmt: skip


def _deal_fields(**mapping: str | Callable[[dict[str, Any]], Any]) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        deal = _deal(doc, e)
        for field, source in mapping.items():
            deal[field] = source(p) if callable(source) else p[source]

    return evolve


def _constant(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda _: value


EVOLVE: dict[str, Evolve] = {
    "GlobalAccount.Created": _account_created,
    "GlobalAccount.UnitAdded": _unit_added,
    "GlobalAccount.UnitRenamed": lambda d, p, e: d["units"][p["unit_id"]].update(name=p["name"]),
    "GlobalAccount.UnitClosed": lambda d, p, e: d["units"][p["unit_id"]].update(closed=True),
    "GlobalAccount.TeamMemberAssigned": lambda d, p, e: d["team"].update({_team_key(p): p}),
    "GlobalAccount.TeamMemberRemoved": lambda d, p, e: d["team"].pop(_team_key(p), None),
    "GlobalAccount.Archived": lambda d, p, e: d["account"].update(archived=True),
    "AccountPlan.Started": _plan_started,
    "AccountPlan.ObjectiveSet": _objective_set,
    "AccountPlan.ObjectiveCascaded": _cascaded,
    "AccountPlan.ObjectiveAdopted": _answered("adopted"),
    "AccountPlan.ObjectiveAdapted": _answered("adapted"),
    "AccountPlan.ObjectiveDeclined": _answered("declined"),
    "AccountPlan.ActionAdded": _action_added,
    "AccountPlan.ActionStatusChanged": lambda d, p, e: _plan(d, e)["actions"][p["action_id"]].update(
        status=p["to_status"]
    ),
    "AccountPlan.ProgressReported": _progress,
    "AccountPlan.SwotEntryAdded": lambda d, p, e: _plan(d, e)["swot"].update(
        {p["entry_id"]: {"kind": p["kind"], "text": p["text"], "unit_id": p["unit_id"]}}
    ),
    "AccountPlan.SwotEntryRemoved": lambda d, p, e: _plan(d, e)["swot"].pop(p["entry_id"], None),
    "AccountPlan.WhitespaceCellSet": lambda d, p, e: _plan(d, e)["whitespace"].update(
        {f"{p['offering']}|{p['unit_id']}": p["status"]}
    ),
    "AccountPlan.BusinessReviewHeld": lambda d, p, e: _plan(d, e)["reviews"].update(
        {p["review_id"]: {k: p[k] for k in ("held_on", "participants", "decisions", "follow_up_actions")}}
    ),
    "AccountPlan.Submitted": _plan_status("submitted"),
    "AccountPlan.Approved": _plan_status("approved"),
    "AccountPlan.Reopened": _plan_status("draft"),
    "Stakeholder.Identified": _identified,
    "Stakeholder.PersonalDataCorrected": lambda d, p, e: _person(d, e).update(personal={"name": p["personal"]["name"]}),
    "Stakeholder.TitleChanged": _person_field("title", "to_title"),
    "Stakeholder.BuyingRoleChanged": _person_field("buying_role", "to_role"),
    "Stakeholder.InfluenceRated": _person_field("influence", "to_influence"),
    "Stakeholder.SentimentRated": _person_field("sentiment", "to_sentiment"),
    "Stakeholder.RelationshipOwnerAssigned": _person_field("relationship_owner", "to_owner"),
    "Stakeholder.ReportsToSet": _person_field("reports_to", "to_manager_id"),
    "Stakeholder.InteractionLogged": _interaction,
    "Stakeholder.Left": _person_field("left_on", "left_on"),
    "Deal.Opened": _deal_opened,
    "Deal.StageAdvanced": _deal_fields(stage="to_stage", probability="probability"),
    "Deal.StageMovedBack": _deal_fields(stage="to_stage", probability="probability"),
    "Deal.AmountChanged": _deal_fields(amount="to_amount"),
    "Deal.CloseDateChanged": _deal_fields(expected_close="to_date"),
    "Deal.ProbabilityChanged": _deal_fields(probability="to_probability"),
    "Deal.Won": _deal_fields(status=_constant("won"), final_amount="final_amount", probability=_constant(100)),
    "Deal.Lost": _deal_fields(
        status=_constant("lost"), loss_reason="loss_reason", competitor="competitor", probability=_constant(0)
    ),
    "Deal.Reopened": _deal_fields(
        status=_constant("open"),
        probability="probability",
        final_amount=_constant(None),
        loss_reason=_constant(None),
        competitor=_constant(None),
    ),
    "Deal.BuyingInfluenceAttached": lambda d, p, e: _deal(d, e)["influences"].update(
        {f"{p['stakeholder_id']}|{p['role']}": {k: p[k] for k in ("stakeholder_id", "role", "degree", "note")}}
    ),
    "Deal.BuyingInfluenceDetached": lambda d, p, e: _deal(d, e)["influences"].pop(
        f"{p['stakeholder_id']}|{p['role']}", None
    ),
    "Deal.QualificationAssessed": lambda d, p, e: _deal(d, e)["qualification"].update(
        {p["element"]: {"status": p["status"], "evidence": p["evidence"]}}
    ),
}
"""Every event type of the four aggregates changes the account view."""


class AccountViewProjection(ViewProjection):
    view_name: ClassVar[str] = "account_view"

    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        if not isinstance(event, GamEvent):
            return ViewChange()
        account_id, index = owner_of(self.view, event)
        evolve = EVOLVE.get(event_type_of(event))
        if account_id is None or evolve is None:
            return ViewChange(documents=index)
        key = account_key(account_id)
        document = self.view.documents([key]).get(key) or empty_document(account_id)
        evolve(document, to_json_value(payload_of(event)), event)
        document["position"] = position
        return ViewChange(documents={**index, key: document})


# --- read: what the GAM sees ----------------------------------------------------------


def account_view(
    view: ViewRecorder,
    account_id: UUID,
    *,
    now: datetime,
    stale_after_days: int = 90,
    rates: ExchangeRates = PLANNING_RATES,
) -> dict[str, Any] | None:
    document = view.documents([account_key(account_id)]).get(account_key(account_id))
    if document is None:
        return None
    return read_account_view(document, now=now, stale_after_days=stale_after_days, rates=rates)


def read_account_view(
    document: Document, *, now: datetime, stale_after_days: int = 90, rates: ExchangeRates = PLANNING_RATES
) -> dict[str, Any]:
    units: dict[str, Document] = document["units"]
    currency = document["account"].get("reporting_currency", rates.base)
    return {
        "account": document["account"],
        "position": document.get("position"),
        "unit_tree": unit_tree(units, document["team"]),
        "plans": [plan_summary(plan_id, plan, units) for plan_id, plan in sorted(document["plans"].items())],
        "stakeholders": stakeholder_map(document["stakeholders"], units, now=now, stale_after_days=stale_after_days),
        "whitespace": whitespace_grid(document["plans"], units),
        "pipeline": pipeline(document["deals"], units, currency, rates),
        "rollups": rollups(document, currency, rates),
        "win_rate": win_rate(document["deals"], currency, rates),
    }


def unit_tree(units: dict[str, Document], team: dict[str, Document]) -> list[dict[str, Any]]:
    members: dict[str, list[dict[str, str]]] = defaultdict(list)
    for assignment in sorted(team.values(), key=lambda a: (a["unit_id"], a["member"], a["role"])):
        members[assignment["unit_id"]].append({"member": assignment["member"], "role": assignment["role"]})

    def node(unit_id: str) -> dict[str, Any]:
        unit = units[unit_id]
        return {
            "unit_id": unit_id, "name": unit["name"], "level": unit["level"], "code": unit["code"],
            "closed": unit["closed"], "team": members[unit_id], "children": [node(c) for c in children[unit_id]],
        }  # fmt: skip

    children: dict[str | None, list[str]] = defaultdict(list)
    for unit_id, unit in units.items():
        children[unit["parent_id"]].append(unit_id)
    return [node(root) for root in children[None]]


def plan_summary(plan_id: str, plan: Document, units: dict[str, Document]) -> dict[str, Any]:
    by_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for objective_id, objective in plan["objectives"].items():
        answers = [d["answer"] or "awaiting_response" for d in objective["directives"].values()]
        by_unit[objective["unit_id"]].append({
            "objective_id": objective_id, "title": objective["title"], "target": objective["target"],
            "due_date": objective["due_date"], "cascade": {a: answers.count(a) for a in sorted(set(answers))},
            "progress": objective["progress"].get(objective["unit_id"], {}).get("percent"),
        })  # fmt: skip
    actions: dict[str, int] = defaultdict(int)
    for action in plan["actions"].values():
        actions[action["status"]] += 1
    return {
        "plan_id": plan_id,
        "fiscal_period": plan["fiscal_period"],
        "status": plan["status"],
        "baseline_version": plan["baseline_version"],
        "objectives_by_unit": {units[u]["name"]: items for u, items in sorted(by_unit.items()) if u in units},
        "actions_by_status": dict(sorted(actions.items())),
        "swot": sorted(plan["swot"].values(), key=lambda s: (s["kind"], s["text"])),
        "reviews": len(plan["reviews"]),
    }


def relationship_health(people: list[Document], *, now: datetime, stale_after_days: int) -> int | None:
    """0–100 for the people at one unit who have not left:

    ``100 × (0.3 × owner coverage + 0.3 × recent contact + 0.4 × weighted sentiment)``

    where owner coverage is the share with a relationship owner on our team,
    recent contact the share contacted within ``stale_after_days``, and weighted
    sentiment the influence-weighted mean of (sentiment + 2) / 4 (unrated
    sentiment counts as neutral, unrated influence as 3). ``None`` with nobody mapped.
    """
    if not people:
        return None
    cutoff = now - timedelta(days=stale_after_days)
    owned = sum(1 for p in people if p["relationship_owner"]) / len(people)
    recent = sum(1 for p in people if p["last_contact"] and parse_time(p["last_contact"]) >= cutoff) / len(people)
    weights = [p["influence"] or 3 for p in people]
    sentiment = sum(w * ((p["sentiment"] or 0) + 2) / 4 for w, p in zip(weights, people, strict=True)) / sum(weights)
    return round(100 * (0.3 * owned + 0.3 * recent + 0.4 * sentiment))


def stakeholder_map(
    people: dict[str, Document], units: dict[str, Document], *, now: datetime, stale_after_days: int
) -> dict[str, Any]:
    present = {sid: p for sid, p in people.items() if p["left_on"] is None}
    cutoff = now - timedelta(days=stale_after_days)

    def entry(sid: str, person: Document) -> dict[str, Any]:
        return {
            "stakeholder_id": sid, "name": person["personal"]["name"], "title": person["title"],
            "unit": units.get(person["unit_id"], {}).get("name"), "buying_role": person["buying_role"],
            "influence": person["influence"], "sentiment": person["sentiment"],
            "relationship_owner": person["relationship_owner"], "last_contact": person["last_contact"],
        }  # fmt: skip

    def org_chart(manager: str | None) -> list[dict[str, Any]]:
        return [
            {**entry(sid, p), "reports": org_chart(sid)}
            for sid, p in sorted(present.items())
            if p["reports_to"] == manager or (manager is None and p["reports_to"] not in present)
        ]

    per_unit: dict[str, list[Document]] = defaultdict(list)
    for person in present.values():
        per_unit[person["unit_id"]].append(person)
    by_role: dict[str, int] = defaultdict(int)
    for person in present.values():
        by_role[person["buying_role"] or "unknown"] += 1
    return {
        "people": [entry(sid, p) for sid, p in sorted(present.items())],
        "left": sorted(sid for sid, p in people.items() if p["left_on"] is not None),
        "by_buying_role": dict(sorted(by_role.items())),
        "org_chart": org_chart(None),
        "without_owner": sorted(sid for sid, p in present.items() if not p["relationship_owner"]),
        "not_contacted": sorted(
            sid for sid, p in present.items() if not p["last_contact"] or parse_time(p["last_contact"]) < cutoff
        ),
        "per_unit": {
            units[unit_id]["name"]: {
                "people": len(group),
                "mean_sentiment": _mean([p["sentiment"] for p in group if p["sentiment"] is not None]),
                "health": relationship_health(group, now=now, stale_after_days=stale_after_days),
            }
            for unit_id, group in sorted(per_unit.items())
            if unit_id in units
        },
        "stale_after_days": stale_after_days,
    }


def _mean(values: list[int]) -> str | None:
    return str((Decimal(sum(values)) / len(values)).quantize(Decimal("0.01"))) if values else None


def whitespace_grid(plans: dict[str, Document], units: dict[str, Document]) -> dict[str, dict[str, str]]:
    """Offering → unit name → status, from the latest plan that has cells."""
    for _, plan in sorted(plans.items(), key=lambda item: item[1]["fiscal_period"], reverse=True):
        if plan["whitespace"]:
            grid: dict[str, dict[str, str]] = defaultdict(dict)
            for key, status in sorted(plan["whitespace"].items()):
                offering, unit_id = key.rsplit("|", 1)
                grid[offering][units.get(unit_id, {}).get("name", unit_id)] = status
            return dict(grid)
    return {}


def _money(amount: Decimal, currency: str, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
    converted, rate = rates.convert(amount, currency, reporting)
    return {"amount": str(amount), "currency": currency, "reporting_amount": str(converted), "rate": str(rate)}


def pipeline(
    deals: dict[str, Document], units: dict[str, Document], reporting: str, rates: ExchangeRates
) -> dict[str, Any]:
    """Open deals, unweighted and weighted (amount × probability), by stage, unit and level."""
    totals: dict[str, dict[str, dict[str, Decimal]]] = {"by_stage": {}, "by_unit": {}, "by_level": {}}
    by_currency: dict[str, dict[str, Decimal]] = {}
    for deal in deals.values():
        if deal["status"] != "open":
            continue
        amount, currency = Decimal(deal["amount"]["amount"]), deal["amount"]["currency"]
        weighted = amount * Decimal(deal["probability"]) / 100
        converted, _ = rates.convert(amount, currency, reporting)
        converted_weighted, _ = rates.convert(weighted, currency, reporting)
        unit = units.get(deal["unit_id"], {})
        for group, key in (("by_stage", deal["stage"]), ("by_unit", unit.get("name", "?")),
                           ("by_level", unit.get("level", "?"))):  # fmt: skip
            bucket = totals[group].setdefault(
                key, {"deals": Decimal(0), "unweighted": Decimal(0), "weighted": Decimal(0)}
            )
            bucket["deals"] += 1
            bucket["unweighted"] += converted
            bucket["weighted"] += converted_weighted
        own = by_currency.setdefault(currency, {"unweighted": Decimal(0), "weighted": Decimal(0)})
        own["unweighted"] += amount
        own["weighted"] += weighted
    return {
        "reporting_currency": reporting,
        "rates": {**rates.describe(), "used": {c: str(rates.rate(c, reporting)) for c in sorted(by_currency)}},
        **{
            group: {k: {n: int(v) if n == "deals" else str(v) for n, v in b.items()} for k, b in sorted(t.items())}
            for group, t in totals.items()
        },
        "by_deal_currency": {c: {n: str(v) for n, v in b.items()} for c, b in sorted(by_currency.items())},
    }


def rollups(document: Document, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
    """Each unit's own and rolled-up (itself and everything below) open pipeline and won
    value, in the reporting currency; and per objective, progress at each unit that
    holds it and the won value of linked deals against a money target."""
    units: dict[str, Document] = document["units"]
    own: dict[str, dict[str, Decimal]] = {u: {"open": Decimal(0), "won": Decimal(0)} for u in units}
    won_by_objective: dict[str, Decimal] = defaultdict(Decimal)
    for deal in document["deals"].values():
        if deal["unit_id"] not in own:
            continue
        if deal["status"] == "open":
            amount = rates.convert(Decimal(deal["amount"]["amount"]), deal["amount"]["currency"], reporting)[0]
            own[deal["unit_id"]]["open"] += amount
        elif deal["status"] == "won" and deal["final_amount"]:
            final = deal["final_amount"]
            amount = rates.convert(Decimal(final["amount"]), final["currency"], reporting)[0]
            own[deal["unit_id"]]["won"] += amount
            for objective_id in deal["linked_objective_ids"]:
                won_by_objective[objective_id] += amount
    rolled = {u: dict(v) for u, v in own.items()}
    for unit_id in sorted(units, key=lambda u: LEVELS.index(units[u]["level"]), reverse=True):
        parent = units[unit_id]["parent_id"]
        if parent in rolled:
            for measure in ("open", "won"):
                rolled[parent][measure] += rolled[unit_id][measure]
    objectives = []
    for plan in document["plans"].values():
        for objective_id, objective in plan["objectives"].items():
            target = objective["target"]
            won = won_by_objective.get(objective_id, Decimal(0))
            attainment = None
            if target["currency"] and Decimal(target["value"]) > 0:
                target_value, _ = rates.convert(Decimal(target["value"]), target["currency"], reporting)
                attainment = str((100 * won / target_value).quantize(Decimal("0.1")))
            objectives.append({
                "objective_id": objective_id, "title": objective["title"], "fiscal_period": plan["fiscal_period"],
                "target": target, "won_in_linked_deals": str(won), "attainment_percent": attainment,
                "progress_by_unit": {units[u]["name"]: p["percent"] for u, p in sorted(objective["progress"].items())
                                     if u in units},
            })  # fmt: skip
    return {
        "currency": reporting,
        "units": {
            units[u]["name"]: {"level": units[u]["level"], **{f"own_{k}": str(v) for k, v in own[u].items()},
                               **{f"rolled_up_{k}": str(v) for k, v in rolled[u].items()}}
            for u in sorted(units, key=lambda u: (LEVELS.index(units[u]["level"]), units[u]["name"]))
        },
        "objectives": objectives,
    }  # fmt: skip


def win_rate(deals: dict[str, Document], reporting: str, rates: ExchangeRates) -> dict[str, Any]:
    """won / (won + lost), by count and by value in the reporting currency."""
    won = [d for d in deals.values() if d["status"] == "won"]
    lost = [d for d in deals.values() if d["status"] == "lost"]

    def value(group: list[Document], field: str) -> Decimal:
        total = Decimal(0)
        for deal in group:
            money = deal[field] or deal["amount"]
            total += rates.convert(Decimal(money["amount"]), money["currency"], reporting)[0]
        return total

    won_value, lost_value = value(won, "final_amount"), value(lost, "amount")
    closed = len(won) + len(lost)
    return {
        "won": len(won),
        "lost": len(lost),
        "by_count": None if not closed else str((Decimal(100 * len(won)) / closed).quantize(Decimal("0.1"))),
        "by_value": None
        if not won_value + lost_value
        else str((100 * won_value / (won_value + lost_value)).quantize(Decimal("0.1"))),
        "won_value": str(won_value),
        "lost_value": str(lost_value),
        "currency": reporting,
    }

"""The account view's stored document and how each event changes it.

One document per account (``account:<id>``) holding the normalised current state
of its units, team, plans, stakeholders and deals: facts only, evolved event by
event. A stakeholder's personal data is kept under ``personal``, sealed under the
person's key as the event holds it (``{"sealed": ...}``), and so are a deal's
buying-influence notes and its evidence about a named stakeholder; nothing else
personal is kept. The reader opens them (``infra.sealed_reads``): ``personal``
into ``{"name": ...}``, the free text into itself, each ``[erased]`` once the key is gone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.account import GlobalAccount
from domain.base import GamAggregate, GamEvent
from domain.catalog import aggregate_of
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.values import ERASED, CascadeAnswer
from projections.facts import EventFacts, facts_of
from projections.ports import Document

KEY_PREFIX = "account:"
MEMBER_PREFIX = "member:"
"""``member:<who>``: the accounts whose team they are on, with their roles there (for worklists)."""


Evolve = Callable[[Document, dict[str, Any], EventFacts], None]


def account_key(account_id: UUID | str) -> str:
    return f"{KEY_PREFIX}{account_id}"


def member_key(member: str) -> str:
    return f"{MEMBER_PREFIX}{member}"


def member_index(index: Document | None, account: Document, member: str) -> Document:
    """The member's index after a change to their assignments on ``account``: every
    account they are on, with their roles there (read once per worklist, instead of
    every account's document)."""
    accounts = dict((index or {}).get("accounts", {}))
    roles = sorted({a["role"] for a in account["team"].values() if a["member"] == member})
    if roles:
        accounts[account["account"]["id"]] = roles
    else:
        accounts.pop(account["account"]["id"], None)
    return {"accounts": accounts}


# --- evolve: one function per event type ---------------------------------------------
# Each receives the document (a private copy), the event's payload as JSON values
# and the event (for its id and timestamp), and changes the document in place.


def _account_created(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    facts = ("name", "industry", "hq_country", "reporting_currency", "tier", "governance_model")
    doc.update(
        account={"id": e.entity, **{k: p[k] for k in facts}, "archived": False},
        units={},
        team={},
        plans={},
        stakeholders={},
        deals={},
    )
    doc["units"][p["hq_unit_id"]] = _unit(p["hq_unit_name"], "hq", None, p["hq_country"])
    if p.get("lead_gam"):
        lead = {"member": p["lead_gam"], "unit_id": p["hq_unit_id"], "role": "lead_gam"}
        doc["team"][_team_key(lead)] = lead


def _unit(name: str, level: str, parent_id: str | None, code: str) -> Document:
    return {"name": name, "level": level, "parent_id": parent_id, "code": code, "closed": False}


def _unit_added(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    doc["units"][p["unit_id"]] = _unit(p["name"], p["level"], p["parent_id"], p["code"])


def _team_key(p: dict[str, Any]) -> str:
    return f"{p['member']}|{p['unit_id']}|{p['role']}"


def _team_assigned(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    doc["team"][_team_key(p)] = {"member": p["member"], "unit_id": p["unit_id"], "role": p["role"]}


def _plan(doc: Document, e: EventFacts) -> Document:
    plan: Document = doc["plans"][e.entity]
    return plan


def _plan_started(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    doc["plans"][e.entity] = {
        "fiscal_period": p["fiscal_period"], "status": "draft", "baseline_version": None, "objectives": {},
        "actions": {}, "swot": {}, "whitespace": {}, "reviews": {},
    }  # fmt: skip


def _objective_set(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _plan(doc, e)["objectives"][p["objective_id"]] = {
        "unit_id": p["unit_id"], "title": p["title"], "description": p["description"], "target": p["target"],
        "due_date": p["due_date"], "linked_objective_id": p["linked_objective_id"], "directives": {},
        "progress": {},
    }  # fmt: skip


def _cascaded(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    directives = _plan(doc, e)["objectives"][p["objective_id"]]["directives"]
    for unit in p["to_unit_ids"]:
        directives[unit] = {
            "from_unit_id": p["from_unit_id"], "cascaded_at": e.at, "answer": None,
            "local_title": None, "local_target": None, "rationale": None, "answered_at": None,
        }  # fmt: skip


def _answered(answer: CascadeAnswer) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
        directive = _plan(doc, e)["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
        directive.update(
            answer=answer.value,
            answered_at=e.at,
            rationale=p.get("rationale"),
            local_title=p.get("local_title"),
            local_target=p.get("local_target"),
        )

    return evolve


def _reconsider(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    """The decline goes into the directive's history; it awaits an answer again."""
    directive = _plan(doc, e)["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
    earlier = {name: directive[name] for name in ("answer", "answered_at", "rationale")}
    directive.setdefault("earlier_answers", []).append(earlier)
    directive.update(
        answer=None, answered_at=None, rationale=None, local_title=None, local_target=None,
        reconsider_note=p["note"], reconsider_asked_at=e.at,
    )  # fmt: skip


def _action_added(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _plan(doc, e)["actions"][p["action_id"]] = {
        "objective_id": p["objective_id"], "unit_id": p["unit_id"], "title": p["title"], "owner": p["owner"],
        "due_date": p["due_date"], "status": "planned",
    }  # fmt: skip


def _action_status(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _plan(doc, e)["actions"][p["action_id"]]["status"] = p["to_status"]


def _progress(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    """Only the latest report per (objective, unit) is kept: it is what the GAM reads."""
    _plan(doc, e)["objectives"][p["objective_id"]]["progress"][p["unit_id"]] = {
        "percent": p["percent"], "comment": p["comment"], "at": e.at,
    }  # fmt: skip


def _swot_added(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _plan(doc, e)["swot"][p["entry_id"]] = {"kind": p["kind"], "text": p["text"], "unit_id": p["unit_id"]}


def _swot_removed(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _plan(doc, e)["swot"].pop(p["entry_id"], None)


def _whitespace(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _plan(doc, e)["whitespace"].setdefault(p["offering"], {})[p["unit_id"]] = p["status"]


def _review(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    fields = ("held_on", "participants", "decisions", "follow_up_actions")
    _plan(doc, e)["reviews"][p["review_id"]] = {k: p[k] for k in fields}


def _plan_status(status: str) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
        plan = _plan(doc, e)
        plan["status"] = status
        if "baseline_version" in p:
            plan["baseline_version"] = p["baseline_version"]

    return evolve


def _submitted(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    """Who submitted is kept: they are the one person who may not approve it (worklists)."""
    plan = _plan(doc, e)
    plan["status"] = "submitted"
    plan["submitted_by"] = e.actor


def _person(doc: Document, e: EventFacts) -> Document:
    person: Document = doc["stakeholders"][e.entity]
    return person


def _identified(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    doc["stakeholders"][e.entity] = {
        "unit_id": p["unit_id"], "title": p["title"], "personal": stored_personal(p["personal"]),
        "buying_role": None, "influence": None, "sentiment": None, "relationship_owner": None, "reports_to": None,
        "last_contact": None, "interactions": 0, "left_on": None,
    }  # fmt: skip


def _personal_corrected(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _person(doc, e)["personal"] = stored_personal(p["personal"])


def stored_personal(personal: dict[str, Any]) -> dict[str, Any]:
    """A person's data as the view keeps it: sealed, as the event holds it (opened only
    when the view is read, so destroying the key erases every copy at once), or, from
    an event the mapper already opened (a replay in memory), the name alone."""
    if "sealed" in personal:
        return {"sealed": personal["sealed"]}
    return {"name": personal["name"]}


def _personal_erased(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    person = _person(doc, e)
    person["personal"] = {"name": ERASED}
    person["erased"] = True


def _person_field(field: str, source: str) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
        _person(doc, e)[field] = p[source]

    return evolve


def _interaction(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    """Interactions may be logged late, so the last contact is the latest ``occurred_at``
    (stored times sort as text), not the last one logged."""
    person = _person(doc, e)
    person["interactions"] += 1
    if person["last_contact"] is None or p["occurred_at"] > person["last_contact"]:
        person["last_contact"] = p["occurred_at"]


def _deal(doc: Document, e: EventFacts) -> Document:
    deal: Document = doc["deals"][e.entity]
    return deal


def _deal_opened(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    doc["deals"][e.entity] = {
        "unit_id": p["unit_id"], "title": p["title"], "amount": p["amount"], "stage": p["stage"],
        "probability": p["probability"], "expected_close": p["expected_close"], "owner": p["owner"],
        "products": p["products"], "linked_objective_ids": p["linked_objective_ids"], "status": "open",
        "final_amount": None, "loss_reason": None, "competitor": None, "influences": {}, "qualification": {},
    }  # fmt: skip


def _deal_fields(**mapping: str | Callable[[dict[str, Any]], Any]) -> Evolve:
    """Set deal fields from payload fields (by name) or from a function of the payload."""

    def evolve(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
        deal = _deal(doc, e)
        for name, source in mapping.items():
            deal[name] = source(p) if callable(source) else p[source]

    return evolve


def _constant(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda _: value


def _influence_attached(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    fields = ("stakeholder_id", "role", "degree", "note")
    _deal(doc, e)["influences"][f"{p['stakeholder_id']}|{p['role']}"] = {k: p[k] for k in fields}


def _influence_detached(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    _deal(doc, e)["influences"].pop(f"{p['stakeholder_id']}|{p['role']}", None)


def _qualification(doc: Document, p: dict[str, Any], e: EventFacts) -> None:
    """Evidence about a named stakeholder stays sealed under their key, as the note of a
    buying influence does; the reader opens both (``infra.sealed_reads``)."""
    assessed = {"status": p["status"], "evidence": p["evidence"]}
    if p.get("stakeholder_id") is not None:
        assessed["stakeholder_id"] = p["stakeholder_id"]
    _deal(doc, e)["qualification"][p["element"]] = assessed


EVOLVE: dict[type[GamEvent], Evolve] = {
    GlobalAccount.Created: _account_created,
    GlobalAccount.UnitAdded: _unit_added,
    GlobalAccount.UnitRenamed: lambda d, p, e: d["units"][p["unit_id"]].update(name=p["name"]),
    GlobalAccount.UnitClosed: lambda d, p, e: d["units"][p["unit_id"]].update(closed=True),
    GlobalAccount.TeamMemberAssigned: _team_assigned,
    GlobalAccount.TeamMemberRemoved: lambda d, p, e: d["team"].pop(_team_key(p), None),
    GlobalAccount.Archived: lambda d, p, e: d["account"].update(archived=True),
    AccountPlan.Started: _plan_started,
    AccountPlan.ObjectiveSet: _objective_set,
    AccountPlan.ObjectiveCascaded: _cascaded,
    AccountPlan.ObjectiveAdopted: _answered(CascadeAnswer.ADOPTED),
    AccountPlan.ObjectiveAdapted: _answered(CascadeAnswer.ADAPTED),
    AccountPlan.ObjectiveDeclined: _answered(CascadeAnswer.DECLINED),
    AccountPlan.ReconsiderationRequested: _reconsider,
    AccountPlan.ActionAdded: _action_added,
    AccountPlan.ActionStatusChanged: _action_status,
    AccountPlan.ProgressReported: _progress,
    AccountPlan.SwotEntryAdded: _swot_added,
    AccountPlan.SwotEntryRemoved: _swot_removed,
    AccountPlan.WhitespaceCellSet: _whitespace,
    AccountPlan.BusinessReviewHeld: _review,
    AccountPlan.Submitted: _submitted,
    AccountPlan.Approved: _plan_status("approved"),
    AccountPlan.Reopened: _plan_status("draft"),
    Stakeholder.Identified: _identified,
    Stakeholder.PersonalDataCorrected: _personal_corrected,
    Stakeholder.PersonalDataErased: _personal_erased,
    Stakeholder.TitleChanged: _person_field("title", "to_title"),
    Stakeholder.BuyingRoleChanged: _person_field("buying_role", "to_role"),
    Stakeholder.InfluenceRated: _person_field("influence", "to_influence"),
    Stakeholder.SentimentRated: _person_field("sentiment", "to_sentiment"),
    Stakeholder.RelationshipOwnerAssigned: _person_field("relationship_owner", "to_owner"),
    Stakeholder.ReportsToSet: _person_field("reports_to", "to_manager_id"),
    Stakeholder.InteractionLogged: _interaction,
    Stakeholder.Left: _person_field("left_on", "left_on"),
    Deal.Opened: _deal_opened,
    Deal.StageAdvanced: _deal_fields(stage="to_stage", probability="probability"),
    Deal.StageMovedBack: _deal_fields(stage="to_stage", probability="probability"),
    Deal.AmountChanged: _deal_fields(amount="to_amount"),
    Deal.CloseDateChanged: _deal_fields(expected_close="to_date"),
    Deal.ProbabilityChanged: _deal_fields(probability="to_probability"),
    Deal.Won: _deal_fields(status=_constant("won"), final_amount="final_amount", probability=_constant(100)),
    Deal.Lost: _deal_fields(
        status=_constant("lost"), loss_reason="loss_reason", competitor="competitor", probability=_constant(0)
    ),
    Deal.Reopened: _deal_fields(
        status=_constant("open"),
        probability="probability",
        final_amount=_constant(None),
        loss_reason=_constant(None),
        competitor=_constant(None),
    ),
    Deal.BuyingInfluenceAttached: _influence_attached,
    Deal.BuyingInfluenceDetached: _influence_detached,
    Deal.QualificationAssessed: _qualification,
}
"""How each event class changes the account's document."""

IGNORED: frozenset[type[GamEvent]] = frozenset()
"""Event classes that deliberately leave the document unchanged (only the tracking
position moves). None today: every event of the four aggregates changes
something a GAM reads. A new event type must be added to :data:`EVOLVE` or here
(a test checks that the two cover every event class of the domain)."""

ENTITY_COLLECTIONS: dict[type[GamAggregate], str] = {AccountPlan: "plans", Stakeholder: "stakeholders", Deal: "deals"}
"""Where the document keeps each kind of entity below the account, by aggregate."""


def evolve_document(stored: Document | None, event: EventFacts | GamEvent) -> Document | None:
    """The account's document after ``event`` (``stored`` is changed in place: every
    view storage hands out a document the caller owns, and copying a large account
    per event made replays quadratic), or ``None`` when the event does not change
    this view: its type is ignored, or it concerns an account or entity the
    document does not know (then only the tracking position is recorded)."""
    facts = event if isinstance(event, EventFacts) else facts_of(event)
    event_class = facts.event_class
    evolve = EVOLVE.get(event_class)
    if evolve is None or event_class in IGNORED:
        return None
    if stored is None:
        if not issubclass(event_class, GlobalAccount.Created):
            return None
        document: Document = {}
    else:
        document = stored
        collection = _collection_of(event_class)
        if collection and facts.version > 1 and facts.entity not in document[collection]:
            return None
    evolve(document, facts.payload, facts)
    return document


@functools.cache
def _collection_of(event_class: type[GamEvent]) -> str | None:
    aggregate = aggregate_of(event_class)
    return ENTITY_COLLECTIONS.get(aggregate) if aggregate else None

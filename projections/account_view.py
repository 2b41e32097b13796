"""Account view: the account at a glance, for the GAM.

Stored: one document per account (``account:<id>``) holding the normalised
current state of its units, team, plans, stakeholders and deals, evolved event
by event (read, change a copy, write back with the tracking position). It holds
facts only; everything that depends on *when* one reads or on exchange rates is
derived at read time by :func:`read_account_view`: the unit tree, objectives
and cascade state per unit, actions, the stakeholder map with coverage and
relationship health, the whitespace grid, the open pipeline by stage, unit and
level (weighted and unweighted, in deal and reporting currency), roll-ups up the
tree against the objectives' targets, and the win rate.

A stakeholder's name is kept under ``personal`` (and nothing else personal is
kept), so erasing a person's data later touches one sub-dict.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.base import GamEvent
from domain.values import ERASED, PIPELINE, BuyingRole, CascadeAnswer, SwotKind, UnitLevel
from projections.base import ViewProjection, event_type_of, owner_of, payload_of
from projections.encoding import format_time, parse_time, to_json_value
from projections.exchange_rates import PLANNING_RATES, ExchangeRates
from projections.ports import Document, ViewChange, ViewRecorder

KEY_PREFIX = "account:"
LEVELS = tuple(level.value for level in UnitLevel)
STAGES = tuple(stage.value for stage in PIPELINE)
AWAITING = "awaiting_response"
CASCADE_STATES = (*(answer.value for answer in CascadeAnswer), AWAITING)
UNRATED_INFLUENCE = 3
"""Influence (1–5) assumed for a person not yet rated: the middle of the scale."""

Evolve = Callable[[Document, dict[str, Any], GamEvent], None]


def account_key(account_id: UUID | str) -> str:
    return f"{KEY_PREFIX}{account_id}"


# --- evolve: one function per event type ---------------------------------------------
# Each receives the document (a private copy), the event's payload as JSON values
# and the event (for its id and timestamp), and changes the document in place.


def _account_created(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    facts = ("name", "industry", "hq_country", "reporting_currency", "tier", "governance_model")
    doc.update(
        account={"id": str(e.originator_id), **{k: p[k] for k in facts}, "archived": False},
        units={},
        team={},
        plans={},
        stakeholders={},
        deals={},
    )
    doc["units"][p["hq_unit_id"]] = _unit(p["hq_unit_name"], "hq", None, p["hq_country"])


def _unit(name: str, level: str, parent_id: str | None, code: str) -> Document:
    return {"name": name, "level": level, "parent_id": parent_id, "code": code, "closed": False}


def _unit_added(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["units"][p["unit_id"]] = _unit(p["name"], p["level"], p["parent_id"], p["code"])


def _team_key(p: dict[str, Any]) -> str:
    return f"{p['member']}|{p['unit_id']}|{p['role']}"


def _team_assigned(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    doc["team"][_team_key(p)] = {"member": p["member"], "unit_id": p["unit_id"], "role": p["role"]}


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
        "unit_id": p["unit_id"], "title": p["title"], "description": p["description"], "target": p["target"],
        "due_date": p["due_date"], "linked_objective_id": p["linked_objective_id"], "directives": {},
        "progress": {},
    }  # fmt: skip


def _cascaded(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    directives = _plan(doc, e)["objectives"][p["objective_id"]]["directives"]
    for unit in p["to_unit_ids"]:
        directives[unit] = {
            "from_unit_id": p["from_unit_id"], "cascaded_at": format_time(e.timestamp), "answer": None,
            "local_title": None, "local_target": None, "rationale": None, "answered_at": None,
        }  # fmt: skip


def _answered(answer: CascadeAnswer) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        directive = _plan(doc, e)["objectives"][p["objective_id"]]["directives"][p["unit_id"]]
        directive.update(
            answer=answer.value,
            answered_at=format_time(e.timestamp),
            rationale=p.get("rationale"),
            local_title=p.get("local_title"),
            local_target=p.get("local_target"),
        )

    return evolve


def _action_added(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["actions"][p["action_id"]] = {
        "objective_id": p["objective_id"], "unit_id": p["unit_id"], "title": p["title"], "owner": p["owner"],
        "due_date": p["due_date"], "status": "planned",
    }  # fmt: skip


def _action_status(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["actions"][p["action_id"]]["status"] = p["to_status"]


def _progress(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    """Only the latest report per (objective, unit) is kept: it is what the GAM reads."""
    _plan(doc, e)["objectives"][p["objective_id"]]["progress"][p["unit_id"]] = {
        "percent": p["percent"], "comment": p["comment"], "at": format_time(e.timestamp),
    }  # fmt: skip


def _swot_added(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["swot"][p["entry_id"]] = {"kind": p["kind"], "text": p["text"], "unit_id": p["unit_id"]}


def _swot_removed(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["swot"].pop(p["entry_id"], None)


def _whitespace(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _plan(doc, e)["whitespace"].setdefault(p["offering"], {})[p["unit_id"]] = p["status"]


def _review(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    fields = ("held_on", "participants", "decisions", "follow_up_actions")
    _plan(doc, e)["reviews"][p["review_id"]] = {k: p[k] for k in fields}


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


def _personal_corrected(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _person(doc, e)["personal"] = {"name": p["personal"]["name"]}


def _personal_erased(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    person = _person(doc, e)
    person["personal"] = {"name": ERASED}
    person["erased"] = True


def _person_field(field: str, source: str) -> Evolve:
    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        _person(doc, e)[field] = p[source]

    return evolve


def _interaction(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    """Interactions may be logged late, so the last contact is the latest ``occurred_at``
    (stored times sort as text), not the last one logged."""
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
    """Set deal fields from payload fields (by name) or from a function of the payload."""

    def evolve(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
        deal = _deal(doc, e)
        for name, source in mapping.items():
            deal[name] = source(p) if callable(source) else p[source]

    return evolve


def _constant(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda _: value


def _influence_attached(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    fields = ("stakeholder_id", "role", "degree", "note")
    _deal(doc, e)["influences"][f"{p['stakeholder_id']}|{p['role']}"] = {k: p[k] for k in fields}


def _influence_detached(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _deal(doc, e)["influences"].pop(f"{p['stakeholder_id']}|{p['role']}", None)


def _qualification(doc: Document, p: dict[str, Any], e: GamEvent) -> None:
    _deal(doc, e)["qualification"][p["element"]] = {"status": p["status"], "evidence": p["evidence"]}


EVOLVE: dict[str, Evolve] = {
    "GlobalAccount.Created": _account_created,
    "GlobalAccount.UnitAdded": _unit_added,
    "GlobalAccount.UnitRenamed": lambda d, p, e: d["units"][p["unit_id"]].update(name=p["name"]),
    "GlobalAccount.UnitClosed": lambda d, p, e: d["units"][p["unit_id"]].update(closed=True),
    "GlobalAccount.TeamMemberAssigned": _team_assigned,
    "GlobalAccount.TeamMemberRemoved": lambda d, p, e: d["team"].pop(_team_key(p), None),
    "GlobalAccount.Archived": lambda d, p, e: d["account"].update(archived=True),
    "AccountPlan.Started": _plan_started,
    "AccountPlan.ObjectiveSet": _objective_set,
    "AccountPlan.ObjectiveCascaded": _cascaded,
    "AccountPlan.ObjectiveAdopted": _answered(CascadeAnswer.ADOPTED),
    "AccountPlan.ObjectiveAdapted": _answered(CascadeAnswer.ADAPTED),
    "AccountPlan.ObjectiveDeclined": _answered(CascadeAnswer.DECLINED),
    "AccountPlan.ActionAdded": _action_added,
    "AccountPlan.ActionStatusChanged": _action_status,
    "AccountPlan.ProgressReported": _progress,
    "AccountPlan.SwotEntryAdded": _swot_added,
    "AccountPlan.SwotEntryRemoved": _swot_removed,
    "AccountPlan.WhitespaceCellSet": _whitespace,
    "AccountPlan.BusinessReviewHeld": _review,
    "AccountPlan.Submitted": _plan_status("submitted"),
    "AccountPlan.Approved": _plan_status("approved"),
    "AccountPlan.Reopened": _plan_status("draft"),
    "Stakeholder.Identified": _identified,
    "Stakeholder.PersonalDataCorrected": _personal_corrected,
    "Stakeholder.PersonalDataErased": _personal_erased,
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
    "Deal.BuyingInfluenceAttached": _influence_attached,
    "Deal.BuyingInfluenceDetached": _influence_detached,
    "Deal.QualificationAssessed": _qualification,
}
"""How each event type changes the account's document."""

IGNORED: frozenset[str] = frozenset()
"""Event types that deliberately leave the document unchanged (only the tracking
position moves). None today: every event of the four aggregates changes
something a GAM reads. A new event type must be added to :data:`EVOLVE` or here
(a test checks that the two cover every event class of the domain)."""

ENTITY_COLLECTIONS = {"AccountPlan": "plans", "Stakeholder": "stakeholders", "Deal": "deals"}
"""Where the document keeps each kind of entity below the account, by aggregate name."""


def evolve_document(stored: Document | None, event: GamEvent) -> Document | None:
    """The account's document after ``event`` (``stored`` is changed in place: every
    view storage hands out a document the caller owns, and copying a large account
    per event made replays quadratic), or ``None`` when the event does not change
    this view: its type is ignored, or it concerns an account or entity the
    document does not know (then only the tracking position is recorded)."""
    event_type = event_type_of(event)
    evolve = EVOLVE.get(event_type)
    if evolve is None or event_type in IGNORED:
        return None
    if stored is None:
        if event_type != "GlobalAccount.Created":
            return None
        document: Document = {}
    else:
        document = stored
        collection = ENTITY_COLLECTIONS.get(event_type.split(".")[0])
        if collection and event.originator_version > 1 and str(event.originator_id) not in document[collection]:
            return None
    evolve(document, to_json_value(payload_of(event)), event)
    return document


# --- checkpoints -------------------------------------------------------------------------
# The account view as of a moment (services.time_travel) replays the account's
# events; with checkpoints it starts from the newest copy of the document that
# holds only events up to that moment. Three kinds of documents per account, next
# to ``account:<id>`` and written in the same transaction as it:
#
#   covered:<id>          what the document holds: each entity's version, the number of
#                         events and the latest event time (in microseconds since 1970,
#                         cheaper to keep per event than text); kept from the account's
#                         creation on (a view built before checkpoints existed has none,
#                         and takes none until a rebuild)
#   checkpoints:<id>      the checkpoints taken, {"taken": [{"events", "latest_at"}]}
#   checkpoint:<id>:<n>   a copy of the document after the account's n-th event, with
#                         the coverage it was taken at: {"events", "latest_at",
#                         "versions", "document"}
#
# A checkpoint holds the stakeholders' names like the document does, so erasing a
# person erases them from every checkpoint of the account too.

DEFAULT_CHECKPOINT_INTERVAL = 1000
COVERED_PREFIX = "covered:"
CHECKPOINTS_PREFIX = "checkpoints:"
CHECKPOINT_PREFIX = "checkpoint:"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
KEYS_PER_READ = 500
"""Checkpoints read per query when an erasure rewrites them (SQLite limits a query's parameters)."""


def covered_key(account_id: UUID | str) -> str:
    return f"{COVERED_PREFIX}{account_id}"


def checkpoints_key(account_id: UUID | str) -> str:
    return f"{CHECKPOINTS_PREFIX}{account_id}"


def checkpoint_key(account_id: UUID | str, events: int) -> str:
    return f"{CHECKPOINT_PREFIX}{account_id}:{events:012d}"


class AccountViewProjection(ViewProjection):
    view_name: ClassVar[str] = "account_view"
    checkpoint_interval: ClassVar[int] = DEFAULT_CHECKPOINT_INTERVAL
    """Keep a checkpoint every this many events of an account; 0 keeps none (the
    coverage is still kept, so that checkpoints taken later know what they hold)."""
    keeps_checkpoints: ClassVar[bool] = True
    """False for a private replay: no coverage, no checkpoints."""

    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        if not isinstance(event, GamEvent):
            return ViewChange()
        account_id, index = owner_of(self.view, event)
        if account_id is None:
            return ViewChange(documents=index)
        key, covered = account_key(account_id), covered_key(account_id)
        stored = self.view.documents([key, covered] if self.keeps_checkpoints else [key])
        document = evolve_document(stored.get(key), event)
        if document is None:
            return ViewChange(documents=index)
        document["position"] = position
        changes: dict[str, Document | None] = {**index, key: document}
        if self.keeps_checkpoints:
            changes.update(self._checkpoint_changes(account_id, event, document, stored.get(covered)))
        return ViewChange(documents=changes)

    def _checkpoint_changes(
        self, account_id: UUID, event: GamEvent, document: Document, covered: Document | None
    ) -> dict[str, Document | None]:
        """The event counted in the account's coverage, a checkpoint when one is due,
        and, for an erasure, the checkpoints that held the person's name."""
        changes: dict[str, Document | None] = {}
        if event_type_of(event) == "Stakeholder.PersonalDataErased":
            changes.update(self._erase_from_checkpoints(account_id, str(event.originator_id)))
        if covered is None:
            if event_type_of(event) != "GlobalAccount.Created":
                return changes  # built before checkpoints: this account's coverage is unknown
            covered = {"events": 0, "latest_us": (event.timestamp - EPOCH) // MICROSECOND, "versions": {}}
        covered["versions"][str(event.originator_id)] = event.originator_version
        covered["events"] += 1
        covered["latest_us"] = max(covered["latest_us"], (event.timestamp - EPOCH) // MICROSECOND)
        changes[covered_key(account_id)] = covered
        if self.checkpoint_interval and covered["events"] % self.checkpoint_interval == 0:
            events = sum(covered["versions"].values())
            latest_at = format_time(EPOCH + covered["latest_us"] * MICROSECOND)
            taken = self.view.documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
            taken = taken or {"taken": []}
            taken["taken"].append({"events": events, "latest_at": latest_at})
            changes[checkpoints_key(account_id)] = taken
            changes[checkpoint_key(account_id, events)] = {
                "events": events,
                "latest_at": latest_at,
                "versions": dict(covered["versions"]),
                "document": copy.deepcopy(document),  # the document changes in place from the next event on
            }
        return changes

    def _erase_from_checkpoints(self, account_id: UUID, person: str) -> dict[str, Document | None]:
        taken = self.view.documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
        keys = [checkpoint_key(account_id, entry["events"]) for entry in (taken or {"taken": []})["taken"]]
        erased: dict[str, Document | None] = {}
        for start in range(0, len(keys), KEYS_PER_READ):
            for key, checkpoint in self.view.documents(keys[start : start + KEYS_PER_READ]).items():
                entry = checkpoint["document"]["stakeholders"].get(person)
                if entry is not None and entry["personal"] != {"name": ERASED}:
                    entry["personal"] = {"name": ERASED}
                    erased[key] = checkpoint
        return erased


class AccountReplayProjection(AccountViewProjection):
    """The account view alone, for a private replay (time travel): no coverage, no checkpoints."""

    keeps_checkpoints: ClassVar[bool] = False


@functools.cache
def account_view_projection(checkpoint_interval: int) -> type[AccountViewProjection]:
    """The account view's projection keeping a checkpoint every ``checkpoint_interval``
    events of an account (a class, as ``eventsourcing``'s runner builds its own instance)."""
    if checkpoint_interval == AccountViewProjection.checkpoint_interval:
        return AccountViewProjection
    name = f"AccountViewProjectionEvery{checkpoint_interval}"
    return type(name, (AccountViewProjection,), {"checkpoint_interval": checkpoint_interval})


def newest_checkpoint(
    view: ViewRecorder, account_id: UUID, moment: datetime, versions: Mapping[UUID, int]
) -> Document | None:
    """The newest checkpoint of the account that holds only events up to ``versions``
    (each entity's version at ``moment``), or ``None``.

    Candidates are those whose latest event is not after the moment; the versions
    are checked too, because they come from the audit trail, which may lag behind
    this view."""
    taken = view.documents([checkpoints_key(account_id)]).get(checkpoints_key(account_id))
    if taken is None:
        return None
    until = format_time(moment)
    wanted = {str(entity): version for entity, version in versions.items()}
    for entry in sorted(taken["taken"], key=lambda entry: -entry["events"]):
        if entry["latest_at"] > until:
            continue
        key = checkpoint_key(account_id, entry["events"])
        checkpoint = view.documents([key]).get(key)
        if checkpoint and all(version <= wanted.get(e, 0) for e, version in checkpoint["versions"].items()):
            return checkpoint
    return None


# --- read: what the GAM sees ------------------------------------------------------------
# Pure functions of the stored document, "now" and the exchange rates. Money is
# Decimal throughout and becomes a string (to the cent) only in the output. Keys
# of stored dicts carry no order (PostgreSQL's JSONB sorts them), so every list
# is sorted explicitly; units come in tree order (depth first, siblings by name).

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ZERO = Decimal(0)


def account_view(
    view: ViewRecorder,
    account_id: UUID,
    *,
    now: datetime,
    stale_after_days: int = 90,
    rates: ExchangeRates = PLANNING_RATES,
) -> dict[str, Any] | None:
    """The account as the GAM reads it, or ``None`` if the view does not know it."""
    key = account_key(account_id)
    document = view.documents([key]).get(key)
    if document is None:
        return None
    return read_account_view(document, now=now, stale_after_days=stale_after_days, rates=rates)


def read_account_view(
    document: Document, *, now: datetime, stale_after_days: int = 90, rates: ExchangeRates = PLANNING_RATES
) -> dict[str, Any]:
    """Everything a GAM looks at, derived from the stored document.

    ``now`` (timezone-aware) decides who counts as not contacted (no interaction in
    the last ``stale_after_days`` days) and which actions are overdue; ``rates``
    convert deal currencies into the account's reporting currency. Raises
    :class:`~projections.exchange_rates.UnknownCurrency` if a currency in play has
    no rate."""
    if now.utcoffset() is None:
        msg = "now must be timezone-aware"
        raise ValueError(msg)
    document = copy.deepcopy(document)  # the answer shares parts with it; the store's copy stays private
    units: dict[str, Document] = document["units"]
    reporting: str = document["account"]["reporting_currency"]
    plans = sorted(document["plans"].items(), key=lambda item: (item[1]["fiscal_period"], item[0]))
    return {
        "account": dict(document["account"]),
        "position": document.get("position"),
        "as_of": format_time(now),
        "unit_tree": unit_tree(units, document["team"]),
        "plans": [plan_summary(plan_id, plan, units, today=now.date()) for plan_id, plan in plans],
        "stakeholders": stakeholder_map(document["stakeholders"], units, now=now, stale_after_days=stale_after_days),
        "whitespace": whitespace_grid(document["plans"], units),
        "pipeline": pipeline(document["deals"], units, reporting, rates),
        "rollups": rollups(document, reporting, rates),
        "win_rate": win_rate(document["deals"], units, reporting, rates),
    }


# --- units ------------------------------------------------------------------------------


def children_of(units: dict[str, Document]) -> dict[str | None, list[str]]:
    """Parent id (``None`` for the root) → child unit ids, siblings by name."""
    children: dict[str | None, list[str]] = defaultdict(list)
    for unit_id in sorted(units, key=lambda u: (units[u]["name"], u)):
        parent = units[unit_id]["parent_id"]
        children[parent if parent in units else None].append(unit_id)
    return children


def tree_order(units: dict[str, Document]) -> list[str]:
    """Unit ids depth first from HQ: the order a GAM reads the tree in."""
    children = children_of(units)
    order: list[str] = []

    def visit(unit_id: str) -> None:
        order.append(unit_id)
        for child in children[unit_id]:
            visit(child)

    for root in children[None]:
        visit(root)
    return order


def in_tree_order(unit_ids: Iterable[str], units: dict[str, Document]) -> list[str]:
    """The given unit ids in tree order; ids the tree does not know come last."""
    rank = {unit_id: n for n, unit_id in enumerate(tree_order(units))}
    return sorted(set(unit_ids), key=lambda u: (rank.get(u, len(rank)), u))


def ancestors(units: dict[str, Document], unit_id: str) -> list[str]:
    """Unit ids from the parent up to HQ."""
    chain: list[str] = []
    parent = units.get(unit_id, {}).get("parent_id")
    while parent in units and parent not in chain:
        chain.append(parent)
        parent = units[parent]["parent_id"]
    return chain


def unit_label(units: dict[str, Document], unit_id: str | None) -> dict[str, Any]:
    """How an output row names a unit: id, name and level (name and level ``None`` if unknown)."""
    unit = units.get(unit_id or "", {})
    return {"unit_id": unit_id, "unit": unit.get("name"), "level": unit.get("level")}


def unit_tree(units: dict[str, Document], team: dict[str, Document]) -> list[dict[str, Any]]:
    """The units nested HQ → region → country → local, each with our team on it."""
    members: dict[str, list[dict[str, str]]] = defaultdict(list)
    for assignment in sorted(team.values(), key=lambda a: (a["role"], a["member"])):
        members[assignment["unit_id"]].append({"member": assignment["member"], "role": assignment["role"]})
    children = children_of(units)

    def node(unit_id: str) -> dict[str, Any]:
        unit = units[unit_id]
        return {
            "unit_id": unit_id, "name": unit["name"], "level": unit["level"], "code": unit["code"],
            "closed": unit["closed"], "team": members[unit_id], "children": [node(c) for c in children[unit_id]],
        }  # fmt: skip

    return [node(root) for root in children[None]]


# --- plans --------------------------------------------------------------------------------


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


# --- stakeholders -----------------------------------------------------------------------


def contacted_since(person: Document, cutoff: datetime) -> bool:
    return person["last_contact"] is not None and parse_time(person["last_contact"]) >= cutoff


def relationship_health(people: list[Document], *, now: datetime, stale_after_days: int) -> int | None:
    """How well we are connected at one unit, 0–100 (``None`` with nobody mapped).

    Each person who has not left scores

        ``score = 0.3 × owner + 0.3 × recent + 0.4 × (sentiment + 2) / 4``

    where ``owner`` is 1 if someone on our team owns the relationship, ``recent``
    is 1 if they were contacted within ``stale_after_days`` before ``now``, and
    sentiment runs from −2 to +2 (unrated counts as 0, neutral). The unit's health
    is the influence-weighted mean, ``100 × Σ influence × score / Σ influence``,
    rounded half up, with influence 1–5 (unrated counts as 3): a hostile,
    uncovered decision maker weighs five times a friendly user.
    """
    if not people:
        return None
    cutoff = now - timedelta(days=stale_after_days)
    weighted = Fraction(0)
    weights = 0
    for person in people:
        influence = person["influence"] or UNRATED_INFLUENCE
        score = (
            Fraction(3, 10) * bool(person["relationship_owner"])
            + Fraction(3, 10) * contacted_since(person, cutoff)
            + Fraction(4, 10) * Fraction((person["sentiment"] or 0) + 2, 4)
        )
        weighted += influence * score
        weights += influence
    return round_half_up(100 * weighted / weights)


def round_half_up(value: Fraction) -> int:
    """0.5 rounds up (Python's ``round`` would round it to even)."""
    return int((value + Fraction(1, 2)) // 1)


def mean_text(values: list[int], places: Decimal = CENT) -> str | None:
    """Mean (to the cent by default), as text; ``None`` for no values."""
    if not values:
        return None
    return str((Decimal(sum(values)) / len(values)).quantize(places, ROUND_HALF_UP))


def departed(sid: str, person: Document, units: dict[str, Document]) -> dict[str, Any]:
    """Someone who left the customer: kept out of the map, listed so the GAM sees who went."""
    return {
        "stakeholder_id": sid, "name": (person.get("personal") or {}).get("name"), "title": person["title"],
        **unit_label(units, person["unit_id"]), "left_on": person["left_on"],
    }  # fmt: skip


def stakeholder_map(
    people: dict[str, Document], units: dict[str, Document], *, now: datetime, stale_after_days: int
) -> dict[str, Any]:
    """Who is who at the customer: buying roles, influence, sentiment, the reports-to
    chart, coverage (relationship owner, recent contact) and health per unit."""
    present = {sid: p for sid, p in people.items() if p["left_on"] is None}
    cutoff = now - timedelta(days=stale_after_days)
    rank = {unit_id: n for n, unit_id in enumerate(tree_order(units))}
    ordered = sorted(present, key=lambda s: (rank.get(present[s]["unit_id"], len(rank)), present[s]["title"], s))

    def entry(sid: str) -> dict[str, Any]:
        person = present[sid]
        last = person["last_contact"]
        return {
            "stakeholder_id": sid, "name": (person.get("personal") or {}).get("name"), "title": person["title"],
            **unit_label(units, person["unit_id"]), "buying_role": person["buying_role"],
            "influence": person["influence"], "sentiment": person["sentiment"],
            "relationship_owner": person["relationship_owner"], "reports_to": person["reports_to"],
            "last_contact": last, "days_since_contact": (now - parse_time(last)).days if last else None,
            "stale": not contacted_since(person, cutoff), "interactions": person["interactions"],
        }  # fmt: skip

    def org_chart(manager: str | None) -> list[dict[str, Any]]:
        """People reporting to ``manager``; at the top, those whose manager is unknown or left."""
        return [
            {**entry(sid), "reports": org_chart(sid)}
            for sid in ordered
            if present[sid]["reports_to"] == manager or (manager is None and present[sid]["reports_to"] not in present)
        ]

    per_unit: dict[str, list[Document]] = defaultdict(list)
    for sid in ordered:
        per_unit[present[sid]["unit_id"]].append(present[sid])
    roles = Counter(p["buying_role"] or "unrated" for p in present.values())
    without_owner = [sid for sid in ordered if not present[sid]["relationship_owner"]]
    not_contacted = [sid for sid in ordered if not contacted_since(present[sid], cutoff)]
    return {
        "stale_after_days": stale_after_days,
        "people": [entry(sid) for sid in ordered],
        "left": [departed(sid, p, units) for sid, p in sorted(people.items()) if p["left_on"] is not None],
        "by_buying_role": {role: roles[role] for role in (*(r.value for r in BuyingRole), "unrated") if roles[role]},
        "org_chart": org_chart(None),
        "coverage": {
            "people": len(present),
            "with_owner": len(present) - len(without_owner),
            "contacted_recently": len(present) - len(not_contacted),
        },
        "without_owner": without_owner,
        "not_contacted": not_contacted,
        "units_without_stakeholders": [u for u in tree_order(units) if not units[u]["closed"] and u not in per_unit],
        "per_unit": {
            unit_id: {
                **unit_label(units, unit_id),
                "people": len(per_unit[unit_id]),
                "mean_sentiment": mean_text([p["sentiment"] for p in per_unit[unit_id] if p["sentiment"] is not None]),
                "health": relationship_health(per_unit[unit_id], now=now, stale_after_days=stale_after_days),
            }
            for unit_id in in_tree_order(per_unit, units)
        },
    }


# --- whitespace ---------------------------------------------------------------------------


def whitespace_grid(plans: dict[str, Document], units: dict[str, Document]) -> dict[str, Any]:
    """Offerings × units → status, from the latest plan (by fiscal period) that has cells."""
    latest = sorted(
        ((plan["fiscal_period"], plan_id) for plan_id, plan in plans.items() if plan["whitespace"]), reverse=True
    )
    if not latest:
        return {"fiscal_period": None, "offerings": [], "units": [], "cells": {}, "counts": {}}
    cells: dict[str, dict[str, str]] = plans[latest[0][1]]["whitespace"]
    columns = in_tree_order((u for row in cells.values() for u in row), units)
    counts = Counter(status for row in cells.values() for status in row.values())
    return {
        "fiscal_period": latest[0][0],
        "offerings": sorted(cells),
        "units": [unit_label(units, u) for u in columns],
        "cells": {
            offering: {u: cells[offering][u] for u in columns if u in cells[offering]} for offering in sorted(cells)
        },
        "counts": dict(sorted(counts.items())),
    }


# --- money --------------------------------------------------------------------------------


def money_text(amount: Decimal) -> str:
    """An amount as output: to the cent, rounded half up."""
    return str(amount.quantize(CENT, ROUND_HALF_UP))


def percent_text(part: Decimal, whole: Decimal) -> str | None:
    """``100 × part / whole`` to one decimal; ``None`` when ``whole`` is zero."""
    if not whole:
        return None
    return str((100 * part / whole).quantize(TENTH, ROUND_HALF_UP))


def money_of(value: Document) -> tuple[Decimal, str]:
    return Decimal(value["amount"]), value["currency"]


def weighted_amount(deal: Document) -> Decimal:
    """Amount × probability: what the deal is worth to a forecast."""
    amount, _ = money_of(deal["amount"])
    return amount * Decimal(deal["probability"]) / 100


@dataclass
class Bucket:
    """Open deals summed per deal currency (exactly); converted only on output."""

    deals: int = 0
    native: dict[str, list[Decimal]] = field(default_factory=dict)
    """currency → [unweighted, weighted]"""

    def add(self, deal: Document) -> None:
        amount, currency = money_of(deal["amount"])
        sums = self.native.setdefault(currency, [ZERO, ZERO])
        sums[0] += amount
        sums[1] += weighted_amount(deal)
        self.deals += 1

    def in_reporting(self, reporting: str, rates: ExchangeRates) -> tuple[Decimal, Decimal]:
        """(unweighted, weighted) in the reporting currency, exact."""
        unweighted = weighted = ZERO
        for currency, (native_unweighted, native_weighted) in self.native.items():
            rate = rates.rate(currency, reporting)
            unweighted += native_unweighted * rate
            weighted += native_weighted * rate
        return unweighted, weighted

    def to_json(self, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
        unweighted, weighted = self.in_reporting(reporting, rates)
        return {
            "deals": self.deals,
            "unweighted": money_text(unweighted),
            "weighted": money_text(weighted),
            "by_currency": {
                currency: {
                    "unweighted": money_text(u),
                    "weighted": money_text(w),
                    "rate": str(rates.rate(currency, reporting)),
                }
                for currency, (u, w) in sorted(self.native.items())
            },
        }

    def in_own_currency(self, currency: str, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
        """A bucket of one deal currency: its sums in that currency, and converted."""
        unweighted, weighted = self.native[currency]
        in_reporting = self.in_reporting(reporting, rates)
        return {
            "deals": self.deals, "currency": currency, "unweighted": money_text(unweighted),
            "weighted": money_text(weighted), "rate": str(rates.rate(currency, reporting)),
            "reporting_unweighted": money_text(in_reporting[0]), "reporting_weighted": money_text(in_reporting[1]),
        }  # fmt: skip


def converted(amount: Decimal, currency: str, reporting: str, rates: ExchangeRates) -> dict[str, str]:
    """One figure in its own and in the reporting currency, with the rate used."""
    in_reporting, rate = rates.convert(amount, currency, reporting)
    return {
        "amount": money_text(amount), "currency": currency, "reporting_amount": money_text(in_reporting),
        "reporting_currency": reporting, "rate": str(rate),
    }  # fmt: skip


def open_deal_row(
    deal_id: str, deal: Document, units: dict[str, Document], reporting: str, rates: ExchangeRates
) -> dict[str, Any]:
    amount, currency = money_of(deal["amount"])
    return {
        "deal_id": deal_id, "title": deal["title"], **unit_label(units, deal["unit_id"]), "stage": deal["stage"],
        "probability": deal["probability"], "expected_close": deal["expected_close"], "owner": deal["owner"],
        "products": deal["products"], "amount": converted(amount, currency, reporting, rates),
        "weighted": converted(weighted_amount(deal), currency, reporting, rates),
        "linked_objective_ids": deal["linked_objective_ids"],
        "buying_influences": sorted(deal["influences"].values(), key=lambda i: (i["role"], i["stakeholder_id"])),
        "qualification": dict(sorted(deal["qualification"].items())),
    }  # fmt: skip


def pipeline(
    deals: dict[str, Document], units: dict[str, Document], reporting: str, rates: ExchangeRates
) -> dict[str, Any]:
    """Open deals, unweighted and weighted (amount × probability), by stage, unit and
    level and in total; each bucket in the reporting currency and per deal currency
    with the rate used. ``rates`` names the table (source, as-of date) and every rate."""
    open_deals = {deal_id: d for deal_id, d in deals.items() if d["status"] == "open"}
    by_stage = {stage: Bucket() for stage in STAGES}
    by_level = {level: Bucket() for level in LEVELS}
    by_unit: dict[str, Bucket] = defaultdict(Bucket)
    by_currency: dict[str, Bucket] = defaultdict(Bucket)
    total = Bucket()
    for deal in open_deals.values():
        level = units.get(deal["unit_id"], {}).get("level")
        buckets = (
            total, by_stage.setdefault(deal["stage"], Bucket()), by_level.setdefault(level or "unknown", Bucket()),
            by_unit[deal["unit_id"]], by_currency[deal["amount"]["currency"]],
        )  # fmt: skip
        for bucket in buckets:
            bucket.add(deal)
    used = sorted(total.native)
    return {
        "reporting_currency": reporting,
        "rates": {**rates.describe(), "used": {c: str(rates.rate(c, reporting)) for c in used}},
        "total": total.to_json(reporting, rates),
        "by_stage": {stage: b.to_json(reporting, rates) for stage, b in by_stage.items()},
        "by_level": {level: b.to_json(reporting, rates) for level, b in by_level.items()},
        "by_unit": {
            u: {**unit_label(units, u), **by_unit[u].to_json(reporting, rates)} for u in in_tree_order(by_unit, units)
        },
        "by_deal_currency": {c: by_currency[c].in_own_currency(c, reporting, rates) for c in used},
        "deals": [
            open_deal_row(deal_id, open_deals[deal_id], units, reporting, rates)
            for deal_id in sorted(
                open_deals, key=lambda d: (open_deals[d]["expected_close"], open_deals[d]["title"], d)
            )
        ],
    }


# --- roll-ups -------------------------------------------------------------------------------

MEASURES = ("open", "weighted", "won")


def deal_measures(deal: Document, reporting: str, rates: ExchangeRates) -> dict[str, Decimal]:
    """A deal's open (unweighted), weighted-open and won value in the reporting currency."""
    measures = dict.fromkeys(MEASURES, ZERO)
    if deal["status"] == "open":
        amount, currency = money_of(deal["amount"])
        rate = rates.rate(currency, reporting)
        measures["open"] = amount * rate
        measures["weighted"] = weighted_amount(deal) * rate
    elif deal["status"] == "won":
        amount, currency = money_of(deal["final_amount"] or deal["amount"])
        measures["won"] = rates.convert(amount, currency, reporting)[0]
    return measures


def roll_up(units: dict[str, Document], own: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    """Each unit's measures plus those of every unit below it."""
    rolled = {u: dict.fromkeys(MEASURES, ZERO) for u in units}
    for unit_id, measures in own.items():
        for target in (unit_id, *ancestors(units, unit_id)):
            if target in rolled:
                for name in MEASURES:
                    rolled[target][name] += measures[name]
    return rolled


def _measures_text(measures: dict[str, Decimal]) -> dict[str, str]:
    return {name: money_text(measures[name]) for name in MEASURES}


def effective_target(objective: Document, unit_id: str, seen: frozenset[str] = frozenset()) -> Document | None:
    """The target a unit holds for an objective: the objective's own at its unit,
    the local target where the unit adapted it, the giving unit's where it adopted
    it; ``None`` where it declined, has not answered, or was never asked."""
    if unit_id == objective["unit_id"]:
        target: Document = objective["target"]
        return target
    directive = objective["directives"].get(unit_id)
    if directive is None or unit_id in seen:
        return None
    if directive["answer"] == CascadeAnswer.ADAPTED:
        local: Document = directive["local_target"]
        return local
    if directive["answer"] == CascadeAnswer.ADOPTED:
        return effective_target(objective, directive["from_unit_id"], seen | {unit_id})
    return None


def target_in_reporting(target: Document | None, reporting: str, rates: ExchangeRates) -> Decimal | None:
    """A money target in the reporting currency; ``None`` for other metrics."""
    if not target or not target.get("currency"):
        return None
    return rates.convert(Decimal(target["value"]), target["currency"], reporting)[0]


def objective_rollup(
    objective_id: str, objective: Document, fiscal_period: str, document: Document, reporting: str, rates: ExchangeRates
) -> dict[str, Any]:
    """One objective up the tree: at the owning unit and every unit below it that
    holds it, reported on it, or books linked deals: the target it holds there,
    the latest progress it reported and the mean progress reported below it, and
    the open, weighted and won value of the deals linked to the objective at and
    below it against that target (money targets only)."""
    units: dict[str, Document] = document["units"]
    own: dict[str, dict[str, Decimal]] = {}
    linked_total = dict.fromkeys(MEASURES, ZERO)
    linked_count = 0
    for deal in document["deals"].values():
        if objective_id in deal["linked_objective_ids"]:
            linked_count += 1
            measures = deal_measures(deal, reporting, rates)
            sums = own.setdefault(deal["unit_id"], dict.fromkeys(MEASURES, ZERO))
            for name in MEASURES:
                sums[name] += measures[name]
                linked_total[name] += measures[name]
    rolled = roll_up(units, own)
    top = objective["unit_id"]
    progress: dict[str, int] = {u: p["percent"] for u, p in objective["progress"].items()}
    below_own_deals = {u for d in own for u in (d, *ancestors(units, d))}
    shown = {top, *objective["directives"], *progress, *below_own_deals}
    rows = []
    for unit_id in in_tree_order(shown, units):
        if unit_id != top and top not in ancestors(units, unit_id):
            continue
        below = [progress[u] for u in progress if unit_id in ancestors(units, u)]
        target = effective_target(objective, unit_id)
        target_value = target_in_reporting(target, reporting, rates)
        measures = rolled.get(unit_id, dict.fromkeys(MEASURES, ZERO))
        directive = objective["directives"].get(unit_id)
        rows.append({
            **unit_label(units, unit_id),
            "holds_as": "owner" if unit_id == top else (directive["answer"] or AWAITING) if directive else None,
            "target": target,
            "progress_percent": progress.get(unit_id),
            "progress_below_percent": mean_text(below, TENTH),
            "linked_deals": _measures_text(measures),
            "attainment_percent": percent_text(measures["won"], target_value) if target_value else None,
            "coverage_percent": percent_text(measures["won"] + measures["weighted"], target_value)
            if target_value else None,
        })  # fmt: skip
    target_value = target_in_reporting(objective["target"], reporting, rates)
    return {
        "objective_id": objective_id,
        "fiscal_period": fiscal_period,
        "title": objective["title"],
        **unit_label(units, top),
        "target": objective["target"],
        "target_in_reporting_currency": money_text(target_value) if target_value is not None else None,
        "linked_deals": {"count": linked_count, **_measures_text(linked_total)},
        "attainment_percent": percent_text(linked_total["won"], target_value) if target_value else None,
        "coverage_percent": percent_text(linked_total["won"] + linked_total["weighted"], target_value)
        if target_value
        else None,
        "units": rows,
    }


def rollups(document: Document, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
    """Pipeline and won business of each unit, on its own and rolled up with
    everything below it (local → country → region → HQ), and each objective's
    progress and linked deals up the tree against its targets. ``attainment`` is
    won ÷ target, ``coverage`` (won + weighted open) ÷ target, both in the
    reporting currency."""
    units: dict[str, Document] = document["units"]
    own = {u: dict.fromkeys(MEASURES, ZERO) for u in units}
    for deal in document["deals"].values():
        if deal["unit_id"] in own:
            measures = deal_measures(deal, reporting, rates)
            for name in MEASURES:
                own[deal["unit_id"]][name] += measures[name]
    rolled = roll_up(units, own)
    plans = sorted(document["plans"].values(), key=lambda p: p["fiscal_period"])
    return {
        "currency": reporting,
        "units": {
            u: {**unit_label(units, u), "own": _measures_text(own[u]), "rolled_up": _measures_text(rolled[u])}
            for u in tree_order(units)
        },
        "objectives": [
            objective_rollup(objective_id, objective, plan["fiscal_period"], document, reporting, rates)
            for plan in plans
            for objective_id, objective in sorted(plan["objectives"].items(), key=lambda i: (i[1]["title"], i[0]))
        ],
    }


# --- win rate ---------------------------------------------------------------------------------


def win_rate(
    deals: dict[str, Document], units: dict[str, Document], reporting: str, rates: ExchangeRates
) -> dict[str, Any]:
    """won ÷ (won + lost), by count and by value in the reporting currency (won deals
    at their final amount, lost ones at their last amount); open deals do not count."""
    closed = {d: deal for d, deal in deals.items() if deal["status"] in ("won", "lost")}
    value: dict[str, Decimal] = {"won": ZERO, "lost": ZERO}
    count: Counter[str] = Counter()
    rows = []
    for deal_id in sorted(closed, key=lambda d: (closed[d]["status"], closed[d]["title"], d)):
        deal = closed[deal_id]
        amount, currency = money_of(deal["final_amount"] or deal["amount"])
        value[deal["status"]] += rates.convert(amount, currency, reporting)[0]
        count[deal["status"]] += 1
        rows.append({
            "deal_id": deal_id, "title": deal["title"], **unit_label(units, deal["unit_id"]),
            "status": deal["status"], "value": converted(amount, currency, reporting, rates),
            "loss_reason": deal["loss_reason"], "competitor": deal["competitor"],
        })  # fmt: skip
    return {
        "won": count["won"],
        "lost": count["lost"],
        "by_count": percent_text(Decimal(count["won"]), Decimal(count["won"] + count["lost"])),
        "by_value": percent_text(value["won"], value["won"] + value["lost"]),
        "won_value": money_text(value["won"]),
        "lost_value": money_text(value["lost"]),
        "currency": reporting,
        "closed_deals": rows,
    }

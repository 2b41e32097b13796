"""Right of access (GDPR Art. 15): everything gam holds about one person, as JSON.

The report is read from the events, not from the views, so it is complete and
current whatever a view's lag: the person's own state and every event of their
history (who changed what about them, and when), the deals on which they are a
buying influence or whose MEDDPICC evidence is about them, with the events that
named them there, who reports to them, and which plans and deals mention them by
name in their text. A buying influence since detached shows in the history, not
among the deals. Personal data is read through the application's mapper, so once
the person's key is destroyed their fields read ``[erased]``, and so does the free
text bound to them (buying-influence notes, evidence about them, sealed under their
key); mentions are no longer looked for, since after erasure gam no longer knows
their name.

Every answered request is kept (:mod:`infra.access_log`): who asked, on what
legal basis, and when; the report lists the requests made about the person.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from domain.base import GamAggregate, GamEvent
from domain.catalog import entity_type_of, event_type_of, payload_of
from domain.deal import Deal
from domain.personal_text import mentions_any
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.values import ERASED
from infra.access_log import AccessRequest, SubjectAccessLog
from projections.encoding import format_time, to_json_value
from services.app import GamApplication
from services.entity_models import entity_json

ACCESS_BASIS = "GDPR Art. 15 (right of access)"
SCAN_PAGE = 1_000
REFERENCING = (
    Deal.Opened,
    Deal.BuyingInfluenceAttached,
    Deal.BuyingInfluenceDetached,
    Deal.QualificationAssessed,
    Stakeholder.ReportsToSet,
    AccountPlan.Started,
)
"""Events of other entities that can tie them to the person or to the person's account."""


def request_subject_access(
    app: GamApplication,
    log: SubjectAccessLog,
    stakeholder_id: UUID,
    *,
    requested_by: str,
    legal_basis: str,
    at: datetime,
    key_fetches: SubjectAccessLog | None = None,
) -> dict[str, Any]:
    """The report, after recording who asked, why and when (a request for nobody
    known, a :class:`~domain.errors.NotFound`, is not recorded). With ``key_fetches``
    (``infra.access_log.KEY_FETCH_TABLE``) it also names the recipients of their data:
    the services that fetched the person's key to open what gam published sealed."""
    report = subject_access_report(app, stakeholder_id)
    request = AccessRequest(uuid4(), stakeholder_id, requested_by, legal_basis, at)
    log.record(request)
    fetched = [] if key_fetches is None else key_fetches.requests(stakeholder_id)
    return {
        **report,
        "request": access_request_json(request),
        "access_requests": [access_request_json(r) for r in log.requests(stakeholder_id)],
        "key_fetches": [access_request_json(r) for r in fetched],
    }


def access_request_json(request: AccessRequest) -> dict[str, Any]:
    return {
        "request_id": str(request.request_id),
        "stakeholder_id": str(request.stakeholder_id),
        "requested_by": request.requested_by,
        "legal_basis": request.legal_basis,
        "requested_at": format_time(request.requested_at),
    }


def subject_access_report(app: GamApplication, stakeholder_id: UUID) -> dict[str, Any]:
    """Everything held about the person (see the module's docstring)."""
    person = app.load(Stakeholder, stakeholder_id)
    references = _referencing_events(app, stakeholder_id, person.account_id)
    naming = Deal.BuyingInfluenceAttached | Deal.QualificationAssessed
    deal_ids = {e.originator_id for e in references if isinstance(e, naming)}
    deal_ids_of_account = [e.originator_id for e in references if isinstance(e, Deal.Opened)]
    plan_ids = [e.originator_id for e in references if isinstance(e, AccountPlan.Started)]
    managed = {e.originator_id for e in references if isinstance(e, Stakeholder.ReportsToSet)}
    deals = {deal_id: app.load(Deal, deal_id) for deal_id in {*deal_ids, *deal_ids_of_account}}
    history = [_history_entry(e, person.erased) for e in app.events.get(stakeholder_id) if isinstance(e, GamEvent)]
    history += [
        _history_entry(e, person.erased)
        for e in references
        if isinstance(e, Deal.BuyingInfluenceAttached | Deal.BuyingInfluenceDetached | Deal.QualificationAssessed)
    ]
    history.sort(key=lambda entry: (entry["occurred_at"], entry["entity_id"], entry["version"]))
    return {
        "stakeholder_id": str(stakeholder_id),
        "erased": person.erased,
        "person": entity_json(person),
        "deals": [
            influence
            for d in sorted(deal_ids, key=str)
            if (influence := _influence(deals[d], stakeholder_id))["influences"] or influence["evidence"]
        ],
        "direct_reports": sorted(
            str(s) for s in managed if s != stakeholder_id and app.load(Stakeholder, s).reports_to == stakeholder_id
        ),
        "mentions": []
        if person.erased
        else _mentions([app.load(AccountPlan, p) for p in plan_ids] + list(deals.values()), person.personal.name),
        "history": history,
    }


def _referencing_events(app: GamApplication, stakeholder_id: UUID, account_id: UUID) -> list[GamEvent]:
    """The events of :data:`REFERENCING` that name the person or their account, in log order
    (one pass over the log, filtered by topic in the store)."""
    topics = [get_topic(cls) for cls in REFERENCING]
    found: list[GamEvent] = []
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=SCAN_PAGE, topics=topics)
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, GamEvent) and _references(event, stakeholder_id, account_id):
                found.append(event)
        if len(page) < SCAN_PAGE:
            return found
        start = page[-1].id + 1


def _references(event: Any, stakeholder_id: UUID, account_id: UUID) -> bool:
    if isinstance(event, Deal.BuyingInfluenceAttached | Deal.BuyingInfluenceDetached | Deal.QualificationAssessed):
        return bool(event.stakeholder_id == stakeholder_id)
    if isinstance(event, Stakeholder.ReportsToSet):
        return stakeholder_id in (event.from_manager_id, event.to_manager_id)
    return bool(getattr(event, "account_id", None) == account_id)


def _history_entry(event: GamEvent, erased: bool) -> dict[str, Any]:
    payload = payload_of(event)
    if erased and isinstance(event, Deal.BuyingInfluenceAttached) and payload.get("note") is not None:
        payload["note"] = ERASED
    return {
        "occurred_at": format_time(event.timestamp),
        "entity_type": entity_type_of(event),
        "entity_id": str(event.originator_id),
        "version": event.originator_version,
        "event_type": event_type_of(event),
        "actor": event.actor,
        "reason": event.reason,
        "fields": to_json_value(payload),
    }


def _influence(deal: Deal, stakeholder_id: UUID) -> dict[str, Any]:
    """The person's part in the deal; the deal, read through the mapper, holds the notes and
    evidence about them opened, or ``[erased]`` once their key is destroyed."""
    return {
        "deal_id": str(deal.id),
        "title": deal.title,
        "status": deal.status,
        "stage": deal.stage,
        "influences": [
            {"role": i.role, "degree": i.degree, "note": i.note}
            for i in deal.influences.values()
            if i.stakeholder_id == stakeholder_id
        ],
        "evidence": [
            {"element": q.element, "status": q.status, "evidence": q.evidence}
            for q in sorted(deal.qualification.values(), key=lambda q: q.element)
            if q.stakeholder_id == stakeholder_id
        ],
    }


def _mentions(entities: Sequence[GamAggregate], name: str) -> list[dict[str, Any]]:
    """Where the person's full name appears in the text of the account's plans and deals."""
    return [
        {"entity_type": entity.entity_type, "entity_id": str(entity.id), "path": path, "text": text}
        for entity in entities
        for path, text in _texts(vars(entity), "")
        if mentions_any(text, (name,))
    ]


def _texts(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside an entity's state, with its JSON-pointer-like path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not (isinstance(key, str) and key.startswith("_")):
                yield from _texts(item, f"{path}/{_key(key)}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}/{index}")
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _texts(getattr(value, f.name), f"{path}/{f.name}")


def _key(key: Any) -> str:
    return "/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)

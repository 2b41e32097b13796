"""Audit trail: one row per event with who, when, what changed (before → after),
why, and the correlation and causation ids.

``before`` comes from the event itself where it names both sides
(``from_stage``/``to_stage``), otherwise from the last value this view saw for
the same field of the same entity (kept in ``state:<entity id>`` documents).
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.catalog import entity_type_of_class, personal_fields, subject_in
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from projections.base import ViewProjection, as_uuid, owner_keys, owner_of
from projections.facts import EventFacts
from projections.ports import AuditQuery, AuditRow, Document, ViewChange, ViewRecorder

STATE_PREFIX = "state:"
PERSONAL_DATA = "[personal data]"

ITEM_KEYS: dict[type[GamEvent], tuple[str, ...]] = {
    GlobalAccount.UnitAdded: ("unit_id",),
    GlobalAccount.UnitRenamed: ("unit_id",),
    GlobalAccount.UnitClosed: ("unit_id",),
    GlobalAccount.TeamMemberAssigned: ("member", "unit_id", "role"),
    GlobalAccount.TeamMemberRemoved: ("member", "unit_id", "role"),
    AccountPlan.ObjectiveSet: ("objective_id",),
    AccountPlan.ObjectiveCascaded: ("objective_id", "from_unit_id"),
    AccountPlan.ObjectiveAdopted: ("objective_id", "unit_id"),
    AccountPlan.ObjectiveAdapted: ("objective_id", "unit_id"),
    AccountPlan.ObjectiveDeclined: ("objective_id", "unit_id"),
    AccountPlan.ReconsiderationRequested: ("objective_id", "unit_id"),
    AccountPlan.ActionAdded: ("action_id",),
    AccountPlan.ActionStatusChanged: ("action_id",),
    AccountPlan.ProgressReported: ("objective_id", "unit_id"),
    AccountPlan.SwotEntryAdded: ("entry_id",),
    AccountPlan.SwotEntryRemoved: ("entry_id",),
    AccountPlan.WhitespaceCellSet: ("offering", "unit_id"),
    AccountPlan.BusinessReviewHeld: ("review_id",),
    Stakeholder.InteractionLogged: ("interaction_id",),
    Deal.BuyingInfluenceAttached: ("stakeholder_id", "role"),
    Deal.BuyingInfluenceDetached: ("stakeholder_id", "role"),
    Deal.QualificationAssessed: ("element",),
}
"""Events about one item of a collection: their fields are tracked per item
(``objective[<id>].title``), so ``before`` is that item's last value."""

REMOVALS: frozenset[type[GamEvent]] = frozenset(
    {GlobalAccount.TeamMemberRemoved, AccountPlan.SwotEntryRemoved, Deal.BuyingInfluenceDetached}
)


def field_changes(
    event_class: type[GamEvent], payload: dict[str, Any], state: Document
) -> tuple[list[Document], Document]:
    """Changes (``field``, ``before``, ``after``) an event of this class with this
    payload (JSON values) makes, and the entity's field state after it."""
    new_state = dict(state)
    keys = ITEM_KEYS.get(event_class, ())
    prefix = ""
    if keys:
        item = "/".join(str(payload[k]) for k in keys)
        prefix = f"{keys[0].removesuffix('_id')}[{item}]."
    changes: list[Document] = []
    for name, after in payload.items():
        if name in keys:
            continue
        if name.startswith("from_") and "to_" + name[5:] in payload:
            continue
        if name.startswith("to_") and "from_" + name[3:] in payload:
            path = prefix + name[3:]
            before = payload["from_" + name[3:]]
        else:
            path = prefix + name
            before = state.get(path)
        changes.append({"field": path, "before": before, "after": after})
        new_state[path] = after
    if event_class in REMOVALS:
        changes.append({"field": prefix + "present", "before": state.get(prefix + "present", True), "after": False})
        new_state[prefix + "present"] = False
    elif keys:
        if state.get(prefix + "present") is not True:
            changes.insert(0, {"field": prefix + "present", "before": state.get(prefix + "present"), "after": True})
        new_state[prefix + "present"] = True
    return changes, new_state


class AuditTrailProjection(ViewProjection):
    view_name: ClassVar[str] = "audit_trail"
    writes_audit_rows: ClassVar[bool] = True
    rebuild_cost: ClassVar[float] = 48.0
    """µs of CPU per event, rebuilt alone (``python -m bench.rebuild``, events/CPU-s)."""

    def keys_read(self, event: EventFacts) -> tuple[str, ...]:
        return (*owner_keys(event), STATE_PREFIX + event.entity)

    def change(self, event: EventFacts, position: int) -> ViewChange:
        account_id, index = owner_of(self.view, event)
        state_key = STATE_PREFIX + event.entity
        state = self.view.document(state_key) or {}
        payload = event.payload
        personal = [
            field
            for field, subject in personal_fields(event.event_class).items()
            if payload.get(field) is not None and subject_in(subject, payload, event.entity) is not None
        ]
        if personal:
            # the trail says that it changed, not what it says (a person's data, or free text about them)
            payload = {**payload, **dict.fromkeys(personal, PERSONAL_DATA)}
        changes, new_state = field_changes(event.event_class, payload, state)
        row = AuditRow(
            position=position,
            occurred_at=event.timestamp,
            actor=event.actor,
            account_id=as_uuid(account_id),
            entity_type=entity_type_of_class(event.event_class),
            entity_id=event.entity_id,
            version=event.version,
            event_type=event.event_class.__qualname__,
            changes=tuple(changes),
            reason=event.reason,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
        )
        return ViewChange(documents={**index, state_key: new_state}, audit_rows=(row,))


def audit_trail(view: ViewRecorder, query: AuditQuery) -> list[AuditRow]:
    """Rows matching the query; pass the last row's position as ``after_position`` for the next page."""
    return view.select_audit(query)


def entity_history(view: ViewRecorder, entity_id: UUID, after_position: int = 0, limit: int = 100) -> list[AuditRow]:
    return view.select_audit(AuditQuery(entity_id=entity_id, after_position=after_position, limit=limit))

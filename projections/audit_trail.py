"""Audit trail: one row per event with who, when, what changed (before → after),
why, and the correlation and causation ids.

``before`` comes from the event itself where it names both sides
(``from_stage``/``to_stage``), otherwise from the last value this view saw for
the same field of the same entity (kept in ``state:<entity id>`` documents).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.catalog import PERSONAL_DATA_FIELDS, entity_type_of, event_type_of, payload_of
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from projections.base import ViewProjection, owner_of
from projections.encoding import to_json_value
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


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


def field_changes(
    event_class: type[GamEvent], payload: dict[str, Any], state: Document
) -> tuple[list[FieldChange], Document]:
    """Changes an event of this class with this payload makes, and the entity's field state after it."""
    new_state = dict(state)
    keys = ITEM_KEYS.get(event_class, ())
    prefix = ""
    if keys:
        item = "/".join(str(to_json_value(payload[k])) for k in keys)
        prefix = f"{keys[0].removesuffix('_id')}[{item}]."
    changes: list[FieldChange] = []
    for name, value in payload.items():
        if name in keys:
            continue
        if name.startswith("from_") and "to_" + name.removeprefix("from_") in payload:
            continue
        field = name.removeprefix("to_") if name.startswith("to_") and "from_" + name[3:] in payload else name
        path = prefix + field
        after = to_json_value(value)
        if name.startswith("to_") and "from_" + name[3:] in payload:
            before = to_json_value(payload["from_" + name[3:]])
        else:
            before = state.get(path)
        changes.append(FieldChange(path, before, after))
        new_state[path] = after
    if event_class in REMOVALS:
        changes.append(FieldChange(prefix + "present", state.get(prefix + "present", True), False))
        new_state[prefix + "present"] = False
    elif keys:
        if state.get(prefix + "present") is not True:
            changes.insert(0, FieldChange(prefix + "present", state.get(prefix + "present"), True))
        new_state[prefix + "present"] = True
    return changes, new_state


class AuditTrailProjection(ViewProjection):
    view_name: ClassVar[str] = "audit_trail"
    writes_audit_rows: ClassVar[bool] = True

    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        if not isinstance(event, GamEvent):
            return ViewChange()
        account_id, index = owner_of(self.view, event)
        state_key = STATE_PREFIX + str(event.originator_id)
        state = self.view.documents([state_key]).get(state_key, {})
        payload = payload_of(event)
        for field in PERSONAL_DATA_FIELDS.get(type(event), ()):
            payload[field] = PERSONAL_DATA  # the trail says that it changed, not what it says
        changes, new_state = field_changes(type(event), payload, state)
        row = AuditRow(
            position=position,
            occurred_at=event.timestamp,
            actor=event.actor,
            account_id=account_id,
            entity_type=entity_type_of(event),
            entity_id=event.originator_id,
            version=event.originator_version,
            event_type=event_type_of(event),
            changes=tuple({"field": c.field, "before": c.before, "after": c.after} for c in changes),
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

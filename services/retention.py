"""Retention: personal data of people who left the customer is kept only so long.

With ``GAM_RETENTION_AFTER_DEPARTURE_DAYS`` set, ``gam retention run`` erases every
person whose recorded departure (``RecordDeparture``, the ``Stakeholder.Left``
event) lies more than that many days back. Each erasure is an ordinary
``ErasePersonalData`` command through the bus, so it is authorised, stored, hash
chained, relayed and shreds the key exactly like one a compliance officer sends;
its legal basis names the policy. People already erased are not erased again, so
a run can be repeated (a scheduler's retry, say) without effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic

from domain.commands import ErasePersonalData
from domain.metadata import EventMetadata
from domain.stakeholder import Stakeholder
from services.app import GamApplication
from services.bus import MessageBus

RETENTION_ACTOR = "retention-policy"
SCAN_PAGE = 1_000


@dataclass(frozen=True)
class Leaver:
    """Someone past the retention period, not yet erased."""

    stakeholder_id: UUID
    account_id: UUID
    left_on: date


def legal_basis(days: int, left_on: date) -> str:
    return (
        f"retention policy: personal data kept {days} days after leaving the customer "
        f"(GAM_RETENTION_AFTER_DEPARTURE_DAYS={days}); left on {left_on.isoformat()}"
    )


def leavers_due(app: GamApplication, days: int, today: date) -> list[Leaver]:
    """People who left more than ``days`` days before ``today`` and are not erased, in the
    order they were recorded as leaving (read from the events, so no view's lag hides one)."""
    found: dict[UUID, Leaver] = {}
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=SCAN_PAGE, topics=[get_topic(Stakeholder.Left)])
        for notification in page:
            person = app.load(Stakeholder, notification.originator_id)  # type: ignore[arg-type]
            left_on = person.left_on
            if left_on is not None and not person.erased and (today - left_on).days > days:
                found[person.id] = Leaver(person.id, person.account_id, left_on)
        if len(page) < SCAN_PAGE:
            return list(found.values())
        start = page[-1].id + 1


def erase_leavers(
    bus: MessageBus, days: int, due: Iterable[Leaver], *, now: datetime, actor: str = RETENTION_ACTOR
) -> tuple[UUID, ...]:
    """Erase everyone ``due`` (:func:`leavers_due`, which a dry run only lists), the
    policy as each erasure's legal basis; one correlation id ties the run together."""
    correlation = uuid4()
    erased = []
    for leaver in due:
        basis = legal_basis(days, leaver.left_on)
        meta = EventMetadata(actor=actor, at=now, correlation_id=correlation, reason=basis)
        bus.handle(ErasePersonalData(stakeholder_id=leaver.stakeholder_id, legal_basis=basis), meta)
        erased.append(leaver.stakeholder_id)
    return tuple(erased)

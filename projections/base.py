"""The shape every gam view shares, on ``eventsourcing.projection.Projection``.

A view projection turns one event into a :class:`~projections.ports.ViewChange`
(pure logic over the documents it reads) and records the change together with
the event's tracking position in one transaction. Events a view does not care
about still record their position, so the view's position is the log's.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.catalog import entity_type_of
from projections.ports import Document, ViewChange, ViewRecorder

OWNER_PREFIX = "owner:"
"""Index documents ``owner:<entity id>`` → the account (and kind) an entity belongs to."""


class ViewProjection(Projection[ViewRecorder]):
    view_name: ClassVar[str] = "view"
    writes_audit_rows: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.view_name

    def process_event(self, domain_event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        self.view.record(self.change_for(domain_event, tracking.notification_id), tracking)

    @abstractmethod
    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        """What this event does to the view (pure but for reading the view's documents)."""

    def reset(self) -> None:
        self.view.reset(audit_rows=self.writes_audit_rows)


def owner_of(view: ViewRecorder, event: GamEvent) -> tuple[UUID | None, dict[str, Document | None]]:
    """The account the event's entity belongs to, and the index document to write
    when the event creates an entity (in the same transaction as the view change)."""
    entity_id = event.originator_id
    if isinstance(event, GlobalAccount.Event):
        return entity_id, {}
    account_id = getattr(event, "account_id", None)
    if event.originator_version == 1 and isinstance(account_id, UUID):
        index = {"account_id": str(account_id), "entity_type": entity_type_of(event)}
        return account_id, {OWNER_PREFIX + str(entity_id): index}
    found = view.documents([OWNER_PREFIX + str(entity_id)]).get(OWNER_PREFIX + str(entity_id))
    return (UUID(found["account_id"]) if found else None), {}

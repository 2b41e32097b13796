"""The shape every gam view shares, on ``eventsourcing.projection.Projection``.

A view projection turns one event into a :class:`~projections.ports.ViewChange`
(pure logic over the documents it reads) and records the change together with
the event's tracking position in one transaction. Events a view does not care
about still record their position, so the view's position is the log's.

The logic reads an event as :class:`~projections.facts.EventFacts`: a follower
builds them from each domain event the library hands it (:meth:`process_event`),
a catch-up decodes them once from the stored event for every view. Either way in,
:meth:`change_for` gives the view's :meth:`change`. A view names the event classes
it reads (:meth:`reads`), so a catch-up need not decode the events no view reads.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.catalog import entity_type_of_class
from projections.facts import EventFacts, facts_of
from projections.ports import Document, ViewChange, ViewRecorder

NO_CHANGE = ViewChange()
"""What an event a view ignores does to it (shared: nothing changes a ViewChange)."""

OWNER_PREFIX = "owner:"
"""Index documents ``owner:<entity id>`` → the account (and kind) an entity belongs to."""


class ViewProjection(Projection[ViewRecorder]):
    view_name: ClassVar[str] = "view"
    writes_audit_rows: ClassVar[bool] = False
    rebuild_cost: ClassVar[float] = 1.0
    """What a rebuild of this view costs, relative to the others: a rebuild shared out
    between processes balances its groups by it (``services.parallel_rebuild``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.view_name

    def process_event(self, domain_event: DomainEventProtocol[Any], tracking: Tracking) -> None:
        self.view.record(self.change_for(domain_event, tracking.notification_id), tracking)

    def change_for(self, event: EventFacts | DomainEventProtocol[Any], position: int) -> ViewChange:
        """What this event (its facts, or the domain event) does to the view."""
        if not isinstance(event, EventFacts):
            if not isinstance(event, GamEvent):
                return NO_CHANGE
            event = facts_of(event)
        return self.change(event, position) or NO_CHANGE

    @classmethod
    def reads(cls, event_class: type[GamEvent]) -> bool:
        """Whether events of this class can change the view (default: every one)."""
        return True

    def keys_read(self, event: EventFacts) -> tuple[str, ...]:
        """Documents :meth:`change` will read for this event that can be named before
        reading any (default: the owner index). A catch-up reads them for a whole batch
        in one query: read one by one as each event first touched them, they cost a round
        trip per entity, which made the first commands after a follower started wait."""
        return owner_keys(event)

    @abstractmethod
    def change(self, event: EventFacts, position: int) -> ViewChange | None:
        """What this event does to the view (pure but for reading the view's
        documents); ``None`` for nothing."""

    def reset(self) -> None:
        self.view.reset(audit_rows=self.writes_audit_rows)


def stated_account(event: EventFacts) -> str | None:
    """The account the event itself names: an account's own event, or an entity's creation."""
    if issubclass(event.event_class, GlobalAccount.Event):
        return event.entity
    account_id = event.payload.get("account_id")
    if event.version == 1 and isinstance(account_id, str):
        return account_id
    return None


def owner_keys(event: EventFacts) -> tuple[str, ...]:
    """The owner index :func:`owner_of` reads for this event (none when the event names its account)."""
    return () if stated_account(event) is not None else (OWNER_PREFIX + event.entity,)


def owner_of(view: ViewRecorder, event: EventFacts) -> tuple[str | None, dict[str, Document | None]]:
    """The account the event's entity belongs to (its id as text), and the index
    document to write when the event creates an entity (in the same transaction as
    the view change)."""
    if issubclass(event.event_class, GlobalAccount.Event):
        return event.entity, {}
    account_id = stated_account(event)
    if account_id is not None:
        index = {"account_id": account_id, "entity_type": entity_type_of_class(event.event_class)}
        return account_id, {OWNER_PREFIX + event.entity: index}
    found = view.document(OWNER_PREFIX + event.entity)
    return (found["account_id"] if found else None), {}


def as_uuid(text: str | None) -> UUID | None:
    return None if text is None else _account_uuid(text)


@functools.lru_cache(maxsize=4096)
def _account_uuid(text: str) -> UUID:
    """Accounts are few and each has many events: their ids are built once."""
    return UUID(text)

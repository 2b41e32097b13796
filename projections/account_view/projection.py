"""The account view's projection: each event evolves its account's document, and
the account's coverage and checkpoints and the changed entity's list row are kept
in the same transaction."""

from __future__ import annotations

import functools
from typing import ClassVar

from domain.account import GlobalAccount
from projections.account_view.checkpoints import DEFAULT_CHECKPOINT_INTERVAL, checkpoint_changes, covered_key
from projections.account_view.evolve import account_key, evolve_document, member_index, member_key
from projections.account_view.lists import list_rows_for
from projections.base import ViewProjection, owner_keys, owner_of, stated_account
from projections.facts import EventFacts
from projections.ports import Document, ViewChange

TEAM_EVENTS = (GlobalAccount.TeamMemberAssigned, GlobalAccount.TeamMemberRemoved)
MEMBER_EVENTS = (*TEAM_EVENTS, GlobalAccount.Created)
"""Events that change whose team an account is on (the member index, for worklists)."""


class AccountViewProjection(ViewProjection):
    view_name: ClassVar[str] = "account_view"
    rebuild_cost: ClassVar[float] = 39.0
    """µs of CPU per event, rebuilt alone (``python -m bench.rebuild``, events/CPU-s)."""
    checkpoint_interval: ClassVar[int] = DEFAULT_CHECKPOINT_INTERVAL
    """Keep a checkpoint every this many events of an account; 0 keeps none (the
    coverage is still kept, so that checkpoints taken later know what they hold)."""
    keeps_checkpoints: ClassVar[bool] = True
    """False for a private replay: no coverage, no checkpoints, no member index."""
    keeps_lists: ClassVar[bool] = True
    """False for a private replay: nobody pages through its lists."""

    def keys_read(self, event: EventFacts) -> tuple[str, ...]:
        """The owner index, or, when the event names its account, that account's document
        and coverage (an entity's later events find those hot: they were kept)."""
        account_id = stated_account(event)
        if account_id is None:
            return owner_keys(event)
        if self.keeps_checkpoints:
            return account_key(account_id), covered_key(account_id)
        return (account_key(account_id),)

    def change(self, event: EventFacts, position: int) -> ViewChange:
        account_id, index = owner_of(self.view, event)
        if account_id is None:
            return ViewChange(documents=index)
        key = account_key(account_id)
        document = evolve_document(self.view.document(key), event)
        if document is None:
            return ViewChange(documents=index)
        document["position"] = position
        changes: dict[str, Document | None] = {**index, key: document}
        member = event.payload.get("member" if event.event_class in TEAM_EVENTS else "lead_gam")
        if member and event.event_class in MEMBER_EVENTS and self.keeps_checkpoints:
            changes[member_key(member)] = member_index(self.view.document(member_key(member)), document, member)
        if self.keeps_checkpoints:
            covered = self.view.document(covered_key(account_id))
            changes.update(
                checkpoint_changes(self.view, account_id, event, document, covered, self.checkpoint_interval)
            )
        rows = list_rows_for(account_id, document, event) if self.keeps_lists else {}
        return ViewChange(documents=changes, list_rows=rows)


class AccountReplayProjection(AccountViewProjection):
    """The account view alone, for a private replay (time travel): no coverage, no
    checkpoints, no lists."""

    keeps_checkpoints: ClassVar[bool] = False
    keeps_lists: ClassVar[bool] = False


@functools.cache
def account_view_projection(checkpoint_interval: int) -> type[AccountViewProjection]:
    """The account view's projection keeping a checkpoint every ``checkpoint_interval``
    events of an account (a class, as ``eventsourcing``'s runner builds its own instance)."""
    if checkpoint_interval == AccountViewProjection.checkpoint_interval:
        return AccountViewProjection
    name = f"AccountViewProjectionEvery{checkpoint_interval}"
    return type(name, (AccountViewProjection,), {"checkpoint_interval": checkpoint_interval})

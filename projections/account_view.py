"""Placeholder: being written."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol

from projections.base import ViewProjection
from projections.ports import ViewChange


class AccountViewProjection(ViewProjection):
    view_name: ClassVar[str] = "account_view"

    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        return ViewChange()

"""Placeholder: being written."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol

from projections.base import ViewProjection
from projections.ports import ViewChange


class StrategyFlowProjection(ViewProjection):
    view_name: ClassVar[str] = "strategy_flow"

    def change_for(self, event: DomainEventProtocol[Any], position: int) -> ViewChange:
        return ViewChange()

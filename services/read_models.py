"""The read side the API uses: each answer comes with the position its view had
reached, and any read can first wait (bounded) for a position the caller wrote.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from infra.sealed_reads import PersonalOpener, open_people
from infra.settings import Settings
from projections import account_view, strategy_flow
from projections.audit_trail import audit_trail, entity_history
from projections.exchange_rates import PLANNING_RATES, ExchangeRates, load_rates
from projections.ports import AuditQuery, AuditRow
from services.projector import Projector
from services.worklist import WorklistQuery, worklist

T = TypeVar("T")

DEFAULT_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ViewResult(Generic[T]):
    """What a view said, and the log position it had processed when it said it."""

    data: T
    position: int


class ReadModels:
    def __init__(
        self, projector: Projector, wait_seconds: float = DEFAULT_WAIT_SECONDS, rates: ExchangeRates = PLANNING_RATES
    ) -> None:
        self.projector = projector
        self.wait_seconds = wait_seconds
        self.rates = rates

    @classmethod
    def from_settings(cls, projector: Projector, settings: Settings) -> ReadModels:
        rates = load_rates(settings.fx_rates_file) if settings.fx_rates_file else PLANNING_RATES
        return cls(projector, wait_seconds=settings.read_wait_seconds, rates=rates)

    def _ready(self, view: str, min_position: int | None) -> int:
        if min_position:
            self.projector.wait(view, min_position, self.wait_seconds)
        return self.projector.position(view)

    def account_view(
        self,
        account_id: UUID,
        *,
        now: datetime,
        min_position: int | None = None,
        sections: Collection[str] = account_view.SECTIONS,
    ) -> ViewResult[dict[str, object] | None]:
        position = self._ready("account_view", min_position)
        document = self.projector.view("account_view").document(account_view.account_key(account_id))
        if document is None:
            return ViewResult(None, position)
        document = open_people(document, self.opener())
        data = account_view.read_account_view(document, now=now, rates=self.rates, sections=sections)
        return ViewResult(data, position)

    def opener(self) -> PersonalOpener:
        """Opens the personal data the views keep sealed, for one read."""
        app = self.projector.app
        return PersonalOpener(app.personal_keys, app.mapper.transcoder)

    def worklist(self, query: WorklistQuery, *, min_position: int | None = None) -> ViewResult[dict[str, Any]]:
        position = self._ready("account_view", min_position)
        return ViewResult(worklist(self.projector.view("account_view"), query, self.opener()), position)

    def strategy_flow(
        self, plan_id: UUID, *, now: datetime, min_position: int | None = None
    ) -> ViewResult[dict[str, object] | None]:
        position = self._ready("strategy_flow", min_position)
        data = strategy_flow.read_strategy_flow(self.projector.view("strategy_flow"), plan_id, now=now)
        return ViewResult(data, position)

    def audit_trail(self, query: AuditQuery, *, min_position: int | None = None) -> ViewResult[list[AuditRow]]:
        position = self._ready("audit_trail", min_position)
        return ViewResult(audit_trail(self.projector.view("audit_trail"), query), position)

    def entity_history(
        self, entity_id: UUID, *, after_position: int = 0, limit: int = 100, min_position: int | None = None
    ) -> ViewResult[list[AuditRow]]:
        position = self._ready("audit_trail", min_position)
        rows = entity_history(self.projector.view("audit_trail"), entity_id, after_position, limit)
        return ViewResult(rows, position)

"""The read side the API uses: each answer comes with the position its view had
reached, and any read can first wait (bounded) for a position the caller wrote.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson

from infra.sealed_reads import PersonalOpener, open_people
from infra.settings import Settings
from projections import account_view, strategy_flow
from projections.account_view import lists
from projections.account_view.evolve import member_key
from projections.audit_trail import audit_trail, entity_history
from projections.exchange_rates import PLANNING_RATES, ExchangeRates, load_rates
from projections.ports import AuditQuery, AuditRow, Document, ListQuery
from services.projector import Projector
from services.worklist import WorklistQuery, worklist

T = TypeVar("T")

DEFAULT_WAIT_SECONDS = 5.0
TIMELESS_STATES_KEPT = 256
"""How many account states' timeless sections a process keeps (a few hundred KB each at most)."""


class _TimelessSections:
    """The :data:`~projections.account_view.TIMELESS` sections of the account states read
    lately, by account and a digest of the stored document (:func:`_state_of`): one state
    of the document derives them the same, every time. The roll-ups, whitespace grid, unit
    tree and win rate were about a third of an account view read, derived again for every
    read of an account nobody had changed since."""

    def __init__(self, size: int = TIMELESS_STATES_KEPT) -> None:
        self._size = size
        self._kept: OrderedDict[tuple[UUID, bytes], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[UUID, bytes]) -> dict[str, Any]:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found or {}

    def keep(self, key: tuple[UUID, bytes], sections: dict[str, Any]) -> None:
        with self._lock:
            self._kept[key] = sections
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)


def _state_of(account_id: UUID, document: Document) -> tuple[UUID, bytes] | None:
    """The account and a digest of its stored document (about 0.1 ms for the demo account's
    78 KB). Not its ``position``: a rebuild after a change to the projection's code writes
    other content at the same positions, and the sections kept from the generation it
    replaced would have been served on. ``None`` (nothing kept) for a document orjson does
    not write (an integer past 64 bits)."""
    try:
        return account_id, hashlib.blake2b(orjson.dumps(document), digest_size=16).digest()
    except TypeError:
        return None


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
        self._timeless = _TimelessSections()

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
        """The account's view with the ``sections`` asked for. The answer is read-only: its
        timeless sections are shared with other reads of the same state of the account."""
        if min_position:
            self.projector.wait("account_view", min_position, self.wait_seconds)
        view = self.projector.view("account_view")
        document, position = view.document_and_position(account_view.account_key(account_id), self.projector.app.name)
        if document is None:
            return ViewResult(None, position)
        key = _state_of(account_id, document)
        known = self._timeless.get(key) if key else {}
        document = open_people(document, self.opener())  # a fresh read, which no one else holds
        data = account_view.read_account_view(
            document, now=now, rates=self.rates, sections=sections, handed_over=True, known=known
        )
        derived = {name: data[name] for name in account_view.TIMELESS if name in data}
        if key and derived.keys() - known.keys():
            self._timeless.keep(key, {**known, **derived})
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
        data = strategy_flow.read_strategy_flow(
            self.projector.view("strategy_flow"), plan_id, now=now, rates=self.rates
        )
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

    def list_page(self, query: ListQuery, *, min_position: int | None = None) -> ViewResult[lists.Page]:
        """A page of accounts, units, plans, stakeholders or deals (the account view's lists)."""
        position = self._ready("account_view", min_position)
        page = lists.list_page(self.projector.view("account_view"), query)
        if query.kind == lists.STAKEHOLDER:
            opener = self.opener()
            opener.look_up([item["id"] for item in page.items])
            items = [_with_name(item, opener) for item in page.items]
            page = lists.Page(items, page.next)
        return ViewResult(page, position)

    def units_of(self, account_id: UUID) -> dict[str, Document]:
        """The account's units by id (empty for an account the view does not know)."""
        return lists.units_of(self.projector.view("account_view"), str(account_id))

    def team_accounts(self, member: str) -> frozenset[UUID]:
        """The accounts whose team ``member`` is on (their index in the account view)."""
        index = self.projector.view("account_view").document(member_key(member)) or {}
        return frozenset(UUID(account_id) for account_id in index.get("accounts", {}))

    def accounts_of_units(self, unit_ids: Collection[UUID]) -> frozenset[str]:
        return lists.accounts_of_units(self.projector.view("account_view"), (str(u) for u in unit_ids))

    def names_of(self, ids: Collection[str]) -> dict[str, str]:
        """What each id names (units, objectives, deals, people, plans, accounts), from the lists."""
        found = lists.names_of(self.projector.view("account_view"), ids)
        people = {i: personal for i, personal in found.items() if isinstance(personal, dict)}
        if people:
            opener = self.opener()
            opener.look_up(list(people))
            found |= {i: opener.name(i, personal)["name"] for i, personal in people.items()}
        return found


def _with_name(item: dict[str, Any], opener: PersonalOpener) -> dict[str, Any]:
    """A person's list row as a reader sees it: their name opened (``[erased]`` once their key is gone)."""
    shown = {k: v for k, v in item.items() if k != "personal"}
    shown["name"] = opener.name(item["id"], item.get("personal") or {})["name"]
    return shown

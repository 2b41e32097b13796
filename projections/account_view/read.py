"""The account view as the GAM reads it: every section, derived from the stored document.

Pure functions of the stored document, "now" and the exchange rates. Money is
Decimal throughout and becomes a string (to the cent) only in the output. Keys
of stored dicts carry no order (PostgreSQL's JSONB sorts them), so every list
is sorted explicitly; units come in tree order (depth first, siblings by name).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.account_view.evolve import account_key
from projections.account_view.pipeline import pipeline
from projections.account_view.plans import plan_summary
from projections.account_view.rollups import rollups
from projections.account_view.stakeholders import stakeholder_map
from projections.account_view.units import UnitsOfOneRead, unit_tree
from projections.account_view.whitespace import whitespace_grid
from projections.account_view.win_rate import win_rate
from projections.encoding import deep_copy, format_time
from projections.exchange_rates import PLANNING_RATES, ExchangeRates
from projections.ports import Document, ViewRecorder

SECTIONS = ("unit_tree", "plans", "stakeholders", "whitespace", "pipeline", "rollups", "win_rate")
"""The sections of the account view, in the order the answer lists them."""

TIMELESS = frozenset({"unit_tree", "whitespace", "rollups", "win_rate"})
"""Sections that follow from the document and the rates alone, whatever "now" is, and hold
none of the personal data the views keep sealed (the customer's people): every read of one
state of the document derives them the same, so a reader may keep them
(``services.read_models``). The others depend on today (overdue actions and deals, who has
not been contacted lately) or show people's names and notes, opened for each read."""


def account_view(
    view: ViewRecorder,
    account_id: UUID,
    *,
    now: datetime,
    stale_after_days: int = 90,
    rates: ExchangeRates = PLANNING_RATES,
    sections: Collection[str] = SECTIONS,
) -> dict[str, Any] | None:
    """The account as the GAM reads it, or ``None`` if the view does not know it."""
    document = view.document(account_key(account_id))
    if document is None:
        return None
    return read_account_view(
        document, now=now, stale_after_days=stale_after_days, rates=rates, sections=sections, handed_over=True
    )


def read_account_view(
    document: Document,
    *,
    now: datetime,
    stale_after_days: int = 90,
    rates: ExchangeRates = PLANNING_RATES,
    sections: Collection[str] = SECTIONS,
    handed_over: bool = False,
    known: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a GAM looks at, derived from the stored document.

    ``now`` (timezone-aware) decides who counts as not contacted (no interaction in
    the last ``stale_after_days`` days) and which actions and open deals are overdue; ``rates``
    convert deal currencies into the account's reporting currency. Raises
    :class:`~projections.exchange_rates.UnknownCurrency` if a currency in play has
    no rate. Only the ``sections`` asked for are derived (the stakeholder map or the
    pipeline alone cost a fraction of the whole), besides the account's facts.

    The answer shares parts with the document, so the document is copied first,
    unless the caller ``handed_over`` one nobody else holds (a read fresh from the
    view's storage: the copy was a tenth of the read). Sections the caller already
    derived from this same state of the document (``known``, :data:`TIMELESS` ones) are
    taken as they are."""
    if now.utcoffset() is None:
        msg = "now must be timezone-aware"
        raise ValueError(msg)
    known = known or {}
    if not handed_over:
        document = deep_copy(document)
    units: dict[str, Document] = UnitsOfOneRead(document["units"])
    document["units"] = units  # the sections that read the whole document see the same one
    reporting: str = document["account"]["reporting_currency"]
    derive: dict[str, Callable[[], Any]] = {
        "unit_tree": lambda: unit_tree(units, document["team"]),
        "plans": lambda: [
            plan_summary(plan_id, plan, units, today=now.date())
            for plan_id, plan in sorted(document["plans"].items(), key=lambda item: (item[1]["fiscal_period"], item[0]))
        ],
        "stakeholders": lambda: stakeholder_map(
            document["stakeholders"], units, now=now, stale_after_days=stale_after_days
        ),
        "whitespace": lambda: whitespace_grid(document["plans"], units),
        "pipeline": lambda: pipeline(document["deals"], units, reporting, rates, now.date()),
        "rollups": lambda: rollups(document, reporting, rates),
        "win_rate": lambda: win_rate(document["deals"], units, reporting, rates),
    }
    return {
        "account": dict(document["account"]),
        "position": document.get("position"),
        "as_of": format_time(now),
        **{name: known[name] if name in known else derive[name]() for name in SECTIONS if name in sections},
    }

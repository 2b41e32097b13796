"""The views' tables of event classes and aggregates by name (``Deal.Opened``,
``Deal``), as the coverage tests compare them with the catalogue's names."""

from __future__ import annotations

from collections.abc import Iterable

from domain import catalog
from projections import account_view, strategy_flow


def names(classes: Iterable[type]) -> tuple[str, ...]:
    return tuple(cls.__qualname__ for cls in classes)


PERSONAL_DATA_FIELDS = {cls.__qualname__: fields for cls, fields in catalog.PERSONAL_DATA_FIELDS.items()}

ACCOUNT_VIEW_EVOLVE = frozenset(names(account_view.EVOLVE))
ACCOUNT_VIEW_IGNORED = frozenset(names(account_view.IGNORED))

STRATEGY_FLOW_UNIT_EVOLVE = names(strategy_flow.UNIT_EVOLVE)
STRATEGY_FLOW_PLAN_EVOLVE = names(strategy_flow.PLAN_EVOLVE)
STRATEGY_FLOW_STARTED = strategy_flow.STARTED.__qualname__
STRATEGY_FLOW_IGNORED = names(strategy_flow.IGNORED)
STRATEGY_FLOW_IGNORED_AGGREGATES = names(strategy_flow.IGNORED_AGGREGATES)
STRATEGY_FLOW_DEAL_HANDLED = [strategy_flow.Deal.Opened.__qualname__, *names(strategy_flow.DEAL_EVOLVE)]
STRATEGY_FLOW_DEAL_IGNORED = names(strategy_flow.DEAL_IGNORED)

"""Roll-ups up the unit tree: each unit's pipeline and won business on its own
and with everything below it, and each objective's progress and linked deals
against the targets the units hold."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.values import CascadeAnswer
from projections.account_view.figures import TENTH, ZERO, mean_text, money_of, money_text, percent_text, weighted_amount
from projections.account_view.plans import AWAITING
from projections.account_view.units import ancestors, in_tree_order, tree_order, unit_label
from projections.exchange_rates import ExchangeRates
from projections.ports import Document

MEASURES = ("open", "weighted", "won")


def deal_measures(deal: Document, reporting: str, rates: ExchangeRates) -> dict[str, Decimal]:
    """A deal's open (unweighted), weighted-open and won value in the reporting currency."""
    measures = dict.fromkeys(MEASURES, ZERO)
    if deal["status"] == "open":
        amount, currency = money_of(deal["amount"])
        rate = rates.rate(currency, reporting)
        measures["open"] = amount * rate
        measures["weighted"] = weighted_amount(deal) * rate
    elif deal["status"] == "won":
        amount, currency = money_of(deal["final_amount"] or deal["amount"])
        measures["won"] = rates.convert(amount, currency, reporting)[0]
    return measures


def roll_up(units: dict[str, Document], own: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    """Each unit's measures plus those of every unit below it."""
    rolled = {u: dict.fromkeys(MEASURES, ZERO) for u in units}
    for unit_id, measures in own.items():
        for target in (unit_id, *ancestors(units, unit_id)):
            if target in rolled:
                for name in MEASURES:
                    rolled[target][name] += measures[name]
    return rolled


def _measures_text(measures: dict[str, Decimal]) -> dict[str, str]:
    return {name: money_text(measures[name]) for name in MEASURES}


def effective_target(objective: Document, unit_id: str, seen: frozenset[str] = frozenset()) -> Document | None:
    """The target a unit holds for an objective: the objective's own at its unit,
    the local target where the unit adapted it, the giving unit's where it adopted
    it; ``None`` where it declined, has not answered, or was never asked."""
    if unit_id == objective["unit_id"]:
        target: Document = objective["target"]
        return target
    directive = objective["directives"].get(unit_id)
    if directive is None or unit_id in seen:
        return None
    if directive["answer"] == CascadeAnswer.ADAPTED:
        local: Document = directive["local_target"]
        return local
    if directive["answer"] == CascadeAnswer.ADOPTED:
        return effective_target(objective, directive["from_unit_id"], seen | {unit_id})
    return None


def target_in_reporting(target: Document | None, reporting: str, rates: ExchangeRates) -> Decimal | None:
    """A money target in the reporting currency; ``None`` for other metrics."""
    if not target or not target.get("currency"):
        return None
    return rates.convert(Decimal(target["value"]), target["currency"], reporting)[0]


def objective_rollup(
    objective_id: str,
    objective: Document,
    fiscal_period: str,
    document: Document,
    reporting: str,
    rates: ExchangeRates,
    measured: dict[str, dict[str, Decimal]],
) -> dict[str, Any]:
    """One objective up the tree: at the owning unit and every unit below it that
    holds it, reported on it, or books linked deals: the target it holds there,
    the latest progress it reported and the mean progress reported below it, and
    the open, weighted and won value of the deals linked to the objective at and
    below it against that target (money targets only). ``measured``: every deal's
    measures, worked out once for all the objectives (each asked for them again)."""
    units: dict[str, Document] = document["units"]
    own: dict[str, dict[str, Decimal]] = {}
    linked_total = dict.fromkeys(MEASURES, ZERO)
    linked_count = 0
    for deal_id, deal in document["deals"].items():
        if objective_id in deal["linked_objective_ids"]:
            linked_count += 1
            measures = measured[deal_id]
            sums = own.setdefault(deal["unit_id"], dict.fromkeys(MEASURES, ZERO))
            for name in MEASURES:
                sums[name] += measures[name]
                linked_total[name] += measures[name]
    rolled = roll_up(units, own)
    top = objective["unit_id"]
    progress: dict[str, int] = {u: p["percent"] for u, p in objective["progress"].items()}
    below_own_deals = {u for d in own for u in (d, *ancestors(units, d))}
    shown = {top, *objective["directives"], *progress, *below_own_deals}
    rows = []
    for unit_id in in_tree_order(shown, units):
        if unit_id != top and top not in ancestors(units, unit_id):
            continue
        below = [progress[u] for u in progress if unit_id in ancestors(units, u)]
        target = effective_target(objective, unit_id)
        target_value = target_in_reporting(target, reporting, rates)
        measures = rolled.get(unit_id, dict.fromkeys(MEASURES, ZERO))
        directive = objective["directives"].get(unit_id)
        rows.append({
            **unit_label(units, unit_id),
            "holds_as": "owner" if unit_id == top else (directive["answer"] or AWAITING) if directive else None,
            "target": target,
            "progress_percent": progress.get(unit_id),
            "progress_below_percent": mean_text(below, TENTH),
            "linked_deals": _measures_text(measures),
            "attainment_percent": percent_text(measures["won"], target_value) if target_value else None,
            "coverage_percent": percent_text(measures["won"] + measures["weighted"], target_value)
            if target_value else None,
        })  # fmt: skip
    target_value = target_in_reporting(objective["target"], reporting, rates)
    return {
        "objective_id": objective_id,
        "fiscal_period": fiscal_period,
        "title": objective["title"],
        **unit_label(units, top),
        "target": objective["target"],
        "target_in_reporting_currency": money_text(target_value) if target_value is not None else None,
        "linked_deals": {"count": linked_count, **_measures_text(linked_total)},
        "attainment_percent": percent_text(linked_total["won"], target_value) if target_value else None,
        "coverage_percent": percent_text(linked_total["won"] + linked_total["weighted"], target_value)
        if target_value
        else None,
        "units": rows,
    }


def rollups(document: Document, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
    """Pipeline and won business of each unit, on its own and rolled up with
    everything below it (local → country → region → HQ), and each objective's
    progress and linked deals up the tree against its targets. ``attainment`` is
    won ÷ target, ``coverage`` (won + weighted open) ÷ target, both in the
    reporting currency."""
    units: dict[str, Document] = document["units"]
    measured = {deal_id: deal_measures(deal, reporting, rates) for deal_id, deal in document["deals"].items()}
    own = {u: dict.fromkeys(MEASURES, ZERO) for u in units}
    for deal_id, deal in document["deals"].items():
        if deal["unit_id"] in own:
            measures = measured[deal_id]
            for name in MEASURES:
                own[deal["unit_id"]][name] += measures[name]
    rolled = roll_up(units, own)
    plans = sorted(document["plans"].values(), key=lambda p: p["fiscal_period"])
    return {
        "currency": reporting,
        "units": {
            u: {**unit_label(units, u), "own": _measures_text(own[u]), "rolled_up": _measures_text(rolled[u])}
            for u in tree_order(units)
        },
        "objectives": [
            objective_rollup(objective_id, objective, plan["fiscal_period"], document, reporting, rates, measured)
            for plan in plans
            for objective_id, objective in sorted(plan["objectives"].items(), key=lambda i: (i[1]["title"], i[0]))
        ],
    }

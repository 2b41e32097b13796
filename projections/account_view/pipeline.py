"""The open pipeline: open deals by stage, unit, level and deal currency,
weighted and unweighted, in the deal's and the reporting currency."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from domain.values import PIPELINE, UnitLevel
from projections.account_view.figures import ZERO, converted, money_of, money_text, weighted_amount
from projections.account_view.units import in_tree_order, unit_label
from projections.exchange_rates import ExchangeRates
from projections.ports import Document

LEVELS = tuple(level.value for level in UnitLevel)
STAGES = tuple(stage.value for stage in PIPELINE)


@dataclass
class Bucket:
    """Open deals summed per deal currency (exactly); converted only on output."""

    deals: int = 0
    native: dict[str, list[Decimal]] = field(default_factory=dict)
    """currency → [unweighted, weighted]"""

    def add(self, deal: Document) -> None:
        amount, currency = money_of(deal["amount"])
        sums = self.native.setdefault(currency, [ZERO, ZERO])
        sums[0] += amount
        sums[1] += weighted_amount(deal)
        self.deals += 1

    def in_reporting(self, reporting: str, rates: ExchangeRates) -> tuple[Decimal, Decimal]:
        """(unweighted, weighted) in the reporting currency, exact."""
        unweighted = weighted = ZERO
        for currency, (native_unweighted, native_weighted) in self.native.items():
            rate = rates.rate(currency, reporting)
            unweighted += native_unweighted * rate
            weighted += native_weighted * rate
        return unweighted, weighted

    def to_json(self, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
        unweighted, weighted = self.in_reporting(reporting, rates)
        return {
            "deals": self.deals,
            "unweighted": money_text(unweighted),
            "weighted": money_text(weighted),
            "by_currency": {
                currency: {
                    "unweighted": money_text(u),
                    "weighted": money_text(w),
                    "rate": str(rates.rate(currency, reporting)),
                }
                for currency, (u, w) in sorted(self.native.items())
            },
        }

    def in_own_currency(self, currency: str, reporting: str, rates: ExchangeRates) -> dict[str, Any]:
        """A bucket of one deal currency: its sums in that currency, and converted."""
        unweighted, weighted = self.native[currency]
        in_reporting = self.in_reporting(reporting, rates)
        return {
            "deals": self.deals, "currency": currency, "unweighted": money_text(unweighted),
            "weighted": money_text(weighted), "rate": str(rates.rate(currency, reporting)),
            "reporting_unweighted": money_text(in_reporting[0]), "reporting_weighted": money_text(in_reporting[1]),
        }  # fmt: skip


def open_deal_row(
    deal_id: str, deal: Document, units: dict[str, Document], reporting: str, rates: ExchangeRates, today: date
) -> dict[str, Any]:
    """An open deal; ``overdue`` when its expected close date has passed (it is still open)."""
    amount, currency = money_of(deal["amount"])
    return {
        "deal_id": deal_id, "title": deal["title"], **unit_label(units, deal["unit_id"]), "stage": deal["stage"],
        "probability": deal["probability"], "expected_close": deal["expected_close"],
        "overdue": deal["expected_close"] < today.isoformat(), "owner": deal["owner"],
        "products": deal["products"], "amount": converted(amount, currency, reporting, rates),
        "weighted": converted(weighted_amount(deal), currency, reporting, rates),
        "linked_objective_ids": deal["linked_objective_ids"],
        "buying_influences": sorted(deal["influences"].values(), key=lambda i: (i["role"], i["stakeholder_id"])),
        "qualification": dict(sorted(deal["qualification"].items())),
    }  # fmt: skip


def pipeline(
    deals: dict[str, Document], units: dict[str, Document], reporting: str, rates: ExchangeRates, today: date
) -> dict[str, Any]:
    """Open deals, unweighted and weighted (amount × probability), by stage, unit and
    level and in total; each bucket in the reporting currency and per deal currency
    with the rate used. ``rates`` names the table (source, as-of date) and every rate."""
    open_deals = {deal_id: d for deal_id, d in deals.items() if d["status"] == "open"}
    by_stage = {stage: Bucket() for stage in STAGES}
    by_level = {level: Bucket() for level in LEVELS}
    by_unit: dict[str, Bucket] = defaultdict(Bucket)
    by_currency: dict[str, Bucket] = defaultdict(Bucket)
    total = Bucket()
    for deal in open_deals.values():
        level = units.get(deal["unit_id"], {}).get("level")
        buckets = (
            total, by_stage.setdefault(deal["stage"], Bucket()), by_level.setdefault(level or "unknown", Bucket()),
            by_unit[deal["unit_id"]], by_currency[deal["amount"]["currency"]],
        )  # fmt: skip
        for bucket in buckets:
            bucket.add(deal)
    used = sorted(total.native)
    return {
        "reporting_currency": reporting,
        "rates": {**rates.describe(), "used": {c: str(rates.rate(c, reporting)) for c in used}},
        "total": total.to_json(reporting, rates),
        "by_stage": {stage: b.to_json(reporting, rates) for stage, b in by_stage.items()},
        "by_level": {level: b.to_json(reporting, rates) for level, b in by_level.items()},
        "by_unit": {
            u: {**unit_label(units, u), **by_unit[u].to_json(reporting, rates)} for u in in_tree_order(by_unit, units)
        },
        "by_deal_currency": {c: by_currency[c].in_own_currency(c, reporting, rates) for c in used},
        "deals": [
            open_deal_row(deal_id, open_deals[deal_id], units, reporting, rates, today)
            for deal_id in sorted(
                open_deals, key=lambda d: (open_deals[d]["expected_close"], open_deals[d]["title"], d)
            )
        ],
    }

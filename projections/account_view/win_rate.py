"""The win rate: won ÷ (won + lost), by count and by value, with the closed deals."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from projections.account_view.figures import ZERO, converted, money_of, money_text, percent_text
from projections.account_view.units import unit_label
from projections.exchange_rates import ExchangeRates
from projections.ports import Document


def win_rate(
    deals: dict[str, Document], units: dict[str, Document], reporting: str, rates: ExchangeRates
) -> dict[str, Any]:
    """won ÷ (won + lost), by count and by value in the reporting currency (won deals
    at their final amount, lost ones at their last amount); open deals do not count."""
    closed = {d: deal for d, deal in deals.items() if deal["status"] in ("won", "lost")}
    value: dict[str, Decimal] = {"won": ZERO, "lost": ZERO}
    count: Counter[str] = Counter()
    rows = []
    for deal_id in sorted(closed, key=lambda d: (closed[d]["status"], closed[d]["title"], d)):
        deal = closed[deal_id]
        amount, currency = money_of(deal["final_amount"] or deal["amount"])
        value[deal["status"]] += rates.convert(amount, currency, reporting)[0]
        count[deal["status"]] += 1
        rows.append({
            "deal_id": deal_id, "title": deal["title"], **unit_label(units, deal["unit_id"]),
            "status": deal["status"], "value": converted(amount, currency, reporting, rates),
            "loss_reason": deal["loss_reason"], "competitor": deal["competitor"],
        })  # fmt: skip
    return {
        "won": count["won"],
        "lost": count["lost"],
        "by_count": percent_text(Decimal(count["won"]), Decimal(count["won"] + count["lost"])),
        "by_value": percent_text(value["won"], value["won"] + value["lost"]),
        "won_value": money_text(value["won"]),
        "lost_value": money_text(value["lost"]),
        "currency": reporting,
        "closed_deals": rows,
    }

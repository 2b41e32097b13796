"""Figures as the account view outputs them (money to the cent, percentages and
means to a given place, half up) and a deal's amounts: weighted, and converted
into the reporting currency."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from projections.exchange_rates import ExchangeRates
from projections.ports import Document

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ZERO = Decimal(0)


def money_text(amount: Decimal) -> str:
    """An amount as output: to the cent, rounded half up."""
    return str(amount.quantize(CENT, ROUND_HALF_UP))


def percent_text(part: Decimal, whole: Decimal) -> str | None:
    """``100 × part / whole`` to one decimal; ``None`` when ``whole`` is zero."""
    if not whole:
        return None
    return str((100 * part / whole).quantize(TENTH, ROUND_HALF_UP))


def mean_text(values: list[int], places: Decimal = CENT) -> str | None:
    """Mean (to the cent by default), as text; ``None`` for no values."""
    if not values:
        return None
    return str((Decimal(sum(values)) / len(values)).quantize(places, ROUND_HALF_UP))


def money_of(value: Document) -> tuple[Decimal, str]:
    return Decimal(value["amount"]), value["currency"]


def weighted_amount(deal: Document) -> Decimal:
    """Amount × probability: what the deal is worth to a forecast."""
    amount, _ = money_of(deal["amount"])
    return amount * Decimal(deal["probability"]) / 100


def converted(amount: Decimal, currency: str, reporting: str, rates: ExchangeRates) -> dict[str, str]:
    """One figure in its own and in the reporting currency, with the rate used."""
    in_reporting, rate = rates.convert(amount, currency, reporting)
    return {
        "amount": money_text(amount), "currency": currency, "reporting_amount": money_text(in_reporting),
        "reporting_currency": reporting, "rate": str(rate),
    }  # fmt: skip

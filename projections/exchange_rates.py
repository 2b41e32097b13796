"""Exchange rates for converting pipeline into the account's reporting currency.

Global account plans are measured at fixed *planning rates*: finance sets them
once per fiscal year so that targets and pipeline do not move with the market.
The default table below is such a set (FY2027 planning rates, per 1 EUR, fixed
2026-10-01). A deployment supplies its own (treasury or ECB reference rates) as
JSON via ``GAM_FX_RATES_FILE``; every converted figure records the rate used and
where it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal
from pathlib import Path


class UnknownCurrency(LookupError):
    """No rate is known for a currency."""


@dataclass(frozen=True)
class ExchangeRates:
    base: str
    as_of: date
    source: str
    rates: dict[str, Decimal]
    """Units of each currency per 1 unit of ``base``."""

    def rate(self, from_currency: str, to_currency: str) -> Decimal:
        """Cross rate through the base currency, to 10 significant digits."""
        if from_currency == to_currency:
            return Decimal(1)
        try:
            per_base_from = Decimal(1) if from_currency == self.base else self.rates[from_currency]
            per_base_to = Decimal(1) if to_currency == self.base else self.rates[to_currency]
        except KeyError as missing:
            msg = f"no {self.source} rate for {missing.args[0]}"
            raise UnknownCurrency(msg) from None
        rate = Context(prec=10).divide(per_base_to, per_base_from)
        return rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate

    def convert(self, amount: Decimal, from_currency: str, to_currency: str) -> tuple[Decimal, Decimal]:
        """The amount in ``to_currency`` (to the cent) and the rate used."""
        rate = self.rate(from_currency, to_currency)
        return (amount * rate).quantize(Decimal("0.01")), rate

    def describe(self) -> dict[str, str]:
        return {"base": self.base, "as_of": self.as_of.isoformat(), "source": self.source}


PLANNING_RATES = ExchangeRates(
    base="EUR",
    as_of=date(2026, 10, 1),
    source="FY2027 planning rates (fixed by finance, per EUR)",
    rates={
        code: Decimal(value)
        for code, value in {
            "USD": "1.08", "GBP": "0.85", "JPY": "162", "CHF": "0.95", "BRL": "5.9", "SGD": "1.45",
            "CNY": "7.8", "INR": "90", "CAD": "1.48", "AUD": "1.65", "SEK": "11.4", "NOK": "11.6",
            "DKK": "7.46", "PLN": "4.3", "MXN": "19.5", "KRW": "1450", "ZAR": "19.8", "AED": "3.97",
        }.items()
    },
)  # fmt: skip


def load_rates(path: Path) -> ExchangeRates:
    """Rates from JSON: {"base": "EUR", "as_of": "2026-10-01", "source": "...", "rates": {"USD": "1.08", ...}}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return ExchangeRates(
        base=data["base"],
        as_of=date.fromisoformat(data["as_of"]),
        source=data["source"],
        rates={k: Decimal(str(v)) for k, v in data["rates"].items()},
    )

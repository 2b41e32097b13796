"""Exchange rates for converting pipeline into the account's reporting currency.

Global account plans are measured at fixed *planning rates*: finance sets them
once per fiscal year so that targets and pipeline do not move with the market.
The default table below is such a set (FY2027 planning rates, fixed by finance,
per 1 EUR, as of 2026-10-01). A deployment supplies its own (treasury or ECB
reference rates) as JSON via ``GAM_FX_RATES_FILE`` (see :func:`load_rates`);
every converted figure of the account view records the rate used, and the view
says which table (source, as-of date) the rates came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

CROSS_RATE_DIGITS = 10
"""Significant digits of a cross rate; the rate is recorded with every converted
figure, so ``amount × recorded rate`` reproduces the figure exactly."""


class UnknownCurrency(LookupError):
    """No rate is known for a currency."""


class InvalidRates(ValueError):
    """A rate table that cannot be used (missing fields, non-positive rates)."""


@dataclass(frozen=True)
class ExchangeRates:
    """A table of rates against one base currency."""

    base: str
    as_of: date
    source: str
    rates: dict[str, Decimal]
    """Units of each currency per 1 unit of ``base``."""
    _cross: dict[tuple[str, str], Decimal] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Cross rates worked out so far: an account view read asks for the same few two
    hundred times, and each is a division at 28 digits."""

    def __post_init__(self) -> None:
        for code, rate in self.rates.items():
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                msg = f"{self.source}: the rate for {code} must be a positive decimal, not {rate!r}"
                raise InvalidRates(msg)
        if self.base in self.rates and self.rates[self.base] != 1:
            msg = f"{self.source}: the base currency {self.base} must have rate 1"
            raise InvalidRates(msg)

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset({self.base, *self.rates})

    def per_base(self, currency: str) -> Decimal:
        """Units of ``currency`` per 1 unit of the base currency."""
        if currency == self.base:
            return Decimal(1)
        try:
            return self.rates[currency]
        except KeyError:
            known = ", ".join(sorted(self.currencies))
            msg = (
                f"no exchange rate for {currency} in {self.source} (as of {self.as_of.isoformat()}); "
                f"known currencies: {known}"
            )
            raise UnknownCurrency(msg) from None

    def rate(self, from_currency: str, to_currency: str) -> Decimal:
        """Units of ``to_currency`` per 1 ``from_currency``: the cross rate through
        the base, to :data:`CROSS_RATE_DIGITS` significant digits."""
        known = self._cross.get((from_currency, to_currency))
        if known is None:
            known = self._cross[from_currency, to_currency] = self._rate(from_currency, to_currency)
        return known

    def _rate(self, from_currency: str, to_currency: str) -> Decimal:
        if from_currency == to_currency:
            self.per_base(from_currency)  # an unknown currency is an error even unconverted
            return Decimal(1)
        rate = Context(prec=CROSS_RATE_DIGITS).divide(self.per_base(to_currency), self.per_base(from_currency))
        return rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate

    def convert(self, amount: Decimal, from_currency: str, to_currency: str) -> tuple[Decimal, Decimal]:
        """``amount`` in ``to_currency`` and the rate used.

        The amount is the exact product ``amount × rate`` (not rounded), so sums of
        converted amounts stay exact; round once, when presenting."""
        rate = self.rate(from_currency, to_currency)
        return amount * rate, rate

    def describe(self) -> dict[str, str]:
        """Where the rates come from, for the reader of a converted figure."""
        return {"base": self.base, "as_of": self.as_of.isoformat(), "source": self.source}


PLANNING_RATES = ExchangeRates(
    base="EUR",
    as_of=date(2026, 10, 1),
    source="FY2027 planning rates, fixed by finance, per EUR",
    rates={
        code: Decimal(value)
        for code, value in {
            "USD": "1.08", "GBP": "0.85", "JPY": "162", "CHF": "0.95", "BRL": "5.9", "SGD": "1.45",
            "CNY": "7.8", "INR": "90", "CAD": "1.48", "AUD": "1.65", "SEK": "11.4", "NOK": "11.6",
            "DKK": "7.46", "PLN": "4.3", "MXN": "19.5", "KRW": "1450", "ZAR": "19.8", "AED": "3.97",
        }.items()
    },
)  # fmt: skip
"""The built-in table: plausible fixed corporate planning rates, not market rates."""


def load_rates(path: Path) -> ExchangeRates:
    """Rates from JSON in the same shape as :class:`ExchangeRates`::

        {"base": "EUR", "as_of": "2026-10-01", "source": "ECB reference rates",
         "rates": {"USD": "1.08", "JPY": "162"}}

    Rates may be strings (exact) or JSON numbers."""
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    try:
        return ExchangeRates(
            base=str(data["base"]),
            as_of=date.fromisoformat(data["as_of"]),
            source=str(data["source"]),
            rates={str(code): Decimal(str(value)) for code, value in data["rates"].items()},
        )
    except (KeyError, TypeError, AttributeError, ValueError, InvalidOperation) as problem:
        if isinstance(problem, InvalidRates):
            raise
        msg = f"{path}: not a rate table ({type(problem).__name__}: {problem}); expected base, as_of, source, rates"
        raise InvalidRates(msg) from problem

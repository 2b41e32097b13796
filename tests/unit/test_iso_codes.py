"""The domain's ISO tables match the maintained ISO databases (pycountry; iso4217
for the minor units, which pycountry does not carry)."""

import pycountry
from iso4217 import Currency

from domain.iso_codes import COUNTRY_CODES, CURRENCY_CODES, CURRENCY_MINOR_UNITS


def test_currency_codes_match_iso_4217() -> None:
    assert {c.alpha_3 for c in pycountry.currencies} == CURRENCY_CODES


def test_country_codes_match_iso_3166_1() -> None:
    assert {c.alpha_2 for c in pycountry.countries} == COUNTRY_CODES


def test_minor_units_match_iso_4217() -> None:
    assert {currency.code: currency.exponent for currency in Currency} == CURRENCY_MINOR_UNITS

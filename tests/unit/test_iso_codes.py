"""The domain's ISO tables match the maintained ISO database (pycountry)."""

import pycountry

from domain.iso_codes import COUNTRY_CODES, CURRENCY_CODES


def test_currency_codes_match_iso_4217() -> None:
    assert {c.alpha_3 for c in pycountry.currencies} == CURRENCY_CODES


def test_country_codes_match_iso_3166_1() -> None:
    assert {c.alpha_2 for c in pycountry.countries} == COUNTRY_CODES

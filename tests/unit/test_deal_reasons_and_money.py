"""Rules on what a change must carry: a deal moved back says why; money has at most
its currency's ISO 4217 minor units (deals and money targets alike); a deal opened
now does not close in the past, while a history imported at its own moments does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import errors
from domain.deal import Deal
from domain.iso_codes import CURRENCY_CODES, CURRENCY_MINOR_UNITS
from domain.metadata import EventMetadata
from domain.values import Money, Target, decimal_places
from infra.settings import Settings
from services import handlers as h
from services.app import GamApplication
from tests.support import meta
from tests.unit.builders import Org, build_org, stored

CURRENCIES_WITH_MINOR_UNITS = sorted(code for code in CURRENCY_CODES if CURRENCY_MINOR_UNITS[code] is not None)
OPENED = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    """One account for the module: hypothesis runs many examples against it."""
    app = GamApplication(Settings(store="memory").eventsourcing_env())
    yield build_org(app)
    app.close()


def at(moment: datetime, reason: str | None = None) -> EventMetadata:
    return EventMetadata(actor="bob@vendor.example", at=moment, correlation_id=uuid4(), reason=reason)


def open_deal(org: Org, amount: Money, *, when: datetime = OPENED, close: date = date(2027, 6, 30)) -> UUID:
    deal_id = uuid4()
    h.open_deal(
        org.app, at(when), deal_id=deal_id, account_id=org.account, unit_id=org.paris, title="Sensors",
        amount=amount, expected_close=close, owner="bob@vendor.example",
    )  # fmt: skip
    return deal_id


def refused_with(org: Org, error: type[errors.DomainError], call: object, *args: object, **kwargs: object) -> object:
    before = stored(org.app)
    with pytest.raises(error) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    assert stored(org.app) == before, "a refused command stored events"
    return raised.value


# --- moving back needs a reason ----------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   \t"])
def test_moving_a_deal_back_without_a_reason_is_refused(org: Org, reason: str | None) -> None:
    deal_id = open_deal(org, Money(Decimal(1000), "EUR"))
    h.move_deal_stage(org.app, at(OPENED), deal_id=deal_id, to_stage="qualification")
    error = refused_with(
        org, errors.ReasonRequired, h.move_deal_stage, org.app, at(OPENED, reason), deal_id=deal_id,
        to_stage="prospecting",
    )  # fmt: skip
    assert isinstance(error, errors.InvalidValue)
    assert (error.rule, error.field) == ("reason_required", "reason")
    assert org.app.load(Deal, deal_id).stage == "qualification"


def test_moving_a_deal_back_with_a_reason_keeps_the_reason(org: Org) -> None:
    deal_id = open_deal(org, Money(Decimal(1000), "EUR"))
    h.move_deal_stage(org.app, at(OPENED), deal_id=deal_id, to_stage="qualification")  # forward: no reason needed
    h.move_deal_stage(org.app, at(OPENED, "Budget frozen until Q3"), deal_id=deal_id, to_stage="prospecting")
    last = list(org.app.events.get(deal_id))[-1]
    assert isinstance(last, Deal.StageMovedBack)
    assert last.reason == "Budget frozen until Q3"


# --- minor units ---------------------------------------------------------------------------------


def test_the_minor_units_table_is_iso_4217() -> None:
    assert {code: CURRENCY_MINOR_UNITS[code] for code in ("USD", "EUR", "JPY", "KRW", "BHD", "KWD", "CLF", "XAU")} == {
        "USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "CLF": 4, "XAU": None,
    }  # fmt: skip
    assert set(CURRENCY_MINOR_UNITS) == CURRENCY_CODES


@pytest.mark.parametrize(
    ("text", "places"), [("12.340", 2), ("1E+3", 0), ("0.000", 0), ("100", 0), ("-1.5", 1), ("0.0010", 3)]
)
def test_decimal_places_ignore_trailing_zeros(text: str, places: int) -> None:
    assert decimal_places(Decimal(text)) == places


@st.composite
def too_precise(draw: st.DrawFn) -> Money:
    """An amount with at least one decimal more than its currency has (the last one not 0)."""
    currency = draw(st.sampled_from(CURRENCIES_WITH_MINOR_UNITS))
    places = CURRENCY_MINOR_UNITS[currency]
    assert places is not None
    extra = draw(st.integers(places + 1, places + 12))
    coefficient = draw(st.integers(1, 10**20).filter(lambda n: n % 10 != 0))
    return Money(Decimal(coefficient).scaleb(-extra), currency)


@st.composite
def payable(draw: st.DrawFn) -> Money:
    """An amount with at most its currency's decimals, written with any number of trailing zeros."""
    currency = draw(st.sampled_from(sorted(CURRENCY_CODES)))
    places = CURRENCY_MINOR_UNITS[currency]
    shown = draw(st.integers(0, places if places is not None else 12))
    coefficient = draw(st.integers(0, 10**20))
    zeros = draw(st.integers(0, 3))
    return Money(Decimal(coefficient * 10**zeros).scaleb(-shown - zeros), currency)


@given(amount=too_precise())
@settings(max_examples=60, deadline=None)
def test_any_amount_finer_than_its_currency_is_refused(org: Org, amount: Money) -> None:
    deal_id = uuid4()
    error = refused_with(
        org, errors.TooManyDecimals, h.open_deal, org.app, at(OPENED), deal_id=deal_id, account_id=org.account,
        unit_id=org.paris, title="Sensors", amount=amount, expected_close=date(2027, 6, 30), owner="bob",
    )  # fmt: skip
    assert isinstance(error, errors.InvalidValue)
    assert (error.rule, error.field) == ("too_many_decimals", "amount.amount")
    assert not org.app.exists(deal_id)


@given(amount=payable())
@settings(max_examples=60, deadline=None)
def test_any_amount_within_its_currency_minor_units_is_accepted(org: Org, amount: Money) -> None:
    deal_id = open_deal(org, amount)
    assert org.app.load(Deal, deal_id).amount == amount


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("12.345", "USD"), ("1.5", "JPY"), ("100.01", "KRW"), ("1.2345", "KWD"), ("0.00001", "CLF"), ("3.001", "EUR")],
)
def test_every_money_value_of_a_command_has_its_currency_minor_units(org: Org, amount: str, currency: str) -> None:
    fine = Money(Decimal(amount), currency)
    deal_id = open_deal(org, Money(Decimal(100), currency))
    for stage in ("qualification", "solution", "proposal"):  # a deal is won from a proposal on
        h.move_deal_stage(org.app, at(OPENED), deal_id=deal_id, to_stage=stage)
    for field, call, kwargs in (
        ("amount.amount", h.change_deal_amount, {"amount": fine}),
        ("final_amount.amount", h.win_deal, {"final_amount": fine}),
    ):
        error = refused_with(org, errors.TooManyDecimals, call, org.app, meta(), deal_id=deal_id, **kwargs)
        assert error.field == field  # type: ignore[attr-defined]
    error = refused_with(
        org, errors.TooManyDecimals, org.objective, target=Target("revenue", Decimal(amount), currency)
    )
    assert error.field == "target.value"  # type: ignore[attr-defined]
    objective = org.objective()
    org.cascade(objective, org.hq, org.emea)
    error = refused_with(
        org, errors.TooManyDecimals, org.respond, objective, org.emea, "adapted",
        local_target=Target("revenue", Decimal(amount), currency),
    )  # fmt: skip
    assert error.field == "local_target.value"  # type: ignore[attr-defined]


def test_amounts_without_iso_minor_units_take_any_decimals_and_other_targets_are_not_money(org: Org) -> None:
    gold = Money(Decimal("0.0000001"), "XAU")
    assert org.app.load(Deal, open_deal(org, gold)).amount == gold
    org.objective(target=Target("downtime reduction %", Decimal("12.3456"), None))


def test_money_finer_than_its_currency_can_still_be_built() -> None:
    """The rule is checked when a command is decided, not by the value's constructor,
    which also reads stored events back: events stored before the rule still load."""
    assert Money(Decimal("12.345"), "USD").amount == Decimal("12.345")


# --- the expected close date ---------------------------------------------------------------------


@given(days=st.integers(-800, 800), hours=st.integers(-12, 14))
@settings(max_examples=60, deadline=None)
def test_a_new_deal_closes_on_or_after_the_day_it_is_opened(org: Org, days: int, hours: int) -> None:
    """ "The day" is the UTC day of the moment the command was made, whatever the offset it came with."""
    opened = OPENED.astimezone(timezone(timedelta(hours=hours))) + timedelta(days=days, hours=hours * 3)
    close = (OPENED + timedelta(days=days // 2)).date()
    deal_id = uuid4()
    kwargs = {
        "deal_id": deal_id, "account_id": org.account, "unit_id": org.paris, "title": "Sensors",
        "amount": Money(Decimal(10), "EUR"), "expected_close": close, "owner": "bob",
    }  # fmt: skip
    if close >= opened.astimezone(UTC).date():
        h.open_deal(org.app, at(opened), **kwargs)
        assert org.app.load(Deal, deal_id).expected_close == close
    else:
        error = refused_with(org, errors.CloseDateInPast, h.open_deal, org.app, at(opened), **kwargs)
        assert (error.rule, error.field) == ("close_date_in_past", "expected_close")  # type: ignore[attr-defined]


def test_the_utc_day_decides_not_the_local_one(org: Org) -> None:
    late_evening_in_new_york = datetime(2027, 1, 4, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 5 Jan in UTC
    with pytest.raises(errors.CloseDateInPast):
        open_deal(org, Money(Decimal(10), "EUR"), when=late_evening_in_new_york, close=date(2027, 1, 4))
    open_deal(org, Money(Decimal(10), "EUR"), when=late_evening_in_new_york, close=date(2027, 1, 5))


def test_a_deal_recorded_in_2020_may_close_in_2020(org: Org) -> None:
    """A history brought over from another system: the command's moment is its own."""
    deal_id = open_deal(org, Money(Decimal(10), "EUR"), when=datetime(2020, 3, 1, tzinfo=UTC), close=date(2020, 6, 30))
    assert org.app.load(Deal, deal_id).expected_close == date(2020, 6, 30)


@given(days=st.integers(-400, 400), hours=st.integers(-12, 14))
@settings(max_examples=60, deadline=None)
def test_a_close_date_moves_only_to_the_day_it_is_moved_on_or_later(org: Org, days: int, hours: int) -> None:
    """The same rule as for a new deal, judged at the moment of the change (the UTC day)."""
    deal_id = open_deal(org, Money(Decimal(10), "EUR"), when=datetime(2020, 3, 1, tzinfo=UTC), close=date(2020, 6, 30))
    moved = OPENED.astimezone(timezone(timedelta(hours=hours))) + timedelta(hours=hours * 3)
    new = (OPENED + timedelta(days=days)).date()
    if new >= moved.astimezone(UTC).date():
        h.change_deal_close_date(org.app, at(moved), deal_id=deal_id, expected_close=new)
        assert org.app.load(Deal, deal_id).expected_close == new
    else:
        error = refused_with(
            org,
            errors.CloseDateInPast,
            h.change_deal_close_date,
            org.app,
            at(moved),
            deal_id=deal_id,
            expected_close=new,
        )
        assert (error.rule, error.field) == ("close_date_in_past", "expected_close")  # type: ignore[attr-defined]
        assert org.app.load(Deal, deal_id).expected_close == date(2020, 6, 30)


def test_a_history_may_move_a_close_date_within_its_own_past(org: Org) -> None:
    """An imported history's change is judged at its own moment, not today."""
    deal_id = open_deal(org, Money(Decimal(10), "EUR"), when=datetime(2020, 3, 1, tzinfo=UTC), close=date(2020, 6, 30))
    h.change_deal_close_date(
        org.app, at(datetime(2020, 5, 1, tzinfo=UTC)), deal_id=deal_id, expected_close=date(2020, 9, 30)
    )
    assert org.app.load(Deal, deal_id).expected_close == date(2020, 9, 30)

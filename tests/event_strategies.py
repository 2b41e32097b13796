"""Hypothesis strategies for every event type, derived from the event classes'
type hints, so a new event type is covered without touching the tests."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from hypothesis import strategies as st

from domain.base import GamEvent
from domain.iso_codes import CURRENCY_CODES
from domain.values import Money, PersonalData, Target

text = st.one_of(
    st.just(""),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=50),
    st.text(alphabet=st.sampled_from('Zoë Łódź 北京 مرحبا 🚀 ‮x\u0301\n\t"\\'), min_size=1, max_size=5000),
)
decimals = st.one_of(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=10, min_value=Decimal("-1e30"), max_value=Decimal("1e30")
    ),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [Decimal("0.10"), Decimal("-0"), Decimal("1E+3"), Decimal("123456789012345678901234567890.0123456789")]
    ),
)
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
currencies = st.sampled_from(sorted(CURRENCY_CODES))

SIMPLE: dict[Any, st.SearchStrategy[Any]] = {
    str: text,
    int: st.integers(min_value=-(2**63), max_value=2**63 - 1),
    bool: st.booleans(),
    Decimal: decimals,
    UUID: st.uuids(),
    datetime: moments,
    date: st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    Money: st.builds(Money, amount=decimals, currency=currencies),
    Target: st.builds(
        Target,
        metric=st.text(min_size=1, max_size=30).filter(str.strip),
        value=decimals.map(abs),
        currency=st.none() | currencies,
    ),
    PersonalData: st.builds(
        PersonalData,
        name=st.text(min_size=1, max_size=60).filter(str.strip),
        email=st.none() | st.emails(),
        phone=st.none() | st.from_regex(r"\+[0-9 ]{4,20}", fullmatch=True),
    ),
}


def for_type(hint: Any) -> st.SearchStrategy[Any]:
    if isinstance(hint, typing.TypeVar):  # eventsourcing's TAggregateID: ours are UUIDs
        return st.uuids()
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(for_type(arg) for arg in typing.get_args(hint)))
    if origin is tuple:
        return st.lists(for_type(typing.get_args(hint)[0]), max_size=5).map(tuple)
    if hint is type(None):
        return st.none()
    return SIMPLE[hint]


def for_event(event_class: type[GamEvent]) -> st.SearchStrategy[GamEvent]:
    hints = typing.get_type_hints(event_class)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in dataclasses.fields(event_class):
        if field.name == "originator_topic":
            aggregate = typing.cast(Any, event_class).__qualname__.split(".")[0]
            module = __import__(event_class.__module__, fromlist=[aggregate])
            fields[field.name] = st.just(get_topic(getattr(module, aggregate)))
        elif field.name == "originator_version":
            fields[field.name] = st.integers(min_value=1, max_value=10**6)
        else:
            fields[field.name] = for_type(hints[field.name])
    return st.fixed_dictionaries(fields).map(lambda kwargs: event_class(**kwargs))

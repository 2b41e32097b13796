"""Hypothesis strategies for every command type, derived from the command
dataclasses themselves (their types and ``Spec`` limits): ``commands()`` covers
every command in the registry, so a new command is generated without an edit here."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

from hypothesis import strategies as st

from domain.commands import COMMANDS, Command, Spec
from domain.iso_codes import CURRENCY_MINOR_UNITS
from domain.values import Money, PersonalData, Target

CURRENCIES = st.sampled_from(["EUR", "USD", "JPY", "SEK", "GBP", "KWD"])
AMOUNTS = st.decimals(min_value=Decimal(0), max_value=Decimal("1e12"), places=2, allow_nan=False)


def amounts(currency: str) -> st.SearchStrategy[Decimal]:
    """Amounts with the currency's minor units (0 for JPY, 3 for KWD): what a command accepts."""
    places = CURRENCY_MINOR_UNITS[currency]
    return st.decimals(min_value=Decimal(0), max_value=Decimal("1e12"), places=places, allow_nan=False)


def _target(metric: str, currency: str | None) -> st.SearchStrategy[Target]:
    return st.builds(Target, st.just(metric), AMOUNTS if currency is None else amounts(currency), st.just(currency))


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(str.strip)

VALUES: dict[Any, st.SearchStrategy[Any]] = {
    UUID: st.uuids(),
    str: TEXT,
    int: st.integers(-1000, 1000),
    date: st.dates(date(2000, 1, 1), date(2100, 12, 31)),
    datetime: st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    Money: CURRENCIES.flatmap(lambda currency: st.builds(Money, amounts(currency), st.just(currency))),
    Target: st.tuples(TEXT, st.none() | CURRENCIES).flatmap(lambda pair: _target(*pair)),
    PersonalData: st.builds(PersonalData, TEXT, st.none() | st.emails(), st.none() | st.just("+46 8 555 0100")),
}


def _strategy(annotation: Any, spec: Spec | None) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return st.none() | st.one_of(*(_strategy(member, spec) for member in members))
    if origin is tuple:
        low = spec.min_length if spec and spec.min_length is not None else 0
        return st.lists(_strategy(get_args(annotation)[0], None), min_size=low, max_size=low + 3).map(tuple)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if spec is not None and annotation is str and spec.pattern:
        return st.from_regex(spec.pattern, fullmatch=True)
    if spec is not None and annotation is str:
        return st.text(
            st.characters(blacklist_categories=("Cs", "Cc")),
            min_size=spec.min_length or 1,
            max_size=min(spec.max_length or 40, 40),
        ).filter(str.strip)
    if spec is not None and annotation is int:
        return st.integers(spec.ge if spec.ge is not None else -1000, spec.le if spec.le is not None else 1000)
    return VALUES[annotation]


def command_strategy(kind: type[Command]) -> st.SearchStrategy[Command]:
    """``st.builds`` over the command type, each field within what its ``Spec`` allows."""
    hints = typing.get_type_hints(kind, include_extras=True)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in dataclasses.fields(kind):
        annotation, spec = hints[field.name], None
        if get_origin(annotation) is Annotated:
            annotation, *extras = get_args(annotation)
            spec = next((extra for extra in extras if isinstance(extra, Spec)), None)
        fields[field.name] = _strategy(annotation, spec)
    return st.builds(kind, **fields)


def commands() -> st.SearchStrategy[Command]:
    """Any command of any type."""
    return st.one_of(*(command_strategy(kind) for kind in COMMANDS))

"""Request shapes of the domain's value objects. Each validates by building the
domain value, so HTTP and the domain can never disagree on what is valid, and a
refusal carries the field path of the value that was wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from domain.errors import DomainError
from domain.values import Money, PersonalData, Target

AMOUNT = Field(allow_inf_nan=False, max_digits=30, decimal_places=10, examples=["250000.00"])
CURRENCY = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["EUR"])


class DomainValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _valid_in_the_domain(self) -> Self:
        try:
            self.to_domain()
        except DomainError as refused:
            raise ValueError(str(refused)) from None
        return self

    def to_domain(self) -> object:
        raise NotImplementedError


class MoneyIn(DomainValue):
    amount: Decimal = AMOUNT
    currency: str = CURRENCY

    def to_domain(self) -> Money:
        return Money(self.amount, self.currency)


class TargetIn(DomainValue):
    metric: str = Field(min_length=1, max_length=300, examples=["annual revenue"])
    value: Decimal = AMOUNT
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", examples=["EUR"])

    def to_domain(self) -> Target:
        return Target(self.metric, self.value, self.currency)


class PersonalDataIn(DomainValue):
    """Encrypted at rest with a key for this person alone; erasable."""

    name: str = Field(min_length=1, max_length=300, examples=["Dr. Ingrid Holm"])
    email: str | None = Field(default=None, max_length=300, examples=["ingrid.holm@customer.example"])
    phone: str | None = Field(default=None, max_length=40, examples=["+46 8 555 0100"])

    def to_domain(self) -> PersonalData:
        return PersonalData(self.name, self.email, self.phone)


def _representable_in_utc(moment: datetime) -> datetime:
    """Refuse, as invalid input, a moment whose UTC time falls outside the years 1 to
    9999 (``9999-12-31T23:59:59-23:59``): it cannot be compared, stored or shown."""
    if moment.tzinfo is not None:
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("the moment is outside the years 1 to 9999 in UTC") from None
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(_representable_in_utc)]
"""A moment with its UTC offset."""
MomentOrUtc = Annotated[datetime, AfterValidator(_representable_in_utc)]
"""A moment; one without an offset is read as UTC."""


def _without_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain the NUL character")
    return text


TextWithoutNul = Annotated[str, AfterValidator(_without_nul)]
"""Free text that reaches a query: PostgreSQL's text cannot hold NUL, and no stored
text has one (the domain refuses it), so it is invalid input rather than a 500."""

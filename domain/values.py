"""Value objects and enumerations shared by the aggregates.

Enumerations are ``StrEnum`` so stored events hold their plain string values and
old events stay readable if members are added. Value objects are frozen
dataclasses whose constructors validate, so an invalid value cannot exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, TypeVar
from uuid import UUID

from domain.errors import InvalidValue, NegativeAmount, TooManyDecimals
from domain.iso_codes import COUNTRY_CODES, CURRENCY_CODES, CURRENCY_MINOR_UNITS

E = TypeVar("E", bound=StrEnum)

MAX_TEXT: Final = 10_000
"""Longest free text accepted anywhere (descriptions, notes, rationales)."""

MAX_NAME: Final = 300
"""Longest name or title accepted."""

ERASED: Final = "[erased]"
"""What stands where a person's erased data was."""


class GovernanceModel(StrEnum):
    """How much HQ steers the local units (the three models of global account management)."""

    COORDINATED = "coordinated"
    CENTRAL_CONTROL = "central_control"
    SEPARATE = "separate"


class AccountTier(StrEnum):
    """Strategic importance of the account; tier 1 gets the most attention."""

    TIER_1 = "tier_1"
    TIER_2 = "tier_2"
    TIER_3 = "tier_3"


class UnitLevel(StrEnum):
    """The four levels at which a global account is run, top to bottom."""

    HQ = "hq"
    REGION = "region"
    COUNTRY = "country"
    LOCAL = "local"

    @property
    def depth(self) -> int:
        return list(UnitLevel).index(self)


class TeamRole(StrEnum):
    """Roles on our side of the relationship. A person's rights on an account follow
    from these (``domain.team``): the lead GAM, GAMs and the executive sponsor work on
    the whole account, a regional account manager on a unit and everything below it,
    a local account manager on one unit, a specialist reads."""

    LEAD_GAM = "lead_gam"
    GAM = "gam"
    REGIONAL_AM = "regional_am"
    LOCAL_AM = "local_am"
    EXECUTIVE_SPONSOR = "executive_sponsor"
    SPECIALIST = "specialist"


class CascadeAnswer(StrEnum):
    """How a unit answers an objective cascaded to it."""

    ADOPTED = "adopted"
    ADAPTED = "adapted"
    DECLINED = "declined"


class ActionStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    BLOCKED = "blocked"


ACTION_TRANSITIONS: Final[dict[ActionStatus, frozenset[ActionStatus]]] = {
    ActionStatus.PLANNED: frozenset({ActionStatus.IN_PROGRESS, ActionStatus.BLOCKED, ActionStatus.DONE}),
    ActionStatus.IN_PROGRESS: frozenset({ActionStatus.DONE, ActionStatus.BLOCKED, ActionStatus.PLANNED}),
    ActionStatus.BLOCKED: frozenset({ActionStatus.PLANNED, ActionStatus.IN_PROGRESS}),
    ActionStatus.DONE: frozenset({ActionStatus.IN_PROGRESS}),
}
"""Allowed action status changes; reopening a done action puts it back in progress."""


class PlanStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"


class SwotKind(StrEnum):
    STRENGTH = "strength"
    WEAKNESS = "weakness"
    OPPORTUNITY = "opportunity"
    THREAT = "threat"


class WhitespaceStatus(StrEnum):
    """State of one offering at one unit of the customer."""

    IN_USE = "in_use"
    OPPORTUNITY = "opportunity"
    COMPETITOR_HOLDS = "competitor_holds"
    NOT_A_FIT = "not_a_fit"


class BuyingRole(StrEnum):
    """A stakeholder's general role in the customer's buying centre."""

    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    USER = "user"
    GATEKEEPER = "gatekeeper"
    CHAMPION = "champion"
    DETRACTOR = "detractor"


class InteractionChannel(StrEnum):
    MEETING = "meeting"
    CALL = "call"
    EMAIL = "email"
    EVENT = "event"
    VIDEO = "video"
    OTHER = "other"


class DealStage(StrEnum):
    """The open stages of the pipeline, in order."""

    PROSPECTING = "prospecting"
    QUALIFICATION = "qualification"
    SOLUTION = "solution"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"

    @property
    def position(self) -> int:
        """Place in the pipeline, 0 first (not ``str.index``)."""
        return PIPELINE.index(self)

    @property
    def default_probability(self) -> int:
        return STAGE_PROBABILITY[self]


PIPELINE: Final[tuple[DealStage, ...]] = tuple(DealStage)
STAGE_PROBABILITY: Final[dict[DealStage, int]] = {
    DealStage.PROSPECTING: 10,
    DealStage.QUALIFICATION: 20,
    DealStage.SOLUTION: 40,
    DealStage.PROPOSAL: 60,
    DealStage.NEGOTIATION: 80,
}
"""Win probability (percent) a deal takes when it enters a stage, unless set by hand."""

WINNABLE_STAGES: Final = frozenset({DealStage.PROPOSAL, DealStage.NEGOTIATION})
"""A deal is won only once a proposal is on the table."""


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class BuyingInfluenceRole(StrEnum):
    """Per-deal buying influences, as in Miller Heiman's Strategic Selling."""

    ECONOMIC_BUYER = "economic_buyer"
    USER_BUYER = "user_buyer"
    TECHNICAL_BUYER = "technical_buyer"
    COACH = "coach"


class InfluenceDegree(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class MeddpiccElement(StrEnum):
    METRICS = "metrics"
    ECONOMIC_BUYER = "economic_buyer"
    DECISION_CRITERIA = "decision_criteria"
    DECISION_PROCESS = "decision_process"
    PAPER_PROCESS = "paper_process"
    IDENTIFIED_PAIN = "identified_pain"
    CHAMPION = "champion"
    COMPETITION = "competition"


PERSON_ELEMENTS = frozenset({MeddpiccElement.ECONOMIC_BUYER, MeddpiccElement.CHAMPION})
"""MEDDPICC elements that are a person: their evidence may name the stakeholder, and is
then theirs (sealed under their key, erased with them)."""


class QualificationStatus(StrEnum):
    UNKNOWN = "unknown"
    PARTIAL = "partial"
    CONFIRMED = "confirmed"
    AT_RISK = "at_risk"


# --- validators -----------------------------------------------------------------


def require_text(field: str, value: str, *, max_len: int = MAX_NAME, allow_empty: bool = False) -> str:
    """Trimmed, bounded text; names and titles must not be blank. NUL is refused:
    PostgreSQL's ``text`` cannot hold it, so a NUL accepted here would poison every
    read model and key table that stores the text later."""
    if not isinstance(value, str):
        raise InvalidValue(field, "must be text")
    reject_nul(field, value)
    stripped = value.strip()
    if not stripped and not allow_empty:
        raise InvalidValue(field, "must not be blank")
    if len(value) > max_len:
        raise InvalidValue(field, f"must be at most {max_len} characters")
    return stripped


def reject_nul(field: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidValue(field, "must not contain the NUL character")


def optional_text(field: str, value: str | None, *, max_len: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    return require_text(field, value, max_len=max_len, allow_empty=True) or None


def require_currency(field: str, code: str) -> str:
    if not isinstance(code, str) or code not in CURRENCY_CODES:
        raise InvalidValue(field, f"{code!r} is not an ISO 4217 currency code")
    return code


def require_country(field: str, code: str) -> str:
    if not isinstance(code, str) or code not in COUNTRY_CODES:
        raise InvalidValue(field, f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def require_int_range(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(field, f"must be an integer from {low} to {high}")
    return value


def require_enum(field: str, enum: type[E], value: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidValue(field, f"{value!r} is not one of: {allowed}") from None


def require_aware(field: str, moment: datetime) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidValue(field, "must be a timezone-aware datetime")
    return moment


def require_date(field: str, day: date) -> date:
    if not isinstance(day, date) or isinstance(day, datetime):
        raise InvalidValue(field, "must be a calendar date")
    return day


def decimal_places(value: Decimal) -> int:
    """How many decimals a finite amount needs: ``12.340`` needs 2, ``1E+3`` none.
    Read from the digits, not by rounding, so no context precision can hide one."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def require_minor_units(field: str, value: Decimal, currency: str) -> Decimal:
    """An amount has at most its currency's ISO 4217 minor units: 12.345 USD is not money
    anyone can pay. Checked when a command is decided, not when a value is built, so
    events stored before the rule existed still load."""
    places = CURRENCY_MINOR_UNITS.get(currency)
    if places is not None and decimal_places(value) > places:
        unit = "no decimals" if places == 0 else f"at most {places} decimal{'s' if places > 1 else ''}"
        raise TooManyDecimals(field, f"{value} {currency}: {currency} amounts have {unit} (ISO 4217 minor units)")
    return value


def require_finite_decimal(field: str, value: Decimal) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidValue(field, "must be a finite decimal number")
    return value


# --- value objects ----------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """An amount in an ISO 4217 currency; never a float."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        require_finite_decimal("amount", self.amount)
        require_currency("currency", self.currency)

    def require_non_negative(self, field: str) -> Money:
        if self.amount < 0:
            raise NegativeAmount(f"{field}: {self.amount} {self.currency} is negative")
        return self

    def require_minor_units(self, field: str) -> Money:
        """See :func:`require_minor_units`; ``field`` names the money value, the error its amount."""
        require_minor_units(f"{field}.amount", self.amount, self.currency)
        return self


@dataclass(frozen=True)
class Target:
    """A measurable target for an objective: metric, value and, for money, a currency."""

    metric: str
    value: Decimal
    currency: str | None = None

    def __post_init__(self) -> None:
        require_text("target.metric", self.metric)
        require_finite_decimal("target.value", self.value)
        if self.currency is not None:
            require_currency("target.currency", self.currency)
            if self.value < 0:
                raise NegativeAmount(f"target.value: {self.value} {self.currency} is negative")

    def require_minor_units(self, field: str) -> Target:
        """A money target (one with a currency) has at most the currency's minor units."""
        if self.currency is not None:
            require_minor_units(f"{field}.value", self.value, self.currency)
        return self


@dataclass(frozen=True)
class PersonalData:
    """A stakeholder's personal data, kept apart from business facts so it can be
    encrypted per person and erased without touching the rest of the history."""

    name: str
    email: str | None = None
    phone: str | None = None

    def __post_init__(self) -> None:
        require_text("personal.name", self.name)
        if self.email is not None:
            require_text("personal.email", self.email)
            if "@" not in self.email:
                raise InvalidValue("personal.email", "must be an email address")
        if self.phone is not None:
            require_text("personal.phone", self.phone, max_len=40)


def ensure_ids(field: str, values: tuple[UUID, ...]) -> tuple[UUID, ...]:
    if not all(isinstance(v, UUID) for v in values):
        raise InvalidValue(field, "must be UUIDs")
    return tuple(values)

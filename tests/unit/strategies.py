"""Hypothesis strategies for the property tests of events and replay.

* Values: text (unicode, emoji, combining marks, right-to-left, control
  characters, empty and long), large and oddly scaled ``Decimal``s, dates, UTC
  datetimes, UUIDs, and the domain's value objects built valid.
* Events: :func:`for_event` derives a strategy for ANY event class from its type
  hints, so a new event type is covered without touching the tests (and a field
  of a type nobody taught :func:`for_type` fails loudly).
* Commands: :class:`ReplayMachine`, a rule-based state machine that drives the
  service handlers with random commands (mostly valid, some refused by a rule)
  and checks that every aggregate rebuilt from the store equals the one that
  made the decisions. The unit and integration tests subclass it for their store.
* :func:`canonical`: a strict comparison form (types, ``str()`` of Decimals,
  tuple vs list) for asserting that nothing was lost on the way.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pkgutil
import sys
import types
import typing
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import Repository
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import domain
from domain.account import GlobalAccount
from domain.base import GamAggregate, GamEvent
from domain.catalog import personal_subjects
from domain.deal import Deal
from domain.errors import DomainError
from domain.iso_codes import COUNTRY_CODES, CURRENCY_CODES, CURRENCY_MINOR_UNITS
from domain.metadata import EventMetadata
from domain.plan import AccountPlan, plan_id_for
from domain.stakeholder import Stakeholder
from domain.values import (
    ERASED,
    MAX_NAME,
    MAX_TEXT,
    AccountTier,
    ActionStatus,
    BuyingInfluenceRole,
    BuyingRole,
    CascadeAnswer,
    DealStage,
    GovernanceModel,
    InfluenceDegree,
    InteractionChannel,
    MeddpiccElement,
    Money,
    PersonalData,
    QualificationStatus,
    SwotKind,
    Target,
    TeamRole,
    WhitespaceStatus,
)
from infra.read_check import ReadCheck
from services import handlers as h
from services.app import CommandResult, GamApplication

# --- values ----------------------------------------------------------------------

SPECIAL_CHARACTERS = (
    "\u00e9\u00fc\u00df\u0141\u00f3d\u017a"  # Latin with diacritics
    "e\u0301a\u0308o\u0302\u0327"  # combining marks
    "\u5317\u4eac\u6771\u4eac\ud55c"  # CJK, Hangul
    "\u0645\u0631\u062d\u0628\u0627\u05e9\u05dc\u05d5\u05dd"  # Arabic, Hebrew (right to left)
    "\u202e\u202d\u200f\u200e\u2066\u2069"  # bidi overrides and isolates
    "\U0001f680\U0001f468\u200d\U0001f469\u200d\U0001f467\U0001f44d\U0001f3fd\U0001f1e9\U0001f1ea"  # emoji, ZWJ, flags
    "\U0001d518\U00010348"  # astral plane letters
    "\x01\x1f\x7f\t\n\r\u2028\u2029\u00a0\u3000\ufeff\ufffd"  # controls and odd whitespace
    "\"'\\/{}[]<>&%$_"  # characters JSON and SQL care about
)
special_text = st.text(alphabet=st.sampled_from(SPECIAL_CHARACTERS), min_size=1, max_size=30)
any_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)
"""Every encodable code point but NUL, which every domain text refuses (PostgreSQL's
``text`` cannot hold it); lone surrogates cannot be stored as UTF-8 at all."""


def repeated(piece: str, length: int) -> str:
    """A long string cheaply: ``piece`` repeated up to ``length`` characters."""
    return (piece * (length // max(len(piece), 1) + 1))[:length] if piece else ""


def long_text(max_size: int) -> st.SearchStrategy[str]:
    return st.builds(repeated, special_text | any_text.filter(bool), st.integers(1, max_size))


texts = st.one_of(st.just(""), any_text, special_text, long_text(5000))
"""Any str an event may hold: empty, unicode of every kind, up to ~5000 characters."""

_COEFFICIENTS = st.integers(min_value=0, max_value=10**40 - 1)


def _decimal(negative: bool, coefficient: int, exponent: int) -> Decimal:
    return Decimal((int(negative), tuple(int(d) for d in str(coefficient)), exponent))


decimals = st.one_of(
    st.builds(_decimal, st.booleans(), _COEFFICIENTS, st.integers(min_value=-10, max_value=0)),
    st.builds(_decimal, st.booleans(), _COEFFICIENTS, st.integers(min_value=-30, max_value=30)),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [Decimal(s) for s in ("0", "-0", "0.00", "0E-10", "1.10", "1E+3", "-1.000", "0.0000000001", "9" * 40)]
    ),
)
"""Finite decimals up to 40 digits and 10 places (and beyond), negative, with trailing zeros."""
non_negative_decimals = decimals.map(lambda d: d.copy_abs())

integers = st.integers(min_value=-(2**64), max_value=2**64)
dates = st.dates()
utc_datetimes = st.datetimes(timezones=st.just(UTC))
currencies = st.sampled_from(sorted(CURRENCY_CODES))
countries = st.sampled_from(sorted(COUNTRY_CODES))

names = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40),
    special_text,
    st.builds(lambda s: f"  {s}\t", special_text),  # surrounding whitespace is trimmed by the domain
    st.builds(repeated, special_text, st.just(MAX_NAME)),  # the longest name allowed
).filter(lambda s: bool(s.strip()))
"""Valid names and titles: not blank, at most MAX_NAME characters."""
free_texts = st.one_of(st.just(""), any_text, special_text, long_text(MAX_TEXT))
"""Valid free text (descriptions, notes): may be blank, at most MAX_TEXT characters."""
required_texts = st.one_of(names, long_text(MAX_TEXT)).filter(lambda s: bool(s.strip()))

money = st.builds(Money, amount=decimals, currency=currencies)
non_negative_money = st.builds(Money, amount=non_negative_decimals, currency=currencies)


def amounts_in(currency: str) -> st.SearchStrategy[Decimal]:
    """Non-negative amounts a command may carry in ``currency``: up to 40 digits, at
    most its ISO 4217 minor units (trailing zeros included: ``1.10`` EUR)."""
    places = CURRENCY_MINOR_UNITS[currency]
    lowest = -10 if places is None else -places
    return st.builds(_decimal, st.just(False), _COEFFICIENTS, st.integers(min_value=lowest, max_value=30))


payable_money = currencies.flatmap(lambda code: st.builds(Money, amount=amounts_in(code), currency=st.just(code)))
"""Money a command accepts: non-negative, within the currency's minor units."""
deal_money = st.one_of(payable_money, payable_money, payable_money, non_negative_money)
"""Mostly payable money, sometimes with more decimals than the currency has (refused)."""


@st.composite
def targets(draw: st.DrawFn, payable: bool = False) -> Target:
    """Any target an event may hold; ``payable``: one a command accepts (a money target
    within its currency's minor units)."""
    currency = draw(st.none() | currencies)
    if currency and payable:
        value = draw(amounts_in(currency))
    else:
        value = draw(non_negative_decimals if currency else decimals)
    return Target(metric=draw(names), value=value, currency=currency)


def amount_in(currency: str, amount: Decimal, exact: bool) -> Decimal:
    """``amount`` cut to the currency's minor units when ``exact`` (without rounding
    through a context: digits past the last allowed place are dropped)."""
    places = CURRENCY_MINOR_UNITS[currency]
    _, digits, exponent = amount.as_tuple()
    if not exact or places is None or not isinstance(exponent, int) or exponent >= -places:
        return amount
    kept = digits[: max(len(digits) - (-places - exponent), 0)] or (0,)
    return Decimal((0, kept, -places))


@st.composite
def personal_data(draw: st.DrawFn) -> PersonalData:
    email = draw(st.none() | st.emails() | st.builds(lambda a, b: f"{a[:20]}@{b}", any_text, special_text))
    phone = draw(st.none() | st.from_regex(r"\+?[0-9][0-9 ()-]{0,38}", fullmatch=True))
    return PersonalData(name=draw(names), email=email, phone=phone)


VALUE_STRATEGIES: dict[Any, st.SearchStrategy[Any]] = {
    str: texts,
    int: integers,
    bool: st.booleans(),
    Decimal: decimals,
    UUID: st.uuids(),
    datetime: utc_datetimes,
    date: dates,
    Money: money,
    Target: targets(),
    PersonalData: personal_data(),
}


# --- events ----------------------------------------------------------------------


def domain_modules() -> list[types.ModuleType]:
    """Every module of the ``domain`` package (imported, so their events exist)."""
    return [importlib.import_module(f"domain.{m.name}") for m in pkgutil.iter_modules(domain.__path__)]


def declared_event_classes() -> list[type[GamEvent]]:
    """Every subclass of GamEvent, recursively, defined in a domain module."""
    domain_modules()
    found: list[type[GamEvent]] = []
    pending = [GamEvent]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                pending.append(sub)
    return [c for c in found if c.__module__.startswith("domain.")]


def all_event_classes() -> list[type[GamEvent]]:
    """The event classes the store hands back (eventsourcing re-creates the
    nested event classes of each aggregate; the topic resolves to that one)."""
    effective = {resolve_topic(topic_of(c)) for c in declared_event_classes()}
    return sorted(effective, key=topic_of)


def topic_of(cls: type[Any]) -> str:
    """The topic the store records for a class (without registering the class)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def aggregate_of(event_class: type[Any]) -> type[Aggregate]:
    owner = resolve_topic(topic_of(event_class).rsplit(".", 1)[0])
    assert isinstance(owner, type)
    assert issubclass(owner, Aggregate), f"{event_class} is not nested in an aggregate"
    return owner


def for_type(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for a type hint of an event field; fails for types nobody covered."""
    if isinstance(hint, typing.TypeVar):  # eventsourcing's TAggregateID: ours are UUIDs
        return st.uuids()
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(for_type(arg) for arg in typing.get_args(hint)))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(for_type(args[0]), max_size=6).map(tuple)
        return st.tuples(*(for_type(arg) for arg in args))
    if hint is type(None):
        return st.none()
    if hint in VALUE_STRATEGIES:
        return VALUE_STRATEGIES[hint]
    msg = f"no strategy for type {hint!r}: add one to tests/unit/strategies.py"
    raise TypeError(msg)


def event_field_hints(event_class: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(event_class, localns=vars(sys.modules[event_class.__module__]))
    return {f.name: hints[f.name] for f in dataclasses.fields(event_class)}


def for_event(event_class: type[GamEvent]) -> st.SearchStrategy[GamEvent]:
    """Any instance of the event class, every field drawn from its type hint."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, hint in event_field_hints(event_class).items():
        if name == "originator_topic":
            fields[name] = st.just(get_topic(aggregate_of(event_class)))
        elif name == "originator_version":
            fields[name] = st.integers(min_value=1, max_value=2**62)
        else:
            fields[name] = for_type(hint)
    return st.fixed_dictionaries(fields).map(lambda kwargs: event_class(**kwargs))


# --- strict comparison -----------------------------------------------------------


def canonical(value: Any) -> Any:
    """A form that differs whenever anything differs: types (tuple vs list, str vs
    int), the text of Decimals ('1.0' vs '1.00'), datetimes' offsets."""
    if isinstance(value, Aggregate):
        return (type(value).__qualname__, canonical(vars(value)))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), str(value.tzinfo))
    if isinstance(value, date):
        return ("date", value.isoformat())
    if isinstance(value, Enum):
        return ("enum", str(value.value))
    if isinstance(value, bool | int | str | UUID | None):
        return (type(value).__name__, value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__qualname__,
            {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)},
        )
    if isinstance(value, tuple | list):
        return (type(value).__name__, [canonical(v) for v in value])
    if isinstance(value, dict):
        items = [(canonical(k), canonical(v)) for k, v in value.items()]
        return ("dict", sorted(items, key=repr))
    return (type(value).__qualname__, repr(value))


def differences(expected: Any, actual: Any) -> list[str]:
    """The attributes in which two aggregates or events differ (for failure messages)."""
    left, right = vars(expected), vars(actual)
    return [
        f"{k}: expected {left.get(k)!r}, got {right.get(k)!r}"
        for k in sorted(set(left) | set(right))
        if canonical(left.get(k)) != canonical(right.get(k))
    ]


def assert_same_event(actual: GamEvent, expected: GamEvent) -> None:
    assert type(actual) is type(expected), f"{type(actual)} is not {type(expected)}"
    assert actual == expected, differences(expected, actual)
    assert canonical(vars(actual)) == canonical(vars(expected)), differences(expected, actual)


def assert_same_aggregate(actual: Any, expected: Any, how: str) -> None:
    assert actual == expected, f"{how}: {type(expected).__name__} differs: {differences(expected, actual)}"
    assert canonical(actual) == canonical(expected), f"{how}: {differences(expected, actual)}"


# --- commands --------------------------------------------------------------------

EPOCH = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
LEVEL_BELOW = {"hq": "region", "region": "country", "country": "local", "local": "local"}
SEL = st.integers(min_value=0, max_value=1_000)
"""Picks the n-th existing thing (modulo how many exist)."""
META = st.tuples(names, st.none() | free_texts, st.none() | st.uuids())
"""Actor, reason and causation id of a command."""
REGION_CODES = st.from_regex(r"[A-Za-z0-9]{1,8}(-[A-Za-z0-9]{1,3})?", fullmatch=True)
FISCAL_PERIODS = st.sampled_from(["FY2027", "FY2028", "FY2027-H2", "FY2028-Q3", " FY2029 ", "FY27", "2027"])


def rarely(one_in: int) -> st.SearchStrategy[bool]:
    """True about once in ``one_in`` draws (and shrinking towards False)."""
    return st.sampled_from([False] * (one_in - 1) + [True])


def enum_values(enum: type[Enum]) -> st.SearchStrategy[str]:
    return st.sampled_from([str(m.value) for m in enum])


def pick(items: list[Any] | tuple[Any, ...], n: int) -> Any:
    return items[n % len(items)] if items else None


class ReplayMachine(RuleBasedStateMachine):
    """Drives every command handler of one account with random commands.

    Each aggregate is evolved a second time, apart from the application, by
    applying the very event objects its commands produced (never stored and
    loaded): the "shadow". After every step the aggregates just changed, and at
    the end all of them, must be rebuilt from the store equal to their shadow and
    to the object that made the decision, with as many stored events as their
    version; a refused command must store nothing; every snapshot must equal the
    replay of the events up to its version.

    Subclasses say which application writes (:meth:`make_app`) and how the store
    is read back (:meth:`rebuilders`, :meth:`snapshot_store`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.app = self.make_app()
        # Spy on commit, to see the aggregates that decided and their new events.
        self.app.commit = self._commit  # type: ignore[method-assign]
        self.namespace = uuid4()  # fresh ids for every run, even on a shared store
        self.counter = 0
        self.now = EPOCH
        self.shadow: dict[UUID, GamAggregate] = {}
        self.decided: dict[UUID, GamAggregate] = {}
        self.decided_as: dict[UUID, frozenset[UUID]] = {}  # who was erased when each was decided
        self.history: dict[UUID, list[GamEvent]] = {}
        self.touched: set[UUID] = set()
        self.erased: set[UUID] = set()  # subjects whose key was destroyed
        self.accepted: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.broken = False  # a step failed: the final checks would only hide its error
        self.account_id = self.new_id()
        self.hq_id = self.new_id()

    # --- to be specialised per store ----------------------------------------------

    def make_app(self) -> GamApplication:
        raise NotImplementedError

    def rebuilders(self) -> dict[str, Callable[[UUID], Any]]:
        """Ways to rebuild an aggregate from the store, each must match the shadow."""
        app = self.app
        return {
            "events only": Repository(event_store=app.events).get,
            "latest snapshot and later events": Repository(event_store=app.events, snapshot_store=app.snapshots).get,
        }

    def snapshot_store(self) -> Any:
        return self.app.snapshots

    def release(self) -> None:
        """Called at the end of each run."""

    # --- plumbing -------------------------------------------------------------------

    def new_id(self) -> UUID:
        self.counter += 1
        return uuid5(self.namespace, str(self.counter))

    def meta(self, parts: tuple[str, str | None, UUID | None]) -> EventMetadata:
        self.now += timedelta(seconds=1, microseconds=1_001)
        actor, reason, causation = parts
        return EventMetadata(
            actor=actor, at=self.now, correlation_id=self.new_id(), causation_id=causation, reason=reason
        )

    def _commit(self, primary: GamAggregate, *others: GamAggregate, reads: ReadCheck | None = None) -> CommandResult:
        aggregates = (primary, *others)
        pending = [e for a in aggregates for e in a.pending_events]
        before = self.app.recorder.max_notification_id() or 0
        result = type(self.app).commit(self.app, *aggregates, reads=reads)
        stored = self.app.recorder.select_notifications(start=before + 1, limit=len(pending) + 5)
        assert [(UUID(str(n.originator_id)), n.originator_version) for n in stored] == [
            (e.originator_id, e.originator_version) for e in pending
        ], "the store did not receive exactly the command's events, in order"
        assert result.position == stored[-1].id
        assert result.version == primary.version
        for aggregate in aggregates:
            shadow = self.shadow.get(aggregate.id)
            for event in pending:
                if event.originator_id == aggregate.id:
                    shadow = event.mutate(shadow)
                    self.history.setdefault(aggregate.id, []).append(event)
            assert shadow is not None
            # loaded from the store, the deciding aggregate reads a note about an erased person as erased
            as_read = self.as_read(shadow)
            assert_same_aggregate(aggregate, as_read, "the deciding aggregate vs its events replayed in memory")
            self.shadow[aggregate.id] = shadow
            self.decided[aggregate.id] = copy.deepcopy(aggregate)
            self.decided_as[aggregate.id] = frozenset(self.erased)
            self.touched.add(aggregate.id)
        return result

    def run(self, handler: Callable[..., CommandResult], meta: tuple[str, str | None, UUID | None], **kw: Any) -> bool:
        """Send one command; a refused one must leave the store as it was."""
        before = self.app.recorder.max_notification_id() or 0
        refused: DomainError | None = None
        try:
            handler(self.app, self.meta(meta), **kw)
        except DomainError as error:
            refused = error
        except BaseException:
            self.broken = True
            raise
        if refused is None:
            self.accepted[handler.__name__] += 1
            return True
        self.refused[f"{handler.__name__}: {refused.rule}"] += 1
        after = self.app.recorder.max_notification_id() or 0
        if after != before:
            self.broken = True
            msg = f"{handler.__name__} was refused ({refused}) but stored events"
            raise AssertionError(msg)
        return False

    # --- what exists (as the shadows have it) --------------------------------------

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.shadow.values() if isinstance(a, kind)]

    @property
    def account(self) -> GlobalAccount:
        account = self.shadow[self.account_id]
        assert isinstance(account, GlobalAccount)
        return account

    def units(self) -> list[Any]:
        return list(self.account.units.values())

    def units_below(self, unit_id: UUID) -> list[Any]:
        tree = self.account.tree()
        return [u for u in self.units() if tree.is_below(u.unit_id, unit_id)]

    def holders(self, plan: AccountPlan, objective_id: UUID) -> list[UUID]:
        """The units that own the objective or took it on."""
        objective = plan.objectives[objective_id]
        taken = [d.to_unit_id for (o, _), d in plan.directives.items() if o == objective_id and d.taken_on]
        return [objective.unit_id, *taken]

    # --- checks --------------------------------------------------------------------

    def check_rebuilt(self, entity_id: UUID) -> None:
        expected = self.shadow[entity_id]
        decided_as = self.as_read(expected, self.decided_as.get(entity_id, frozenset()))
        assert_same_aggregate(self.decided[entity_id], decided_as, "the deciding aggregate vs the shadow")
        stored = list(self.app.events.get(entity_id))
        assert [e.originator_version for e in stored] == list(range(1, len(stored) + 1))
        assert expected.version == len(stored), f"version {expected.version}, {len(stored)} stored events"
        for event, original in zip(stored, self.history[entity_id], strict=True):
            assert_same_event(event, self.as_stored(original))
        for how, rebuild in self.rebuilders().items():
            rebuilt = rebuild(entity_id)
            assert_same_aggregate(rebuilt, self.as_read(expected), f"rebuilt ({how})")

    def as_read(self, aggregate: GamAggregate, erased: frozenset[UUID] | set[UUID] | None = None) -> GamAggregate:
        """The aggregate as the store must give it back: a deal's notes and evidence about
        a person whose key was destroyed (``erased``: by now, unless given) read as
        erased (the deal, roles and degrees stay)."""
        erased = self.erased if erased is None else erased
        if not isinstance(aggregate, Deal) or not erased:
            return aggregate
        read = copy.deepcopy(aggregate)
        read.influences = {
            k: dataclasses.replace(i, note=ERASED) if i.stakeholder_id in erased and i.note is not None else i
            for k, i in aggregate.influences.items()
        }
        read.qualification = {
            k: dataclasses.replace(q, evidence=ERASED) if q.stakeholder_id in erased and q.evidence is not None else q
            for k, q in aggregate.qualification.items()
        }
        return read

    def as_stored(self, event: GamEvent) -> GamEvent:
        """The event as the store must hand it back: once a subject's key is
        destroyed, their personal data reads as erased."""
        erased = {
            f: PersonalData(ERASED) if f == "personal" else ERASED
            for f, subject in personal_subjects(event).items()
            if subject in self.erased
        }
        return dataclasses.replace(event, **erased) if erased else event

    def check_snapshots(self, entity_id: UUID) -> None:
        snapshots = self.snapshot_store()
        if snapshots is None:
            return
        aggregate = self.shadow[entity_id]
        taken = list(snapshots.get(entity_id))
        every = self.app.snapshotting_intervals.get(type(aggregate))
        expected = list(range(every, aggregate.version + 1, every)) if every else []
        assert [s.originator_version for s in taken] == expected, f"snapshots of {type(aggregate).__name__}"
        replay = Repository(event_store=self.app.events)
        for snapshot in taken:
            assert_same_aggregate(
                snapshot.mutate(None),
                replay.get(entity_id, version=snapshot.originator_version),
                f"snapshot at version {snapshot.originator_version} vs the events up to it",
            )

    @invariant()
    def changed_aggregates_rebuild_from_the_store(self) -> None:
        try:
            for entity_id in sorted(self.touched):
                self.check_rebuilt(entity_id)
        except BaseException:
            self.broken = True
            raise
        self.touched.clear()

    def teardown(self) -> None:
        """Every aggregate, and every snapshot, once more at the end of the run."""
        try:
            if not self.broken:
                for entity_id in self.shadow:
                    self.check_rebuilt(entity_id)
                    self.check_snapshots(entity_id)
        finally:
            self.release()

    # --- the account ---------------------------------------------------------------

    @initialize(
        meta=META,
        name=names,
        industry=names,
        country=countries,
        currency=currencies,
        tier=enum_values(AccountTier),
        model=enum_values(GovernanceModel),
        region=REGION_CODES,
        unit_country=countries,
        goal=targets(payable=True),
        personal=personal_data(),
        amount=payable_money,
    )
    def onboard(
        self,
        meta: Any,
        name: str,
        industry: str,
        country: str,
        currency: str,
        tier: str,
        model: str,
        region: str,
        unit_country: str,
        goal: Target,
        personal: PersonalData,
        amount: Money,
    ) -> None:
        """The account and its FY2027 plan, a unit at every level, an HQ objective
        cascaded to the region with an action, a stakeholder and a deal: so every
        kind of command is possible from the first step."""
        assert self.run(
            h.onboard_account,
            meta,
            account_id=self.account_id,
            hq_unit_id=self.hq_id,
            name=name,
            industry=industry,
            hq_country=country,
            reporting_currency=currency,
            tier=tier,
            governance_model=model,
            fiscal_period="FY2027",
        )
        parent = self.hq_id
        for level, code in (("region", region), ("country", unit_country), ("local", unit_country)):
            unit = self.new_id()
            assert self.run(
                h.add_unit,
                meta,
                account_id=self.account_id,
                unit_id=unit,
                name=f"{level} {code}",
                level=level,
                parent_id=parent,
                code=code,
            )
            parent = unit
        plan, objective, region_id = plan_id_for(self.account_id, "FY2027"), self.new_id(), self.units()[1].unit_id
        assert self.run(
            h.set_objective,
            meta,
            plan_id=plan,
            objective_id=objective,
            unit_id=self.hq_id,
            title=name,
            description=industry,
            target=goal,
            due_date=date(2027, 12, 31),
        )
        assert self.run(
            h.cascade_objective,
            meta,
            plan_id=plan,
            objective_id=objective,
            from_unit_id=self.hq_id,
            to_unit_ids=(region_id,),
        )
        assert self.run(
            h.add_action,
            meta,
            plan_id=plan,
            action_id=self.new_id(),
            objective_id=objective,
            unit_id=self.hq_id,
            title=name,
            owner=name,
            due_date=date(2027, 3, 31),
        )
        assert self.run(
            h.identify_stakeholder,
            meta,
            stakeholder_id=self.new_id(),
            account_id=self.account_id,
            unit_id=self.hq_id,
            title=industry,
            personal=personal,
        )
        assert self.run(
            h.open_deal,
            meta,
            deal_id=self.new_id(),
            account_id=self.account_id,
            unit_id=parent,
            title=name,
            amount=amount,
            expected_close=date(2027, 6, 30),
            owner=name,
        )

    @rule(
        meta=META,
        parent=SEL,
        name=names,
        region=REGION_CODES,
        country=countries,
        wrong=rarely(10),
    )
    def add_unit(self, meta: Any, parent: int, name: str, region: str, country: str, wrong: bool) -> None:
        above = pick(self.units(), parent)
        level = LEVEL_BELOW[above.level]
        code = {"region": region, "country": country, "local": above.code}[level]
        if level == "local" and wrong:
            code = country  # usually another country than the parent's: refused
        self.run(
            h.add_unit,
            meta,
            account_id=self.account_id,
            unit_id=self.new_id(),
            name=name,
            level=level,
            parent_id=above.unit_id,
            code=code,
        )

    @rule(meta=META, unit=SEL, name=names)
    def rename_unit(self, meta: Any, unit: int, name: str) -> None:
        self.run(h.rename_unit, meta, account_id=self.account_id, unit_id=pick(self.units(), unit).unit_id, name=name)

    @rule(meta=META, unit=SEL)
    def close_unit(self, meta: Any, unit: int) -> None:
        # The deepest units first, so closing usually succeeds.
        units = sorted(self.units(), key=lambda u: ["hq", "region", "country", "local"].index(u.level), reverse=True)
        self.run(h.close_unit, meta, account_id=self.account_id, unit_id=pick(units, unit % 3).unit_id)

    @rule(meta=META, member=names, unit=SEL, role=enum_values(TeamRole))
    def assign_team_member(self, meta: Any, member: str, unit: int, role: str) -> None:
        self.run(
            h.assign_team_member,
            meta,
            account_id=self.account_id,
            member=member,
            unit_id=pick(self.units(), unit).unit_id,
            role=role,
        )

    @rule(meta=META, which=SEL)
    def remove_team_member(self, meta: Any, which: int) -> None:
        assignment = pick(list(self.account.team.values()), which)
        if assignment is not None:
            self.run(
                h.remove_team_member,
                meta,
                account_id=self.account_id,
                member=assignment.member,
                unit_id=assignment.unit_id,
                role=assignment.role,
            )

    @rule(meta=META, now=rarely(20))
    def archive_account(self, meta: Any, now: bool) -> None:
        if now:  # rarely: an archived account refuses everything afterwards
            self.run(h.archive_account, meta, account_id=self.account_id)

    # --- the plans -----------------------------------------------------------------

    def plan(self, n: int) -> AccountPlan:
        return pick(self.of_type(AccountPlan), n)  # type: ignore[no-any-return]

    @rule(meta=META, period=FISCAL_PERIODS)
    def start_plan(self, meta: Any, period: str) -> None:
        # FY2027 exists from the start: the store itself refuses a second plan for it.
        self.run(h.start_plan, meta, account_id=self.account_id, fiscal_period=period)

    @rule(
        meta=META,
        plan=SEL,
        unit=SEL,
        title=names,
        description=free_texts,
        goal=targets(payable=True) | targets(),
        due=dates,
        link=st.none() | SEL,
    )
    def set_objective(
        self, meta: Any, plan: int, unit: int, title: str, description: str, goal: Target, due: date, link: int | None
    ) -> None:
        chosen = self.plan(plan)
        linked = None if link is None else pick(list(chosen.objectives), link)
        self.run(
            h.set_objective,
            meta,
            plan_id=chosen.id,
            objective_id=self.new_id(),
            unit_id=pick(self.units(), unit).unit_id,
            title=title,
            description=description,
            target=goal,
            due_date=due,
            linked_objective_id=linked,
        )

    @rule(meta=META, plan=SEL, objective=SEL, source=SEL, to=st.lists(SEL, min_size=1, max_size=3))
    def cascade_objective(self, meta: Any, plan: int, objective: int, source: int, to: list[int]) -> None:
        chosen = self.plan(plan)
        objective_id = pick(list(chosen.objectives), objective)
        if objective_id is None:
            return
        from_unit = pick(self.holders(chosen, objective_id), source)
        below = self.units_below(from_unit) or self.units()
        targets_ = tuple(pick(below, n).unit_id for n in to)
        self.run(
            h.cascade_objective,
            meta,
            plan_id=chosen.id,
            objective_id=objective_id,
            from_unit_id=from_unit,
            to_unit_ids=targets_,
        )

    @rule(
        meta=META,
        plan=SEL,
        directive=SEL,
        answer=enum_values(CascadeAnswer),
        rationale=st.none() | required_texts,
        local_title=st.none() | names,
        local_target=st.none() | targets(payable=True) | targets(),
    )
    def respond_to_cascade(
        self,
        meta: Any,
        plan: int,
        directive: int,
        answer: str,
        rationale: str | None,
        local_title: str | None,
        local_target: Target | None,
    ) -> None:
        chosen = self.plan(plan)
        unanswered = [d for d in chosen.directives.values() if d.answer is None]
        picked = pick(unanswered if unanswered and directive % 4 else list(chosen.directives.values()), directive)
        if picked is not None:
            self.run(
                h.respond_to_cascade,
                meta,
                plan_id=chosen.id,
                objective_id=picked.objective_id,
                unit_id=picked.to_unit_id,
                answer=answer,
                rationale=rationale,
                local_title=local_title,
                local_target=local_target,
            )

    @rule(meta=META, plan=SEL, objective=SEL, unit=SEL, title=names, owner=names, due=dates)
    def add_action(self, meta: Any, plan: int, objective: int, unit: int, title: str, owner: str, due: date) -> None:
        chosen = self.plan(plan)
        objective_id = pick(list(chosen.objectives), objective)
        if objective_id is not None:
            self.run(
                h.add_action,
                meta,
                plan_id=chosen.id,
                action_id=self.new_id(),
                objective_id=objective_id,
                unit_id=pick(self.holders(chosen, objective_id), unit),
                title=title,
                owner=owner,
                due_date=due,
            )

    @rule(meta=META, plan=SEL, action=SEL, status=enum_values(ActionStatus))
    def change_action_status(self, meta: Any, plan: int, action: int, status: str) -> None:
        chosen = self.plan(plan)
        action_id = pick(list(chosen.actions), action)
        if action_id is not None:
            self.run(h.change_action_status, meta, plan_id=chosen.id, action_id=action_id, status=status)

    @rule(meta=META, plan=SEL, objective=SEL, unit=SEL, percent=st.integers(-1, 101), comment=st.none() | free_texts)
    def report_progress(
        self, meta: Any, plan: int, objective: int, unit: int, percent: int, comment: str | None
    ) -> None:
        chosen = self.plan(plan)
        objective_id = pick(list(chosen.objectives), objective)
        if objective_id is not None:
            self.run(
                h.report_progress,
                meta,
                plan_id=chosen.id,
                objective_id=objective_id,
                unit_id=pick(self.holders(chosen, objective_id), unit),
                percent=percent,
                comment=comment,
            )

    @rule(meta=META, plan=SEL, kind=enum_values(SwotKind), text=required_texts, unit=st.none() | SEL)
    def add_swot_entry(self, meta: Any, plan: int, kind: str, text: str, unit: int | None) -> None:
        unit_id = None if unit is None else pick(self.units(), unit).unit_id
        self.run(
            h.add_swot_entry,
            meta,
            plan_id=self.plan(plan).id,
            entry_id=self.new_id(),
            kind=kind,
            text=text,
            unit_id=unit_id,
        )

    @rule(meta=META, plan=SEL, entry=SEL)
    def remove_swot_entry(self, meta: Any, plan: int, entry: int) -> None:
        chosen = self.plan(plan)
        entry_id = pick(list(chosen.swot), entry)
        if entry_id is not None:
            self.run(h.remove_swot_entry, meta, plan_id=chosen.id, entry_id=entry_id)

    @rule(
        meta=META,
        plan=SEL,
        offering=st.sampled_from(["MRO", "Training", "Zo\u00eb \U0001f680"]) | names,
        unit=SEL,
        status=enum_values(WhitespaceStatus),
    )
    def set_whitespace_cell(self, meta: Any, plan: int, offering: str, unit: int, status: str) -> None:
        self.run(
            h.set_whitespace_cell,
            meta,
            plan_id=self.plan(plan).id,
            offering=offering,
            unit_id=pick(self.units(), unit).unit_id,
            status=status,
        )

    @rule(
        meta=META,
        plan=SEL,
        held_on=dates,
        participants=st.lists(names, max_size=3),
        decisions=st.lists(required_texts, max_size=2),
        follow_ups=st.lists(required_texts, max_size=2),
    )
    def hold_business_review(
        self, meta: Any, plan: int, held_on: date, participants: list[str], decisions: list[str], follow_ups: list[str]
    ) -> None:
        self.run(
            h.hold_business_review,
            meta,
            plan_id=self.plan(plan).id,
            review_id=self.new_id(),
            held_on=held_on,
            participants=tuple(participants),
            decisions=tuple(decisions),
            follow_up_actions=tuple(follow_ups),
        )

    @rule(meta=META, plan=SEL, step=st.sampled_from([h.submit_plan, h.approve_plan, h.reopen_plan]))
    def move_plan(self, meta: Any, plan: int, step: Callable[..., CommandResult]) -> None:
        self.run(step, meta, plan_id=self.plan(plan).id)

    # --- the stakeholders ----------------------------------------------------------

    def person(self, n: int) -> Stakeholder | None:
        return pick(self.of_type(Stakeholder), n)  # type: ignore[no-any-return]

    @rule(meta=META, unit=SEL, title=names, personal=personal_data(), again=st.none() | SEL)
    def identify_stakeholder(self, meta: Any, unit: int, title: str, personal: PersonalData, again: int | None) -> None:
        # An id already taken must be refused (AlreadyExists), also the id of an erased subject.
        existing = None if again is None else self.person(again)
        self.run(
            h.identify_stakeholder,
            meta,
            stakeholder_id=existing.id if existing else self.new_id(),
            account_id=self.account_id,
            unit_id=pick(self.units(), unit).unit_id,
            title=title,
            personal=personal,
        )

    @rule(meta=META, who=SEL, legal_basis=required_texts, now=rarely(4))
    def erase_personal_data(self, meta: Any, who: int, legal_basis: str, now: bool) -> None:
        person = self.person(who)
        if (
            person is not None
            and now
            and self.run(h.erase_personal_data, meta, stakeholder_id=person.id, legal_basis=legal_basis)
        ):
            self.erased.add(person.id)  # the key is destroyed: their personal data now reads as erased
            self.touched.add(person.id)

    @rule(
        meta=META,
        who=SEL,
        change=st.one_of(
            st.tuples(st.just(h.correct_personal_data), st.just("personal"), personal_data()),
            st.tuples(st.just(h.change_stakeholder_title), st.just("title"), names),
            st.tuples(st.just(h.change_buying_role), st.just("role"), enum_values(BuyingRole)),
            st.tuples(st.just(h.rate_influence), st.just("influence"), st.integers(0, 6)),
            st.tuples(st.just(h.rate_sentiment), st.just("sentiment"), st.integers(-3, 3)),
            st.tuples(st.just(h.assign_relationship_owner), st.just("owner"), names),
        ),
    )
    def change_stakeholder(self, meta: Any, who: int, change: tuple[Callable[..., CommandResult], str, Any]) -> None:
        person = self.person(who)
        if person is not None:
            handler, field, value = change
            self.run(handler, meta, stakeholder_id=person.id, **{field: value})

    @rule(meta=META, who=SEL, manager=st.none() | SEL)
    def set_reports_to(self, meta: Any, who: int, manager: int | None) -> None:
        person = self.person(who)
        if person is not None:
            boss = None if manager is None else self.person(who + 1 + manager)  # usually someone else
            self.run(h.set_reports_to, meta, stakeholder_id=person.id, manager_id=boss.id if boss else None)

    @rule(
        meta=META,
        who=SEL,
        ago=st.integers(-5, 10**8),
        offset=st.integers(-14 * 60, 14 * 60),
        channel=enum_values(InteractionChannel),
        summary=required_texts,
    )
    def log_interaction(self, meta: Any, who: int, ago: int, offset: int, channel: str, summary: str) -> None:
        person = self.person(who)
        if person is not None:
            zone = timezone(timedelta(minutes=offset))
            occurred = (self.now - timedelta(seconds=ago)).astimezone(zone)  # may lie in the future: refused
            self.run(
                h.log_interaction,
                meta,
                stakeholder_id=person.id,
                interaction_id=self.new_id(),
                occurred_at=occurred,
                channel=channel,
                summary=summary,
            )

    @rule(meta=META, who=SEL, left_on=dates, now=rarely(4))
    def record_departure(self, meta: Any, who: int, left_on: date, now: bool) -> None:
        person = self.person(who)
        if person is not None and now:
            self.run(h.record_departure, meta, stakeholder_id=person.id, left_on=left_on)

    # --- the deals -----------------------------------------------------------------

    def deal(self, n: int) -> Deal | None:
        return pick(self.of_type(Deal), n)  # type: ignore[no-any-return]

    @rule(
        meta=META,
        unit=SEL,
        title=names,
        amount=deal_money,
        expected_close=dates,
        owner=names,
        stage=enum_values(DealStage),
        probability=st.none() | st.integers(0, 100),
        products=st.lists(st.sampled_from(["MRO", "Training"]) | names, max_size=3),
        plan=st.none() | SEL,
        links=st.lists(SEL, max_size=2),
    )
    def open_deal(
        self,
        meta: Any,
        unit: int,
        title: str,
        amount: Money,
        expected_close: date,
        owner: str,
        stage: str,
        probability: int | None,
        products: list[str],
        plan: int | None,
        links: list[int],
    ) -> None:
        chosen = None if plan is None else self.plan(plan)
        objectives = list(chosen.objectives) if chosen else []
        linked = tuple(pick(objectives, n) for n in links) if objectives else ()
        self.run(
            h.open_deal,
            meta,
            deal_id=self.new_id(),
            account_id=self.account_id,
            unit_id=pick(self.units(), unit).unit_id,
            title=title,
            amount=amount,
            expected_close=expected_close,
            owner=owner,
            stage=stage,
            probability=probability,
            products=tuple(products),
            plan_id=chosen.id if chosen else None,
            linked_objective_ids=linked,
        )

    @rule(meta=META, which=SEL, stage=enum_values(DealStage))
    def move_deal_stage(self, meta: Any, which: int, stage: str) -> None:
        deal = self.deal(which)
        if deal is not None:
            self.run(h.move_deal_stage, meta, deal_id=deal.id, to_stage=stage)

    @rule(meta=META, which=SEL, amount=non_negative_decimals, other_currency=currencies, same=st.integers(0, 5))
    def change_deal_amount(self, meta: Any, which: int, amount: Decimal, other_currency: str, same: int) -> None:
        deal = self.deal(which)
        if deal is not None:
            currency = deal.amount.currency if same else other_currency
            amount = amount_in(currency, amount, exact=same > 1)
            self.run(h.change_deal_amount, meta, deal_id=deal.id, amount=Money(amount, currency))

    @rule(
        meta=META,
        which=SEL,
        change=st.one_of(
            st.tuples(st.just(h.change_deal_close_date), st.just("expected_close"), dates),
            st.tuples(st.just(h.change_deal_probability), st.just("probability"), st.integers(-1, 101)),
            st.tuples(st.just(h.lose_deal), st.just("loss_reason"), required_texts),
            st.tuples(st.just(h.assess_qualification), st.just("element"), enum_values(MeddpiccElement)),
        ),
        status=enum_values(QualificationStatus),
        text=st.none() | free_texts,
    )
    def change_deal(
        self,
        meta: Any,
        which: int,
        change: tuple[Callable[..., CommandResult], str, Any],
        status: str,
        text: str | None,
    ) -> None:
        deal = self.deal(which)
        if deal is None:
            return
        handler, field, value = change
        extra: dict[str, Any] = {}
        if handler is h.lose_deal:
            extra = {"competitor": text}
        elif handler is h.assess_qualification:
            extra = {"status": status, "evidence": text}
        self.run(handler, meta, deal_id=deal.id, **{field: value}, **extra)

    @rule(meta=META, which=SEL, amount=non_negative_decimals, exact=st.integers(0, 3))
    def win_deal(self, meta: Any, which: int, amount: Decimal, exact: int) -> None:
        deal = self.deal(which)
        if deal is not None:
            currency = deal.amount.currency
            final = Money(amount_in(currency, amount, exact=exact > 0), currency)
            self.run(h.win_deal, meta, deal_id=deal.id, final_amount=final)

    @rule(meta=META, which=SEL)
    def reopen_deal(self, meta: Any, which: int) -> None:
        deal = self.deal(which)
        if deal is not None:
            self.run(h.reopen_deal, meta, deal_id=deal.id)

    @rule(
        meta=META,
        which=SEL,
        who=SEL,
        role=enum_values(BuyingInfluenceRole),
        degree=enum_values(InfluenceDegree),
        note=st.none() | free_texts,
    )
    def attach_buying_influence(
        self, meta: Any, which: int, who: int, role: str, degree: str, note: str | None
    ) -> None:
        deal, person = self.deal(which), self.person(who)
        if deal is not None and person is not None:
            self.run(
                h.attach_buying_influence,
                meta,
                deal_id=deal.id,
                stakeholder_id=person.id,
                role=role,
                degree=degree,
                note=note,
            )

    @rule(meta=META, which=SEL, influence=SEL)
    def detach_buying_influence(self, meta: Any, which: int, influence: int) -> None:
        deal = self.deal(which)
        attached = pick(list(deal.influences.values()), influence) if deal else None
        if deal is not None and attached is not None:
            self.run(
                h.detach_buying_influence,
                meta,
                deal_id=deal.id,
                stakeholder_id=attached.stakeholder_id,
                role=attached.role,
            )

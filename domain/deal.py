"""Deal: an opportunity in the account's pipeline, its stage, value and buying
influences, and how well it is qualified (MEDDPICC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Self
from uuid import UUID

from domain.account import UnitTree
from domain.base import GamAggregate, GamEvent
from domain.errors import (
    CloseDateInPast,
    CurrencyMismatch,
    DealClosed,
    DealNotClosed,
    InvalidStageTransition,
    InvalidValue,
    NotFound,
    ReasonRequired,
    SubjectErased,
    UnitOfAnotherAccount,
)
from domain.metadata import EventMetadata
from domain.values import (
    MAX_TEXT,
    PERSON_ELEMENTS,
    WINNABLE_STAGES,
    BuyingInfluenceRole,
    DealStage,
    DealStatus,
    InfluenceDegree,
    MeddpiccElement,
    Money,
    QualificationStatus,
    ensure_ids,
    optional_text,
    require_date,
    require_enum,
    require_int_range,
    require_text,
)


@dataclass(frozen=True)
class BuyingInfluence:
    """A stakeholder's part in this deal's decision (Strategic Selling)."""

    stakeholder_id: UUID
    role: str
    degree: str
    note: str | None


@dataclass(frozen=True)
class Qualification:
    """One MEDDPICC element: how sure we are, and on what evidence. For the economic
    buyer and the champion, the evidence may be about a named stakeholder
    (``stakeholder_id``): it is then theirs, sealed under their key."""

    element: str
    status: str
    evidence: str | None
    stakeholder_id: UUID | None = None


class Deal(GamAggregate):
    """An opportunity with the account, owned by one unit."""

    entity_type = "deal"

    if TYPE_CHECKING:
        account_id: UUID
        unit_id: UUID
        title: str
        amount: Money
        stage: str
        expected_close: date
        probability: int
        owner: str
        products: tuple[str, ...]
        linked_objective_ids: tuple[UUID, ...]
        status: str
        final_amount: Money | None
        loss_reason: str | None
        competitor: str | None
        influences: dict[tuple[UUID, str], BuyingInfluence]
        qualification: dict[str, Qualification]

    class Opened(GamAggregate.Created, GamEvent):
        """A new opportunity was opened at a unit of the account."""

        account_id: UUID
        unit_id: UUID
        title: str
        amount: Money
        stage: str
        expected_close: date
        probability: int
        owner: str
        products: tuple[str, ...]
        linked_objective_ids: tuple[UUID, ...]

        def apply(self, deal: Deal) -> None:
            deal.account_id = self.account_id
            deal.unit_id = self.unit_id
            deal.title = self.title
            deal.amount = self.amount
            deal.stage = self.stage
            deal.expected_close = self.expected_close
            deal.probability = self.probability
            deal.owner = self.owner
            deal.products = self.products
            deal.linked_objective_ids = self.linked_objective_ids
            deal.status = DealStatus.OPEN.value
            deal.final_amount = None
            deal.loss_reason = None
            deal.competitor = None
            deal.influences = {}
            deal.qualification = {}

    class StageAdvanced(GamEvent):
        """The deal moved one stage forward in the pipeline."""

        from_stage: str
        to_stage: str
        probability: int

        def apply(self, deal: Deal) -> None:
            deal.stage = self.to_stage
            deal.probability = self.probability

    class StageMovedBack(GamEvent):
        """The deal slipped back to an earlier stage."""

        from_stage: str
        to_stage: str
        probability: int

        def apply(self, deal: Deal) -> None:
            deal.stage = self.to_stage
            deal.probability = self.probability

    class AmountChanged(GamEvent):
        """The expected value of the deal changed."""

        from_amount: Money
        to_amount: Money

        def apply(self, deal: Deal) -> None:
            deal.amount = self.to_amount

    class CloseDateChanged(GamEvent):
        """The date the deal is expected to close moved."""

        from_date: date
        to_date: date

        def apply(self, deal: Deal) -> None:
            deal.expected_close = self.to_date

    class ProbabilityChanged(GamEvent):
        """The owner's estimate of the chance to win changed (percent)."""

        from_probability: int
        to_probability: int

        def apply(self, deal: Deal) -> None:
            deal.probability = self.to_probability

    class Won(GamEvent):
        """The customer signed; ``final_amount`` is what was booked."""

        final_amount: Money

        def apply(self, deal: Deal) -> None:
            deal.status = DealStatus.WON.value
            deal.final_amount = self.final_amount
            deal.probability = 100

    class Lost(GamEvent):
        """The deal was lost (or abandoned), with the reason and the winner if known."""

        loss_reason: str
        competitor: str | None

        def apply(self, deal: Deal) -> None:
            deal.status = DealStatus.LOST.value
            deal.loss_reason = self.loss_reason
            deal.competitor = self.competitor
            deal.probability = 0

    class Reopened(GamEvent):
        """A closed deal was opened again, at the stage it had when it closed."""

        from_status: str
        probability: int

        def apply(self, deal: Deal) -> None:
            deal.status = DealStatus.OPEN.value
            deal.final_amount = None
            deal.loss_reason = None
            deal.competitor = None
            deal.probability = self.probability

    class BuyingInfluenceAttached(GamEvent):
        """A stakeholder was recognised as a buying influence on this deal
        (economic, user or technical buyer, or coach), with their degree of influence."""

        stakeholder_id: UUID
        role: str
        degree: str
        note: str | None

        def apply(self, deal: Deal) -> None:
            deal.influences[(self.stakeholder_id, self.role)] = BuyingInfluence(
                self.stakeholder_id, self.role, self.degree, self.note
            )

    class BuyingInfluenceDetached(GamEvent):
        """A stakeholder no longer plays that part in this deal."""

        stakeholder_id: UUID
        role: str

        def apply(self, deal: Deal) -> None:
            del deal.influences[(self.stakeholder_id, self.role)]

    class QualificationAssessed(GamEvent):
        """One MEDDPICC element of the deal was assessed, with its evidence; for the
        economic buyer and the champion, perhaps about a named stakeholder.

        Version 2 added ``stakeholder_id``: evidence assessed before named nobody."""

        class_version = 2

        element: str
        status: str
        evidence: str | None
        stakeholder_id: UUID | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["stakeholder_id"] = None

        def apply(self, deal: Deal) -> None:
            deal.qualification[self.element] = Qualification(
                self.element, self.status, self.evidence, self.stakeholder_id
            )

    # --- commands -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        deal_id: UUID,
        unit_id: UUID,
        title: str,
        amount: Money,
        expected_close: date,
        owner: str,
        tree: UnitTree,
        meta: EventMetadata,
        stage: str = DealStage.PROSPECTING.value,
        probability: int | None = None,
        products: tuple[str, ...] = (),
        linked_objective_ids: tuple[UUID, ...] = (),
        known_objective_ids: frozenset[UUID] = frozenset(),
    ) -> Self:
        """``known_objective_ids`` are the account's plan objectives a deal may link to.

        The expected close date is not before the day (UTC) of ``meta.at``, the moment
        the deal is opened. A history imported from another system carries each
        command's original moment (``gam import``'s per-line ``meta.at``), so a deal
        opened back then with a close date since passed is accepted as it was; one
        opened now cannot be expected to close yesterday."""
        tree.require_open(unit_id)
        if not isinstance(amount, Money):
            raise InvalidValue("amount", "must be money")
        amount.require_non_negative("amount").require_minor_units("amount")
        close = require_date("expected_close", expected_close)
        opened_on = meta.at.date()
        if close < opened_on:
            raise CloseDateInPast("expected_close", f"{close} is before the deal is opened ({opened_on})")
        start = require_enum("stage", DealStage, stage)
        linked = ensure_ids("linked_objective_ids", tuple(dict.fromkeys(linked_objective_ids)))
        for index, objective_id in enumerate(linked):
            if objective_id not in known_objective_ids:
                raise InvalidValue(f"linked_objective_ids[{index}]", f"unknown objective {objective_id}")
        return cls._create_with(
            cls.Opened,
            deal_id,
            meta,
            account_id=tree.account_id,
            unit_id=unit_id,
            title=require_text("title", title),
            amount=amount,
            stage=start.value,
            expected_close=close,
            probability=start.default_probability
            if probability is None
            else require_int_range("probability", probability, 0, 100),
            owner=require_text("owner", owner),
            products=tuple(require_text(f"products[{i}]", p) for i, p in enumerate(dict.fromkeys(products))),
            linked_objective_ids=linked,
        )

    def move_stage(self, *, to_stage: str, meta: EventMetadata) -> None:
        """Forward one step at a time (each stage is a gate); back to any earlier stage,
        with the reason in ``meta.reason`` (a slipping deal is what a forecast review asks about)."""
        self._require_open()
        target = require_enum("to_stage", DealStage, to_stage)
        current = DealStage(self.stage)
        fields = {"from_stage": current.value, "to_stage": target.value, "probability": target.default_probability}
        if target.position == current.position + 1:
            self._record(self.StageAdvanced, meta, **fields)
        elif target.position < current.position:
            if meta.reason is None or not meta.reason.strip():
                raise ReasonRequired("reason", f"moving back from {current.value} to {target.value} needs a reason")
            self._record(self.StageMovedBack, meta, **fields)
        else:
            raise InvalidStageTransition(f"a deal cannot go from {current.value} to {target.value}")

    def change_amount(self, *, amount: Money, meta: EventMetadata) -> None:
        self._require_open()
        self._require_same_currency("amount", amount)
        amount.require_non_negative("amount").require_minor_units("amount")
        self._record(self.AmountChanged, meta, from_amount=self.amount, to_amount=amount)

    def change_close_date(self, *, expected_close: date, meta: EventMetadata) -> None:
        """Not to a day before the UTC day of ``meta.at``, as for a new deal: a deal
        expected to have closed already is one nobody will forecast honestly (a history
        imported with its original moments is judged as of those moments)."""
        self._require_open()
        new = require_date("expected_close", expected_close)
        today = meta.at.date()
        if new < today:
            raise CloseDateInPast("expected_close", f"{new} is before today ({today}, UTC)")
        self._record(self.CloseDateChanged, meta, from_date=self.expected_close, to_date=new)

    def change_probability(self, *, probability: int, meta: EventMetadata) -> None:
        self._require_open()
        new = require_int_range("probability", probability, 0, 100)
        self._record(self.ProbabilityChanged, meta, from_probability=self.probability, to_probability=new)

    def win(self, *, final_amount: Money, meta: EventMetadata) -> None:
        self._require_open()
        if DealStage(self.stage) not in WINNABLE_STAGES:
            raise InvalidStageTransition(f"a deal in {self.stage} cannot be won before a proposal")
        self._require_same_currency("final_amount", final_amount)
        final_amount.require_non_negative("final_amount").require_minor_units("final_amount")
        self._record(self.Won, meta, final_amount=final_amount)

    def lose(self, *, loss_reason: str, meta: EventMetadata, competitor: str | None = None) -> None:
        self._require_open()
        self._record(
            self.Lost,
            meta,
            loss_reason=require_text("loss_reason", loss_reason, max_len=MAX_TEXT),
            competitor=optional_text("competitor", competitor),
        )

    def reopen(self, *, meta: EventMetadata) -> None:
        if self.status == DealStatus.OPEN:
            raise DealNotClosed(f"deal {self.id} is open")
        self._record(
            self.Reopened, meta, from_status=self.status, probability=DealStage(self.stage).default_probability
        )

    def attach_buying_influence(
        self,
        *,
        stakeholder_id: UUID,
        stakeholder_account_id: UUID,
        role: str,
        degree: str,
        meta: EventMetadata,
        note: str | None = None,
        stakeholder_erased: bool = False,
    ) -> None:
        """The note is the stakeholder's (sealed under their key): none for an erased person."""
        self._require_open()
        if stakeholder_account_id != self.account_id:
            raise UnitOfAnotherAccount("a buying influence must be a stakeholder of the deal's account")
        note = optional_text("note", note)
        if note is not None and stakeholder_erased:
            raise SubjectErased(f"the personal data of stakeholder {stakeholder_id} was erased; no note can name them")
        self._record(
            self.BuyingInfluenceAttached,
            meta,
            stakeholder_id=stakeholder_id,
            role=require_enum("role", BuyingInfluenceRole, role).value,
            degree=require_enum("degree", InfluenceDegree, degree).value,
            note=note,
        )

    def detach_buying_influence(self, *, stakeholder_id: UUID, role: str, meta: EventMetadata) -> None:
        self._require_open()
        if (stakeholder_id, role) not in self.influences:
            raise NotFound("buying influence", f"{stakeholder_id} as {role}")
        self._record(self.BuyingInfluenceDetached, meta, stakeholder_id=stakeholder_id, role=role)

    def assess_qualification(
        self,
        *,
        element: str,
        status: str,
        meta: EventMetadata,
        evidence: str | None = None,
        stakeholder_id: UUID | None = None,
        stakeholder_account_id: UUID | None = None,
        stakeholder_erased: bool = False,
    ) -> None:
        """``stakeholder_id`` names the person the evidence is about, for the economic
        buyer and the champion only (the other elements are about the deal): a
        stakeholder of the deal's account, not erased if there is evidence to keep."""
        self._require_open()
        kind = require_enum("element", MeddpiccElement, element)
        text = optional_text("evidence", evidence)
        if stakeholder_id is not None:
            if kind not in PERSON_ELEMENTS:
                raise InvalidValue("stakeholder_id", f"{kind.value} is not about a person")
            if stakeholder_account_id != self.account_id:
                raise UnitOfAnotherAccount("the evidence must name a stakeholder of the deal's account")
            if text is not None and stakeholder_erased:
                raise SubjectErased(
                    f"the personal data of stakeholder {stakeholder_id} was erased; evidence cannot name them"
                )
        self._record(
            self.QualificationAssessed,
            meta,
            element=kind.value,
            status=require_enum("status", QualificationStatus, status).value,
            evidence=text,
            stakeholder_id=stakeholder_id,
        )

    def _require_open(self) -> None:
        if self.status != DealStatus.OPEN:
            raise DealClosed(f"deal {self.id} is {self.status}; reopen it first")

    def _require_same_currency(self, field: str, amount: Money) -> None:
        if not isinstance(amount, Money):
            raise InvalidValue(field, "must be money")
        if amount.currency != self.amount.currency:
            raise CurrencyMismatch(f"{field}: the deal is in {self.amount.currency}, not {amount.currency}")

"""Stakeholder: a person at the customer, their place in the buying centre and
the org chart, and our relationship with them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Self
from uuid import UUID

from domain.account import UnitTree
from domain.base import GamAggregate, GamEvent
from domain.errors import (
    AlreadyExists,
    InvalidValue,
    ReportsToCycle,
    StakeholderHasLeft,
    SubjectErased,
    UnitOfAnotherAccount,
)
from domain.metadata import EventMetadata
from domain.values import (
    ERASED,
    MAX_TEXT,
    BuyingRole,
    InteractionChannel,
    PersonalData,
    require_aware,
    require_date,
    require_enum,
    require_int_range,
    require_text,
)

INFLUENCE_RANGE = (1, 5)
SENTIMENT_RANGE = (-2, 2)


@dataclass(frozen=True)
class Interaction:
    interaction_id: UUID
    occurred_at: datetime
    channel: str
    summary: str
    logged_by: str


class Stakeholder(GamAggregate):
    """A person at the customer that the account team maps and works with."""

    entity_type = "stakeholder"

    if TYPE_CHECKING:
        account_id: UUID
        unit_id: UUID
        title: str
        personal: PersonalData
        buying_role: str | None
        influence: int | None
        sentiment: int | None
        relationship_owner: str | None
        reports_to: UUID | None
        interactions: list[Interaction]
        left_on: date | None
        erased: bool

    class Identified(GamAggregate.Created, GamEvent):
        """A person at a unit of the customer was identified as a stakeholder.
        ``personal`` holds the personal data, apart from the business facts."""

        account_id: UUID
        unit_id: UUID
        title: str
        personal: PersonalData

        def apply(self, person: Stakeholder) -> None:
            person.account_id = self.account_id
            person.unit_id = self.unit_id
            person.title = self.title
            person.personal = self.personal
            person.buying_role = None
            person.influence = None
            person.sentiment = None
            person.relationship_owner = None
            person.reports_to = None
            person.interactions = []
            person.left_on = None
            person.erased = False

    class PersonalDataCorrected(GamEvent):
        """The person's name or contact details were corrected (right to rectification)."""

        personal: PersonalData

        def apply(self, person: Stakeholder) -> None:
            person.personal = self.personal

    class TitleChanged(GamEvent):
        """The person took a new job title at the customer."""

        from_title: str
        to_title: str

        def apply(self, person: Stakeholder) -> None:
            person.title = self.to_title

    class BuyingRoleChanged(GamEvent):
        """Our view of the person's role in the buying centre changed."""

        from_role: str | None
        to_role: str

        def apply(self, person: Stakeholder) -> None:
            person.buying_role = self.to_role

    class InfluenceRated(GamEvent):
        """Our estimate of the person's influence (1 low … 5 high) changed."""

        from_influence: int | None
        to_influence: int

        def apply(self, person: Stakeholder) -> None:
            person.influence = self.to_influence

    class SentimentRated(GamEvent):
        """Our reading of the person's sentiment towards us (-2 hostile … +2 advocate) changed."""

        from_sentiment: int | None
        to_sentiment: int

        def apply(self, person: Stakeholder) -> None:
            person.sentiment = self.to_sentiment

    class RelationshipOwnerAssigned(GamEvent):
        """A member of our team became responsible for the relationship with the person."""

        from_owner: str | None
        to_owner: str

        def apply(self, person: Stakeholder) -> None:
            person.relationship_owner = self.to_owner

    class ReportsToSet(GamEvent):
        """The person's manager in the customer's org chart was recorded (or cleared)."""

        from_manager_id: UUID | None
        to_manager_id: UUID | None

        def apply(self, person: Stakeholder) -> None:
            person.reports_to = self.to_manager_id

    class InteractionLogged(GamEvent):
        """Someone on our team met, called or wrote to the person. ``summary`` is
        free text about a person and is treated as personal data."""

        interaction_id: UUID
        occurred_at: datetime
        channel: str
        summary: str

        def apply(self, person: Stakeholder) -> None:
            person.interactions.append(
                Interaction(self.interaction_id, self.occurred_at, self.channel, self.summary, self.actor)
            )

    class Left(GamEvent):
        """The person left the customer; they stay in the history of plans and deals."""

        left_on: date

        def apply(self, person: Stakeholder) -> None:
            person.left_on = self.left_on

    class PersonalDataErased(GamEvent):
        """The person's personal data was erased (right to erasure): their key was
        destroyed, so their name, contact details and interaction notes can no
        longer be read anywhere; every business fact about them stays."""

        legal_basis: str

        def apply(self, person: Stakeholder) -> None:
            person.personal = PersonalData(ERASED)
            person.interactions = [replace(i, summary=ERASED) for i in person.interactions]
            person.erased = True

    # --- commands -------------------------------------------------------------------

    @classmethod
    def identify(
        cls,
        *,
        stakeholder_id: UUID,
        unit_id: UUID,
        title: str,
        personal: PersonalData,
        tree: UnitTree,
        meta: EventMetadata,
    ) -> Self:
        tree.require_open(unit_id)
        if not isinstance(personal, PersonalData):
            raise InvalidValue("personal", "must be personal data")
        return cls._create_with(
            cls.Identified,
            stakeholder_id,
            meta,
            account_id=tree.account_id,
            unit_id=unit_id,
            title=require_text("title", title),
            personal=personal,
        )

    def correct_personal_data(self, *, personal: PersonalData, meta: EventMetadata) -> None:
        self._require_present()
        self._require_not_erased()
        if not isinstance(personal, PersonalData):
            raise InvalidValue("personal", "must be personal data")
        self._record(self.PersonalDataCorrected, meta, personal=personal)

    def change_title(self, *, title: str, meta: EventMetadata) -> None:
        self._require_present()
        self._record(self.TitleChanged, meta, from_title=self.title, to_title=require_text("title", title))

    def change_buying_role(self, *, role: str, meta: EventMetadata) -> None:
        self._require_present()
        new = require_enum("role", BuyingRole, role).value
        self._record(self.BuyingRoleChanged, meta, from_role=self.buying_role, to_role=new)

    def rate_influence(self, *, influence: int, meta: EventMetadata) -> None:
        self._require_present()
        value = require_int_range("influence", influence, *INFLUENCE_RANGE)
        self._record(self.InfluenceRated, meta, from_influence=self.influence, to_influence=value)

    def rate_sentiment(self, *, sentiment: int, meta: EventMetadata) -> None:
        self._require_present()
        value = require_int_range("sentiment", sentiment, *SENTIMENT_RANGE)
        self._record(self.SentimentRated, meta, from_sentiment=self.sentiment, to_sentiment=value)

    def assign_relationship_owner(self, *, owner: str, meta: EventMetadata) -> None:
        self._require_present()
        self._record(
            self.RelationshipOwnerAssigned,
            meta,
            from_owner=self.relationship_owner,
            to_owner=require_text("owner", owner),
        )

    def set_reports_to(
        self,
        *,
        manager_id: UUID | None,
        manager_chain: tuple[UUID, ...],
        manager_account_id: UUID | None,
        meta: EventMetadata,
    ) -> None:
        """``manager_chain`` is the proposed manager followed by everyone above them
        (as the org chart stands); the person must not appear in it."""
        self._require_present()
        if manager_id is not None:
            if manager_account_id != self.account_id:
                raise UnitOfAnotherAccount("a stakeholder reports to someone at the same customer")
            if manager_id == self.id or self.id in manager_chain:
                raise ReportsToCycle(f"stakeholder {self.id} would end up reporting to themselves")
        self._record(self.ReportsToSet, meta, from_manager_id=self.reports_to, to_manager_id=manager_id)

    def log_interaction(
        self, *, interaction_id: UUID, occurred_at: datetime, channel: str, summary: str, meta: EventMetadata
    ) -> None:
        self._require_present()
        self._require_not_erased()
        if any(i.interaction_id == interaction_id for i in self.interactions):
            raise AlreadyExists("interaction", interaction_id)
        occurred_at = require_aware("occurred_at", occurred_at).astimezone(UTC)
        if occurred_at > meta.at:
            raise InvalidValue("occurred_at", "an interaction cannot be logged before it happened")
        self._record(
            self.InteractionLogged,
            meta,
            interaction_id=interaction_id,
            occurred_at=occurred_at,
            channel=require_enum("channel", InteractionChannel, channel).value,
            summary=require_text("summary", summary, max_len=MAX_TEXT),
        )

    def record_departure(self, *, left_on: date, meta: EventMetadata) -> None:
        self._require_present()
        self._record(self.Left, meta, left_on=require_date("left_on", left_on))

    def erase_personal_data(self, *, legal_basis: str, meta: EventMetadata) -> None:
        """Erasure is allowed for leavers too: the right to erasure does not end with the job."""
        if self.erased:
            raise SubjectErased(f"the personal data of stakeholder {self.id} is already erased")
        basis = require_text("legal_basis", legal_basis, max_len=MAX_TEXT)
        self._record(self.PersonalDataErased, meta, legal_basis=basis)

    def _require_not_erased(self) -> None:
        if self.erased:
            raise SubjectErased(f"the personal data of stakeholder {self.id} was erased")

    def _require_present(self) -> None:
        if self.left_on is not None:
            raise StakeholderHasLeft(f"stakeholder {self.id} left the customer on {self.left_on}")

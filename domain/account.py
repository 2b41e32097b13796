"""GlobalAccount: the customer, its unit tree (HQ → region → country → local)
and our account team on each unit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Self
from uuid import UUID

from domain.base import GamAggregate, GamEvent
from domain.errors import (
    AccountArchived,
    AlreadyExists,
    InvalidUnitHierarchy,
    InvalidValue,
    NotFound,
    UnitClosed,
    UnitHasOpenChildren,
)
from domain.metadata import EventMetadata
from domain.values import (
    AccountTier,
    GovernanceModel,
    TeamRole,
    UnitLevel,
    require_country,
    require_currency,
    require_enum,
    require_text,
)


@dataclass(frozen=True)
class Unit:
    """One organisational unit of the customer."""

    unit_id: UUID
    name: str
    level: str
    parent_id: UUID | None
    code: str
    closed: bool = False


@dataclass(frozen=True)
class TeamAssignment:
    """A member of our account team working on a unit in a role."""

    member: str
    unit_id: UUID
    role: str


@dataclass(frozen=True)
class UnitTree:
    """A read-only view of an account's units, handed to other aggregates (plan,
    deal, stakeholder) so they can check unit rules without holding the account."""

    account_id: UUID
    units: tuple[Unit, ...]

    def get(self, unit_id: UUID, field: str = "unit_id") -> Unit:
        for unit in self.units:
            if unit.unit_id == unit_id:
                return unit
        raise NotFound("unit", unit_id) if field == "unit_id" else InvalidValue(field, f"unknown unit {unit_id}")

    def require_open(self, unit_id: UUID, field: str = "unit_id") -> Unit:
        unit = self.get(unit_id, field)
        if unit.closed:
            raise UnitClosed(f"{field}: unit {unit.name} ({unit_id}) is closed")
        return unit

    def ancestors(self, unit_id: UUID) -> list[UUID]:
        """Unit ids from the parent up to HQ."""
        chain: list[UUID] = []
        parent = self.get(unit_id).parent_id
        while parent is not None:
            chain.append(parent)
            parent = self.get(parent).parent_id
        return chain

    def is_below(self, unit_id: UUID, ancestor_id: UUID) -> bool:
        return ancestor_id in self.ancestors(unit_id)

    def hq(self) -> Unit:
        return next(u for u in self.units if u.parent_id is None)


class GlobalAccount(GamAggregate):
    """A multinational customer run as one global account."""

    entity_type = "account"

    if TYPE_CHECKING:
        name: str
        industry: str
        hq_country: str
        reporting_currency: str
        tier: str
        governance_model: str
        units: dict[UUID, Unit]
        team: dict[tuple[str, UUID, str], TeamAssignment]
        archived: bool

    class Created(GamAggregate.Created, GamEvent):
        """A customer was taken on as a global account, with its HQ unit.

        Version 2 added ``governance_model``; version 1 accounts were all run the
        coordinated way, which is what the upcast assumes. Version 3 added
        ``lead_gam``: whoever took the account on leads its team from its first
        event; accounts taken on before have no lead GAM but the team they recorded."""

        class_version = 3

        name: str
        industry: str
        hq_country: str
        reporting_currency: str
        tier: str
        governance_model: str
        hq_unit_id: UUID
        hq_unit_name: str
        lead_gam: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["governance_model"] = GovernanceModel.COORDINATED.value

        @staticmethod
        def upcast_v2_v3(state: dict[str, object]) -> None:
            state["lead_gam"] = None

        def apply(self, account: GlobalAccount) -> None:
            account.name = self.name
            account.industry = self.industry
            account.hq_country = self.hq_country
            account.reporting_currency = self.reporting_currency
            account.tier = self.tier
            account.governance_model = self.governance_model
            account.units = {
                self.hq_unit_id: Unit(self.hq_unit_id, self.hq_unit_name, UnitLevel.HQ.value, None, self.hq_country)
            }
            account.team = {}
            if self.lead_gam is not None:
                lead = TeamAssignment(self.lead_gam, self.hq_unit_id, TeamRole.LEAD_GAM.value)
                account.team[(lead.member, lead.unit_id, lead.role)] = lead
            account.archived = False

    class UnitAdded(GamEvent):
        """A region, country or local unit of the customer was added under its parent."""

        unit_id: UUID
        name: str
        level: str
        parent_id: UUID
        code: str

        def apply(self, account: GlobalAccount) -> None:
            account.units[self.unit_id] = Unit(self.unit_id, self.name, self.level, self.parent_id, self.code)

    class UnitRenamed(GamEvent):
        """A unit of the customer got a new name (a reorganisation or rebranding)."""

        unit_id: UUID
        name: str

        def apply(self, account: GlobalAccount) -> None:
            account.units[self.unit_id] = replace(account.units[self.unit_id], name=self.name)

    class UnitClosed(GamEvent):
        """A unit of the customer was closed; its history stays, nothing new lands on it."""

        unit_id: UUID

        def apply(self, account: GlobalAccount) -> None:
            account.units[self.unit_id] = replace(account.units[self.unit_id], closed=True)

    class TeamMemberAssigned(GamEvent):
        """One of our people was put on a unit of the account in a role."""

        member: str
        unit_id: UUID
        role: str

        def apply(self, account: GlobalAccount) -> None:
            key = (self.member, self.unit_id, self.role)
            account.team[key] = TeamAssignment(self.member, self.unit_id, self.role)

    class TeamMemberRemoved(GamEvent):
        """One of our people no longer works on a unit in that role."""

        member: str
        unit_id: UUID
        role: str

        def apply(self, account: GlobalAccount) -> None:
            del account.team[(self.member, self.unit_id, self.role)]

    class Archived(GamEvent):
        """The account is no longer run as a global account; it is kept read-only."""

        def apply(self, account: GlobalAccount) -> None:
            account.archived = True

    # --- commands -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        account_id: UUID,
        hq_unit_id: UUID,
        name: str,
        industry: str,
        hq_country: str,
        reporting_currency: str,
        tier: str,
        governance_model: str,
        meta: EventMetadata,
        hq_unit_name: str = "Headquarters",
    ) -> Self:
        """The one who takes the account on becomes its lead GAM in the same event:
        an account is never without someone who may change it."""
        return cls._create_with(
            cls.Created,
            account_id,
            meta,
            name=require_text("name", name),
            industry=require_text("industry", industry),
            hq_country=require_country("hq_country", hq_country),
            reporting_currency=require_currency("reporting_currency", reporting_currency),
            tier=require_enum("tier", AccountTier, tier).value,
            governance_model=require_enum("governance_model", GovernanceModel, governance_model).value,
            hq_unit_id=hq_unit_id,
            hq_unit_name=require_text("hq_unit_name", hq_unit_name),
            lead_gam=meta.actor,
        )

    def add_unit(
        self, *, unit_id: UUID, name: str, level: str, parent_id: UUID, code: str, meta: EventMetadata
    ) -> None:
        self._require_active()
        if unit_id in self.units:
            raise AlreadyExists("unit", unit_id)
        unit_level = require_enum("level", UnitLevel, level)
        parent = self.tree().require_open(parent_id, "parent_id")
        if UnitLevel(parent.level).depth + 1 != unit_level.depth:
            raise InvalidUnitHierarchy(f"a {unit_level.value} unit cannot sit directly under a {parent.level} unit")
        self._record(
            self.UnitAdded,
            meta,
            unit_id=unit_id,
            name=require_text("name", name),
            level=unit_level.value,
            parent_id=parent_id,
            code=self._unit_code(unit_level, code, parent),
        )

    @staticmethod
    def _unit_code(level: UnitLevel, code: str, parent: Unit) -> str:
        """Regions carry a business region code (EMEA, APAC, …); countries an ISO
        3166-1 code; local units their country's code."""
        if level is UnitLevel.REGION:
            text = require_text("code", code, max_len=12).upper()
            if not text.replace("-", "").isalnum():
                raise InvalidValue("code", "a region code is letters and digits")
            return text
        country = require_country("code", code)
        if level is UnitLevel.LOCAL and country != parent.code:
            raise InvalidValue("code", f"a local unit lies in its country ({parent.code}), not {country}")
        return country

    def rename_unit(self, *, unit_id: UUID, name: str, meta: EventMetadata) -> None:
        self._require_active()
        self.tree().require_open(unit_id)
        self._record(self.UnitRenamed, meta, unit_id=unit_id, name=require_text("name", name))

    def close_unit(self, *, unit_id: UUID, meta: EventMetadata) -> None:
        self._require_active()
        unit = self.tree().require_open(unit_id)
        if unit.parent_id is None:
            raise InvalidUnitHierarchy("the HQ unit cannot be closed; archive the account instead")
        if any(u.parent_id == unit_id and not u.closed for u in self.units.values()):
            raise UnitHasOpenChildren(f"unit {unit.name} still has open units below it")
        self._record(self.UnitClosed, meta, unit_id=unit_id)

    def assign_team_member(self, *, member: str, unit_id: UUID, role: str, meta: EventMetadata) -> None:
        self._require_active()
        self.tree().require_open(unit_id)
        team_role = require_enum("role", TeamRole, role)
        member = require_text("member", member)
        if (member, unit_id, team_role.value) in self.team:
            raise AlreadyExists("team assignment", f"{member} as {team_role.value} on {unit_id}")
        self._record(self.TeamMemberAssigned, meta, member=member, unit_id=unit_id, role=team_role.value)

    def remove_team_member(self, *, member: str, unit_id: UUID, role: str, meta: EventMetadata) -> None:
        self._require_active()
        if (member, unit_id, role) not in self.team:
            raise NotFound("team assignment", f"{member} as {role} on {unit_id}")
        self._record(self.TeamMemberRemoved, meta, member=member, unit_id=unit_id, role=role)

    def archive(self, *, meta: EventMetadata) -> None:
        self._require_active()
        self._record(self.Archived, meta)

    # --- queries --------------------------------------------------------------------

    def tree(self) -> UnitTree:
        return UnitTree(self.id, tuple(self.units.values()))

    def require_open_unit(self, unit_id: UUID, field: str = "unit_id") -> Unit:
        """For other aggregates' commands: the account is active and the unit open."""
        self._require_active()
        return self.tree().require_open(unit_id, field)

    def _require_active(self) -> None:
        if self.archived:
            raise AccountArchived(f"account {self.name} ({self.id}) is archived")

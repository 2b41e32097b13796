"""What a person may do on an account follows from their place in its account team,
as in a CRM's account teams: rights are not granted to people directly but come
from team assignments, which are events on the account. So the same function
answers "may she change this now?" (the team as it is) and "who could change this
account at T?" (the team as it stood at T).

- lead GAM: the whole account, including its team and archiving it;
- GAM: the whole account's plans, people and deals;
- executive sponsor: reads the whole account, approves and reopens its plans;
- regional account manager: a unit and every unit below it;
- local account manager: exactly one unit;
- specialist: reads.
Every member reads the whole account: a local manager sees the HQ objective they answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from domain.account import TeamAssignment, UnitTree
from domain.values import TeamRole

ACCOUNT_WIDE_WRITERS = frozenset({TeamRole.LEAD_GAM.value, TeamRole.GAM.value})
TEAM_MANAGERS = frozenset({TeamRole.LEAD_GAM.value})
DEFAULT_APPROVER_ROLES = frozenset({TeamRole.LEAD_GAM.value, TeamRole.EXECUTIVE_SPONSOR.value})
"""Who approves a plan unless configured otherwise (``GAM_APPROVER_ROLES``)."""


@dataclass(frozen=True)
class TeamRights:
    """One member's rights on one account, derived from their assignments."""

    member: str
    roles: frozenset[str]
    whole_account: bool
    units: frozenset[UUID]
    """The units they may change (for a regional manager, the subtree below each of theirs)."""
    manages_team: bool

    @property
    def reads(self) -> bool:
        return bool(self.roles)

    def may_change(self, unit_id: UUID | None) -> bool:
        """Whether they may change this unit's part (``None``: the account as a whole)."""
        if self.whole_account:
            return True
        return unit_id is not None and unit_id in self.units

    def holds_any(self, roles: Iterable[str]) -> bool:
        return bool(self.roles & set(roles))


def rights_of(member: str, team: Iterable[TeamAssignment], tree: UnitTree) -> TeamRights:
    mine = [assignment for assignment in team if assignment.member == member]
    roles = frozenset(assignment.role for assignment in mine)
    units: set[UUID] = set()
    for assignment in mine:
        if assignment.role == TeamRole.LOCAL_AM.value:
            units.add(assignment.unit_id)
        elif assignment.role == TeamRole.REGIONAL_AM.value:
            units.add(assignment.unit_id)
            units.update(u.unit_id for u in tree.units if tree.is_below(u.unit_id, assignment.unit_id))
    return TeamRights(
        member=member,
        roles=roles,
        whole_account=bool(roles & ACCOUNT_WIDE_WRITERS),
        units=frozenset(units),
        manages_team=bool(roles & TEAM_MANAGERS),
    )


def members(team: Iterable[TeamAssignment]) -> list[str]:
    """Everyone on the team, each once, in a stable order."""
    return sorted({assignment.member for assignment in team})

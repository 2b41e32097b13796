"""Who may read and write where.

People: rights on an account follow from its team (``domain.team``), read from the
account the bus loaded with the command (writes) or loaded here (reads), so an
assignment counts, and a removal ends the right, from the next request on. Global
roles reach beyond teams: admin does everything, compliance reads everything and
writes only erasures, viewer_all reads everything, account_creator takes on new
accounts (and becomes their lead GAM). Within a team: only the lead GAM changes the
team or archives the account; the executive sponsor reads, approves and reopens
plans (whether they may approve is the plan's rule, ``GAM_APPROVER_ROLES``).

Services (API keys) keep their grants by id, as they are on no team:
- gam: writes on the accounts in its ``accounts`` claim (and may create them);
- regional_manager: writes on the units at or below the units in its ``units`` claim;
- local_manager: writes on exactly the units in its ``units`` claim;
- viewer: reads the accounts in its ``accounts`` claim.

Which accounts are "mine" (the default of ``GET /accounts``) is decided in one place,
:func:`my_accounts`: a person's are those whose team they are on, a service's those
its claims name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from uuid import UUID

from fastapi import HTTPException

from domain import commands as c
from domain.account import GlobalAccount, UnitTree
from domain.commands import Command
from domain.team import TeamRights, rights_of
from domain.values import TeamRole
from services.api.auth import Principal
from services.app import GamApplication
from services.bus import Scope

READ_ALL = ("admin", "compliance", "viewer_all")
SERVICE_MANAGERS = ("regional_manager", "local_manager")
CREATIONS = (c.CreateAccount, c.OnboardAccount)
LEAD_ONLY = (c.AssignTeamMember, c.RemoveTeamMember, c.ArchiveAccount)
SPONSOR_MAY = (c.ApprovePlan, c.ReopenPlan)


def may_read(principal: Principal, app: GamApplication, account_id: UUID) -> bool:
    if principal.has(*READ_ALL):
        return True
    if principal.service:
        return _service_may_read(principal, app, account_id)
    account = app.load(GlobalAccount, account_id)
    return rights_of(principal.subject, account.team.values(), account.tree()).reads


def may_write(principal: Principal, command: Command, scope: Scope) -> bool:
    """Whether the caller may send this command to this place; reads the team and
    unit tree the bus loaded with the command, never the store again."""
    if isinstance(command, c.ErasePersonalData):  # a legal duty of compliance, beyond the account team
        return principal.has("admin", "compliance")
    if principal.has("admin"):
        return True
    if isinstance(command, CREATIONS):
        return principal.has("account_creator") or (
            principal.service and principal.has("gam") and scope.account_id in principal.accounts
        )
    if principal.service:
        return _service_may_write(principal, scope)
    if scope.tree is None:
        return False
    return team_may(rights_of(principal.subject, scope.team, scope.tree), command, scope.unit_id)


def team_may(rights: TeamRights, command: Command, unit_id: UUID | None) -> bool:
    """What a team member may send (also used to answer "who could change this at T")."""
    if isinstance(command, LEAD_ONLY):
        return rights.manages_team
    if isinstance(command, SPONSOR_MAY) and TeamRole.EXECUTIVE_SPONSOR.value in rights.roles:
        return True
    return rights.may_change(unit_id)


def _service_may_read(principal: Principal, app: GamApplication, account_id: UUID) -> bool:
    if account_id in principal.accounts:
        return True
    if principal.has(*SERVICE_MANAGERS) and principal.units:
        tree_units = {unit.unit_id for unit in _tree(app, account_id).units}
        return bool(principal.units & tree_units)
    return False


def _service_may_write(principal: Principal, scope: Scope) -> bool:
    if principal.has("gam") and scope.account_id in principal.accounts:
        return True
    if scope.unit_id is None or not principal.has(*SERVICE_MANAGERS):
        return False
    if principal.has("local_manager") and scope.unit_id in principal.units:
        return True
    if principal.has("regional_manager") and scope.tree is not None:
        tree = scope.tree
        if scope.unit_id not in {unit.unit_id for unit in tree.units}:
            return False
        return any(scope.unit_id == own or tree.is_below(scope.unit_id, own) for own in principal.units)
    return False


def _tree(app: GamApplication, account_id: UUID) -> UnitTree:
    return app.load(GlobalAccount, account_id).tree()


@dataclass(frozen=True)
class AccountScope:
    """The accounts a caller reaches: every one, or those named and those the named
    units belong to (resolved against the views, which know each unit's account)."""

    everything: bool = False
    account_ids: frozenset[UUID] = frozenset()
    unit_ids: frozenset[UUID] = frozenset()

    def includes(self, account_id: UUID, units_of_account: Callable[[], Iterable[UUID]]) -> bool:
        """Whether the account is in scope; ``units_of_account`` is asked only when the
        units decide it."""
        if self.everything or account_id in self.account_ids:
            return True
        return bool(self.unit_ids) and not self.unit_ids.isdisjoint(units_of_account())


def my_accounts(principal: Principal, team_accounts: Callable[[str], Iterable[UUID]]) -> AccountScope:
    """The caller's own accounts: a person's, those whose team they are on
    (``team_accounts`` of their subject, from the views); a service's, those in its
    ``accounts`` claim and, for a regional or local manager, those its ``units`` belong to."""
    if not principal.service:
        return AccountScope(account_ids=frozenset(team_accounts(principal.subject)))
    units = principal.units if principal.has(*SERVICE_MANAGERS) else frozenset()
    return AccountScope(account_ids=principal.accounts, unit_ids=units)


def readable_accounts(principal: Principal, team_accounts: Callable[[str], Iterable[UUID]]) -> AccountScope:
    """Every account the caller may read, as the views know it (the lists are served
    from them): all of them for those who read all, else their own."""
    return AccountScope(everything=True) if principal.has(*READ_ALL) else my_accounts(principal, team_accounts)


def listed_accounts(
    principal: Principal, team_accounts: Callable[[str], Iterable[UUID]], *, everything: bool
) -> AccountScope:
    """What ``GET /accounts`` lists: the caller's own, or (``all=true``) every one, for
    those who may read all."""
    if not everything:
        return my_accounts(principal, team_accounts)
    if not principal.has(*READ_ALL):
        raise HTTPException(403, f"only {', '.join(READ_ALL)} list every account; leave out all=true")
    return AccountScope(everything=True)


def check_read(principal: Principal, app: GamApplication, account_id: UUID) -> None:
    if not may_read(principal, app, account_id):
        raise HTTPException(403, f"{principal.subject} may not read account {account_id}")


def check_write(principal: Principal, command: Command, scope: Scope) -> None:
    if not may_write(principal, command, scope):
        where = f"unit {scope.unit_id} of " if scope.unit_id else ""
        raise HTTPException(403, f"{principal.subject} may not change {where}account {scope.account_id}")

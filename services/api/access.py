"""Who may read and write where, by role and by place in the customer's tree.

- admin: everything; compliance: reads everything, writes only erasures;
- gam: writes on the accounts in its ``accounts`` claim;
- regional_manager: writes on the units at or below the units in its ``units`` claim;
- local_manager: writes on exactly the units in its ``units`` claim;
- viewer: reads only.
Anyone reads the accounts in their ``accounts`` claim (assigned or granted), and a
manager also reads the accounts their units belong to.

Which accounts are "mine" (the default of ``GET /accounts``, and who reads an
account's lists) is decided in one place, :func:`my_accounts`, from today's claims.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from uuid import UUID

from fastapi import HTTPException

from domain.account import GlobalAccount, UnitTree
from domain.commands import Command, ErasePersonalData
from services.api.auth import Principal
from services.app import GamApplication
from services.bus import Scope

MANAGERS = ("regional_manager", "local_manager")


def _tree(app: GamApplication, account_id: UUID) -> UnitTree:
    return app.load(GlobalAccount, account_id).tree()


def may_read(principal: Principal, app: GamApplication, account_id: UUID) -> bool:
    if principal.has("admin", "compliance") or account_id in principal.accounts:
        return True
    if principal.has(*MANAGERS) and principal.units:
        tree_units = {unit.unit_id for unit in _tree(app, account_id).units}
        return bool(principal.units & tree_units)
    return False


SEES_ALL = ("admin", "compliance")
"""Who may list every account (``GET /accounts?all=true``)."""


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


def my_accounts(principal: Principal) -> AccountScope:
    """The caller's own accounts: those in the ``accounts`` claim, and, for a regional
    or local manager, those their ``units`` belong to. (When access follows the account
    team, this is the one function to change.)"""
    units = principal.units if principal.has(*MANAGERS) else frozenset()
    return AccountScope(account_ids=principal.accounts, unit_ids=units)


def readable_accounts(principal: Principal) -> AccountScope:
    """Every account the caller may read: all of them for admin and compliance, else their own."""
    return AccountScope(everything=True) if principal.has(*SEES_ALL) else my_accounts(principal)


def listed_accounts(principal: Principal, *, everything: bool) -> AccountScope:
    """What ``GET /accounts`` lists: the caller's own, or (``all=true``) every one, for
    those who may see all."""
    if not everything:
        return my_accounts(principal)
    if not principal.has(*SEES_ALL):
        raise HTTPException(403, f"only {' and '.join(SEES_ALL)} list every account; leave out all=true")
    return AccountScope(everything=True)


def may_write(principal: Principal, command: Command, scope: Scope) -> bool:
    """Whether the caller may send this command to this place; reads the unit tree
    the bus loaded with the command, never the store again."""
    if isinstance(command, ErasePersonalData):  # a legal duty of compliance, beyond the account team
        return principal.has("admin", "compliance")
    if principal.has("admin"):
        return True
    if principal.has("gam") and scope.account_id in principal.accounts:
        return True
    if scope.unit_id is None or not principal.has(*MANAGERS):
        return False
    if principal.has("local_manager") and scope.unit_id in principal.units:
        return True
    if principal.has("regional_manager") and scope.tree is not None:
        tree = scope.tree
        if scope.unit_id not in {unit.unit_id for unit in tree.units}:
            return False
        return any(scope.unit_id == own or tree.is_below(scope.unit_id, own) for own in principal.units)
    return False


def check_read(principal: Principal, app: GamApplication, account_id: UUID) -> None:
    if not may_read(principal, app, account_id):
        raise HTTPException(403, f"{principal.subject} may not read account {account_id}")


def check_write(principal: Principal, command: Command, scope: Scope) -> None:
    if not may_write(principal, command, scope):
        where = f"unit {scope.unit_id} of " if scope.unit_id else ""
        raise HTTPException(403, f"{principal.subject} may not change {where}account {scope.account_id}")

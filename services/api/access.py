"""Who may read and write where, by role and by place in the customer's tree.

- admin: everything; compliance: reads everything, writes only erasures;
- gam: writes on the accounts in its ``accounts`` claim;
- regional_manager: writes on the units at or below the units in its ``units`` claim;
- local_manager: writes on exactly the units in its ``units`` claim;
- viewer: reads only.
Anyone reads the accounts in their ``accounts`` claim (assigned or granted), and a
manager also reads the accounts their units belong to.
"""

from __future__ import annotations

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

"""Who may read and write where, by role and by place in the customer's tree.

- admin: everything; compliance: reads everything, writes only erasures (its own router);
- gam: writes on the accounts in its ``accounts`` claim;
- regional_manager: writes on the units at or below the units in its ``units`` claim;
- local_manager: writes on exactly the units in its ``units`` claim;
- viewer: reads only.
Anyone reads the accounts in their ``accounts`` claim (assigned or granted), and a
manager also reads the accounts their units belong to.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from fastapi import HTTPException

from domain.account import GlobalAccount, UnitTree
from services.api.auth import Principal
from services.app import GamApplication

MANAGERS = ("regional_manager", "local_manager")


@dataclass(frozen=True)
class Scope:
    """What a command touches: an account, and the unit it is about (None when it is
    about the account as a whole, such as approving the plan)."""

    account_id: UUID
    unit_id: UUID | None = None


def on_account(app: GamApplication, account_id: UUID, unit_id: UUID | None = None) -> Scope:
    """The scope of a command on an account that must exist already: an unknown
    account is 404 before the caller's rights (403) or If-Match (428) are checked,
    as for plans, stakeholders and deals, whose scope loads them."""
    app.load(GlobalAccount, account_id)
    return Scope(account_id, unit_id)


def _tree(app: GamApplication, account_id: UUID) -> UnitTree:
    return app.load(GlobalAccount, account_id).tree()


def may_read(principal: Principal, app: GamApplication, account_id: UUID) -> bool:
    if principal.has("admin", "compliance") or account_id in principal.accounts:
        return True
    if principal.has(*MANAGERS) and principal.units:
        tree_units = {unit.unit_id for unit in _tree(app, account_id).units}
        return bool(principal.units & tree_units)
    return False


def may_write(principal: Principal, app: GamApplication, scope: Scope) -> bool:
    if principal.has("admin"):
        return True
    if principal.has("gam") and scope.account_id in principal.accounts:
        return True
    if scope.unit_id is None or not principal.has(*MANAGERS):
        return False
    if principal.has("local_manager") and scope.unit_id in principal.units:
        return True
    if principal.has("regional_manager"):
        tree = _tree(app, scope.account_id)
        if scope.unit_id not in {unit.unit_id for unit in tree.units}:
            return False
        return any(scope.unit_id == own or tree.is_below(scope.unit_id, own) for own in principal.units)
    return False


def check_read(principal: Principal, app: GamApplication, account_id: UUID) -> None:
    if not may_read(principal, app, account_id):
        raise HTTPException(403, f"{principal.subject} may not read account {account_id}")


def check_write(principal: Principal, app: GamApplication, scope: Scope) -> None:
    if not may_write(principal, app, scope):
        where = f"unit {scope.unit_id} of " if scope.unit_id else ""
        raise HTTPException(403, f"{principal.subject} may not change {where}account {scope.account_id}")

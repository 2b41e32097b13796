"""An account's team and what each member may do, now or as it stood at a moment.

"Who could change this account at T?" is a compliance question: it is answered
from the account's own events up to T (team assignments are events), read
straight from the store, so it never depends on a view having caught up. People
with global roles (admin, viewer_all, ...) hold them in their tokens, outside
the store, so only the team is answered here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.account import GlobalAccount
from domain.base import GamEvent
from domain.errors import NotFound
from domain.team import members, rights_of
from projections.encoding import format_time
from services.app import GamApplication


def account_as_of(app: GamApplication, account_id: UUID, moment: datetime | None) -> GlobalAccount:
    """The account with every event up to ``moment`` (None: now); NotFound before it existed."""
    if moment is None:
        return app.load(GlobalAccount, account_id)
    version = None
    for event in app.events.get(account_id):
        if isinstance(event, GamEvent) and event.timestamp > moment:
            break
        version = event.originator_version
    if version is None:
        raise NotFound("account", account_id)
    account: object = app.repository.get(account_id, version=version)
    if not isinstance(account, GlobalAccount):
        raise NotFound("account", account_id)
    return account


def team_json(account: GlobalAccount, approver_roles: frozenset[str], moment: datetime | None) -> dict[str, Any]:
    """The team by member: their assignments and what those let them do."""
    tree = account.tree()
    units = account.units
    team = list(account.team.values())
    people = []
    for member in members(team):
        rights = rights_of(member, team, tree)
        people.append(
            {
                "member": member,
                "assignments": [
                    {"role": a.role, "unit_id": str(a.unit_id), "unit_name": units[a.unit_id].name}
                    for a in sorted(team, key=lambda a: (a.role, units[a.unit_id].name))
                    if a.member == member
                ],
                "reads": rights.reads,
                "changes_whole_account": rights.whole_account,
                "changes_units": sorted(str(u) for u in rights.units) if not rights.whole_account else [],
                "manages_team": rights.manages_team,
                "approves_plans": rights.holds_any(approver_roles),
            }
        )
    return {
        "account_id": str(account.id),
        "version": account.version,
        "as_of": None if moment is None else format_time(moment),
        "members": people,
    }

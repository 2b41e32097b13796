"""The registry: which aggregate decides each command, and what else it needs.

One line per command; the bus (``services.bus``) does the rest the same way for
all of them. The few functions here are the exceptions a line cannot say: what a
decision needs loaded besides its target (the org chart above a manager, the
stakeholder behind a buying influence, the plan behind a deal's objectives),
which unit a command is about when the command does not name it, onboarding
(two aggregates), and erasure (a key destroyed after the event is stored).

:func:`use_case` gives every command a function by its name
(``cascade_objective(app, meta, plan_id=…, …)``) for callers that hold keyword
arguments, such as tests and scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from domain import commands as c
from domain.account import GlobalAccount
from domain.deal import Deal
from domain.errors import InvalidValue, NotFound, UnitOfAnotherAccount
from domain.metadata import EventMetadata
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from domain.team import rights_of
from services.app import CommandResult, GamApplication
from services.bus import Handling, MessageBus, Session

MAX_ORG_CHART_DEPTH = 1_000
"""Walking further up than this means the stored chart is corrupt, not deep."""


def onboard(*, session: Session, fiscal_period: str, meta: EventMetadata, **account: Any) -> None:
    """Take on a global account and start its first plan: both are stored, or neither."""
    created = GlobalAccount.create(meta=meta, **account)
    session.add(created)
    session.add(AccountPlan.start(account_id=created.id, fiscal_period=fiscal_period, meta=meta))


def erase(person: Stakeholder, *, legal_basis: str, meta: EventMetadata) -> None:
    """Record the erasure once; the key is destroyed after the commit, also on a re-run
    that finds the person erased already (a failure between the two is finished)."""
    if not person.erased:
        person.erase_personal_data(legal_basis=legal_basis, meta=meta)


def destroy_key(command: c.ErasePersonalData, app: GamApplication, meta: EventMetadata) -> None:
    app.personal_keys.destroy(
        command.stakeholder_id, erased_by=meta.actor, erased_at=meta.at, legal_basis=command.legal_basis
    )
    app.forget_cached()
    app.truncate_wal()


def manager_chain(command: c.SetReportsTo, session: Session) -> Mapping[str, Any]:
    """The proposed manager and everyone above them, so the stakeholder can refuse a cycle."""
    chain: list[UUID] = []
    manager_account: UUID | None = None
    next_id = command.manager_id
    while next_id is not None and next_id not in chain and len(chain) < MAX_ORG_CHART_DEPTH:
        above = session.load(Stakeholder, next_id)
        manager_account = manager_account or above.account_id
        chain.append(next_id)
        next_id = above.reports_to
    return {"manager_chain": tuple(chain), "manager_account_id": manager_account}


def named_stakeholder(command: c.AttachBuyingInfluence | c.AssessQualification, session: Session) -> Mapping[str, Any]:
    """The stakeholder a buying influence or a qualification's evidence names: of which
    account, and whether erased (nothing personal can be stored for them then)."""
    if command.stakeholder_id is None:
        return {"stakeholder_account_id": None, "stakeholder_erased": False}
    person = session.load(Stakeholder, command.stakeholder_id)
    return {"stakeholder_account_id": person.account_id, "stakeholder_erased": person.erased}


def deal_objectives(command: c.OpenDeal, session: Session) -> Mapping[str, Any]:
    """Linked objectives must belong to ``plan_id``, a plan of the same account."""
    if command.plan_id is None:
        if command.linked_objective_ids:
            raise InvalidValue("plan_id", "name the plan whose objectives the deal supports")
        return {"known_objective_ids": frozenset()}
    plan = session.load(AccountPlan, command.plan_id)
    if plan.account_id != command.account_id:
        raise UnitOfAnotherAccount(f"plan {command.plan_id} belongs to another account")
    return {"known_objective_ids": frozenset(plan.objectives)}


def action_unit(command: c.ChangeActionStatus, plan: AccountPlan) -> UUID:
    if command.action_id not in plan.actions:
        raise NotFound("action", command.action_id)
    return plan.actions[command.action_id].unit_id


def swot_unit(command: c.RemoveSwotEntry, plan: AccountPlan) -> UUID | None:
    if command.entry_id not in plan.swot:
        raise NotFound("SWOT entry", command.entry_id)
    return plan.swot[command.entry_id].unit_id


def reconsider_unit(command: c.AskToReconsider, plan: AccountPlan) -> UUID:
    """The unit that cascaded the objective to the declining unit asks, so its managers may."""
    directive = plan.directives.get((command.objective_id, command.unit_id))
    if directive is None:
        raise NotFound("directive", f"{command.objective_id} to {command.unit_id}")
    return directive.from_unit_id


def approve_as_team_member(plan: AccountPlan, *, session: Session, meta: EventMetadata) -> None:
    """The approver's roles come from the account's team as loaded in this session;
    which roles approve is the deployment's choice (``GAM_APPROVER_ROLES``)."""
    account = session.load(GlobalAccount, plan.account_id)
    held = rights_of(meta.actor, account.team.values(), account.tree()).roles
    plan.approve(meta=meta, approver_roles_held=held, approver_roles=session.app.approver_roles)


def _none(command: Any, target: Any) -> None:
    return None


HANDLINGS: dict[type[c.Command], Handling] = {
    c.CreateAccount: Handling(GlobalAccount, GlobalAccount.create, unit=_none),
    c.OnboardAccount: Handling(GlobalAccount, onboard, unit=_none),
    c.AddUnit: Handling(GlobalAccount, GlobalAccount.add_unit, unit=lambda cmd, _: cmd.parent_id),
    c.RenameUnit: Handling(GlobalAccount, GlobalAccount.rename_unit),
    c.CloseUnit: Handling(GlobalAccount, GlobalAccount.close_unit),
    c.AssignTeamMember: Handling(GlobalAccount, GlobalAccount.assign_team_member),
    c.RemoveTeamMember: Handling(GlobalAccount, GlobalAccount.remove_team_member),
    c.ArchiveAccount: Handling(GlobalAccount, GlobalAccount.archive),
    c.StartPlan: Handling(AccountPlan, AccountPlan.start, unit=_none),
    c.SetObjective: Handling(AccountPlan, AccountPlan.set_objective),
    c.CascadeObjective: Handling(AccountPlan, AccountPlan.cascade_objective, unit=lambda cmd, _: cmd.from_unit_id),
    c.RespondToCascade: Handling(AccountPlan, AccountPlan.respond_to_cascade),
    c.ReportProgress: Handling(AccountPlan, AccountPlan.report_progress),
    c.AddAction: Handling(AccountPlan, AccountPlan.add_action),
    c.ChangeActionStatus: Handling(AccountPlan, AccountPlan.change_action_status, unit=action_unit),
    c.AddSwotEntry: Handling(AccountPlan, AccountPlan.add_swot_entry),
    c.RemoveSwotEntry: Handling(AccountPlan, AccountPlan.remove_swot_entry, unit=swot_unit),
    c.SetWhitespaceCell: Handling(AccountPlan, AccountPlan.set_whitespace_cell),
    c.HoldBusinessReview: Handling(AccountPlan, AccountPlan.hold_business_review),
    c.SubmitPlan: Handling(AccountPlan, AccountPlan.submit),
    c.AskToReconsider: Handling(AccountPlan, AccountPlan.ask_to_reconsider, unit=reconsider_unit),
    c.ApprovePlan: Handling(AccountPlan, approve_as_team_member),
    c.ReopenPlan: Handling(AccountPlan, AccountPlan.reopen),
    c.IdentifyStakeholder: Handling(Stakeholder, Stakeholder.identify, consumed=("account_id",)),
    c.ChangeStakeholderTitle: Handling(Stakeholder, Stakeholder.change_title),
    c.ChangeBuyingRole: Handling(Stakeholder, Stakeholder.change_buying_role),
    c.RateInfluence: Handling(Stakeholder, Stakeholder.rate_influence),
    c.RateSentiment: Handling(Stakeholder, Stakeholder.rate_sentiment),
    c.AssignRelationshipOwner: Handling(Stakeholder, Stakeholder.assign_relationship_owner),
    c.SetReportsTo: Handling(Stakeholder, Stakeholder.set_reports_to, context=manager_chain),
    c.LogInteraction: Handling(Stakeholder, Stakeholder.log_interaction),
    c.RecordDeparture: Handling(Stakeholder, Stakeholder.record_departure),
    c.CorrectPersonalData: Handling(Stakeholder, Stakeholder.correct_personal_data),
    c.ErasePersonalData: Handling(Stakeholder, erase, after_commit=destroy_key, while_archived=True),
    c.OpenDeal: Handling(Deal, Deal.open, context=deal_objectives, consumed=("account_id", "plan_id")),
    c.MoveDealStage: Handling(Deal, Deal.move_stage),
    c.ChangeDealAmount: Handling(Deal, Deal.change_amount),
    c.ChangeDealCloseDate: Handling(Deal, Deal.change_close_date),
    c.ChangeDealProbability: Handling(Deal, Deal.change_probability),
    c.AssessQualification: Handling(Deal, Deal.assess_qualification, context=named_stakeholder),
    c.AttachBuyingInfluence: Handling(Deal, Deal.attach_buying_influence, context=named_stakeholder),
    c.DetachBuyingInfluence: Handling(Deal, Deal.detach_buying_influence),
    c.WinDeal: Handling(Deal, Deal.win),
    c.LoseDeal: Handling(Deal, Deal.lose),
    c.ReopenDeal: Handling(Deal, Deal.reopen),
}

_buses: WeakKeyDictionary[GamApplication, MessageBus] = WeakKeyDictionary()


def bus_for(app: GamApplication) -> MessageBus:
    """The bus of an application (one per application, made on first use)."""
    bus = _buses.get(app)
    if bus is None:
        bus = _buses[app] = MessageBus(app, HANDLINGS)
    return bus


def use_case(kind: type[c.Command]) -> Callable[..., CommandResult]:
    """The command as a function of keyword arguments, sent through the application's bus."""

    def handle(
        app: GamApplication, meta: EventMetadata, *, expected_version: int | None = None, **fields: Any
    ) -> CommandResult:
        return bus_for(app).handle(kind(**fields), meta, expected_version)

    handle.__name__ = handle.__qualname__ = kind.type_name()
    handle.__doc__ = kind.__doc__
    return handle


_USE_CASES = {kind.type_name(): use_case(kind) for kind in c.COMMANDS}


def __getattr__(name: str) -> Callable[..., CommandResult]:
    try:
        return _USE_CASES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


__all__ = list(_USE_CASES)  # the use cases, by name (see __getattr__)

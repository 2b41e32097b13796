"""Every command over HTTP: one documented operation each, made from the command
type and the path below. A route parses its body into the command, the gate
authorises the caller on what the bus loaded, and the bus decides and stores.

Adding a command to the API is one line here; its body, summary, examples and
declared problems come from the command's dataclass.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Response

from domain import commands as c
from domain.account import GlobalAccount
from domain.deal import Deal
from domain.plan import AccountPlan
from domain.stakeholder import Stakeholder
from services.api.command_models import body_model, path_parameters
from services.api.commands import CHANGE_RESPONSES, CREATE_RESPONSES, CommandAccepted, Gate
from services.handlers import HANDLINGS

PATHS: dict[type[c.Command], str] = {
    c.CreateAccount: "/accounts",
    c.OnboardAccount: "/accounts/onboarding",
    c.AddUnit: "/accounts/{account_id}/units",
    c.RenameUnit: "/accounts/{account_id}/units/{unit_id}/rename",
    c.CloseUnit: "/accounts/{account_id}/units/{unit_id}/close",
    c.AssignTeamMember: "/accounts/{account_id}/team",
    c.RemoveTeamMember: "/accounts/{account_id}/team/remove",
    c.ArchiveAccount: "/accounts/{account_id}/archive",
    c.StartPlan: "/accounts/{account_id}/plans",
    c.SetObjective: "/plans/{plan_id}/objectives",
    c.CascadeObjective: "/plans/{plan_id}/objectives/{objective_id}/cascade",
    c.RespondToCascade: "/plans/{plan_id}/objectives/{objective_id}/responses",
    c.AskToReconsider: "/plans/{plan_id}/objectives/{objective_id}/reconsider",
    c.ReportProgress: "/plans/{plan_id}/objectives/{objective_id}/progress",
    c.AddAction: "/plans/{plan_id}/actions",
    c.ChangeActionStatus: "/plans/{plan_id}/actions/{action_id}/status",
    c.AddSwotEntry: "/plans/{plan_id}/swot",
    c.RemoveSwotEntry: "/plans/{plan_id}/swot/{entry_id}/remove",
    c.SetWhitespaceCell: "/plans/{plan_id}/whitespace",
    c.HoldBusinessReview: "/plans/{plan_id}/reviews",
    c.SubmitPlan: "/plans/{plan_id}/submit",
    c.ApprovePlan: "/plans/{plan_id}/approve",
    c.ReopenPlan: "/plans/{plan_id}/reopen",
    c.IdentifyStakeholder: "/stakeholders",
    c.ChangeStakeholderTitle: "/stakeholders/{stakeholder_id}/title",
    c.ChangeBuyingRole: "/stakeholders/{stakeholder_id}/buying-role",
    c.RateInfluence: "/stakeholders/{stakeholder_id}/influence",
    c.RateSentiment: "/stakeholders/{stakeholder_id}/sentiment",
    c.AssignRelationshipOwner: "/stakeholders/{stakeholder_id}/owner",
    c.SetReportsTo: "/stakeholders/{stakeholder_id}/reports-to",
    c.LogInteraction: "/stakeholders/{stakeholder_id}/interactions",
    c.RecordDeparture: "/stakeholders/{stakeholder_id}/departure",
    c.CorrectPersonalData: "/stakeholders/{stakeholder_id}/personal-data",
    c.ErasePersonalData: "/compliance/stakeholders/{stakeholder_id}/erasure",
    c.OpenDeal: "/deals",
    c.MoveDealStage: "/deals/{deal_id}/stage",
    c.ChangeDealAmount: "/deals/{deal_id}/amount",
    c.ChangeDealCloseDate: "/deals/{deal_id}/close-date",
    c.ChangeDealProbability: "/deals/{deal_id}/probability",
    c.AssessQualification: "/deals/{deal_id}/qualification",
    c.AttachBuyingInfluence: "/deals/{deal_id}/buying-influences",
    c.DetachBuyingInfluence: "/deals/{deal_id}/buying-influences/remove",
    c.WinDeal: "/deals/{deal_id}/win",
    c.LoseDeal: "/deals/{deal_id}/lose",
    c.ReopenDeal: "/deals/{deal_id}/reopen",
}
"""The URL of each command; ``{name}`` segments are the command's fields."""

LOCATIONS = {GlobalAccount: "/accounts", AccountPlan: "/plans", Stakeholder: "/stakeholders", Deal: "/deals"}
"""Where a created entity of each kind is read."""

router = APIRouter()


def _tag(path: str) -> str:
    return path.strip("/").split("/")[0]


def command_route(command: type[c.Command], path: str) -> None:
    """Add the operation that sends ``command``: path fields as path parameters, the rest as the body."""
    in_path = path_parameters(path)
    body_type = body_model(command, in_path)
    location = LOCATIONS[HANDLINGS[command].aggregate]

    def endpoint(gate: Gate, body: Any, **path_values: UUID) -> Response:
        sent = command(**body.command_fields(), **path_values)
        return gate.send(sent, body, f"{location}/{sent.entity_id}" if command.creates else None)

    parameters = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[UUID, Path()])
        for name in sorted(in_path, key=path.index)
    ]
    parameters += [
        inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[body_type, Body()]),
        inspect.Parameter("gate", inspect.Parameter.KEYWORD_ONLY, annotation=Gate),
    ]
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__name__ = command.type_name()
    endpoint.__doc__ = command.__doc__
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        status_code=201 if command.creates else 200,
        response_model=CommandAccepted,
        responses=CREATE_RESPONSES if command.creates else CHANGE_RESPONSES,
        tags=[_tag(path)],
        name=command.type_name(),
        operation_id=command.type_name(),
    )


for _command, _path in PATHS.items():
    command_route(_command, _path)

"""Many commands in one request: validated first, then run in order in one
transaction (all or nothing), through the same bus and access check as the
single endpoints.

Each item is the JSON of its single endpoint, with the fields of its URL and a
``type`` (the endpoint's operation id, e.g. ``cascade_objective``). A refused
item answers the problem of its single endpoint with its ``index``; nothing of
the batch is stored then.
"""

from __future__ import annotations

from typing import Annotated, Union
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from domain.commands import COMMANDS
from services.api.command_models import BatchItem, item_model
from services.api.commands import CHANGE_RESPONSES, Gate

MAX_BATCH = 1_000

ITEMS = tuple(item_model(command) for command in COMMANDS)
Item = Annotated[Union[ITEMS], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007

router = APIRouter(tags=["batches"])


class Batch(BaseModel):
    model_config = {"extra": "forbid"}

    commands: list[Item] = Field(min_length=1, max_length=MAX_BATCH)
    reason: str | None = Field(
        default=None, max_length=2000, description="Why; kept with every event of the batch for the audit trail."
    )


class BatchResult(BaseModel):
    type: str
    entity_id: UUID
    version: int
    created_id: UUID | None = None


class BatchAccepted(BaseModel):
    """Every command's entity and version after it, and the log position of the
    batch's last event (pass it as ``min_position`` to read your writes)."""

    position: int
    results: list[BatchResult]


@router.post(
    "/batches",
    response_model=BatchAccepted,
    responses={k: v for k, v in CHANGE_RESPONSES.items() if k not in (200, 428)},
    operation_id="run_batch",
)
def run_batch(body: Batch, gate: Gate) -> Response:
    """Run up to 1,000 commands in one transaction: all are stored, or none."""
    items: list[BatchItem] = list(body.commands)
    return gate.send_batch([(item.command(), item.expected_version) for item in items], body.reason)

"""Compliance over HTTP: the account as it stood, what changed, the audit export
with its hash-chain links and chain verification, and a person's right of access
with the record of who used it (compliance and admin roles only). Erasure is a
command like every other (``services.api.routes.commands``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import HTTPException, Query
from fastapi.responses import StreamingResponse

from infra.hash_chain import verify_chain
from projections.ports import AuditQuery
from services.api.auth import Compliance, compliance_router
from services.api.dependencies import RuntimeDep
from services.api.problems import problem_responses
from services.api.routes.transparency import export_checkpoint
from services.api.values import MomentOrUtc
from services.audit_export import export_rows, render
from services.subject_access import ACCESS_BASIS, access_request_json, request_subject_access
from services.time_travel import account_as_of, describe, diff, names_in, who_changed

router = compliance_router(
    {
        422: "Invalid parameters or body (field paths in ``errors``)",
        503: "The store is unavailable; retry after Retry-After",
    }
)
NOT_THEN = problem_responses({404: "The account did not exist at that moment"})
NO_SUCH_PERSON = problem_responses({404: "No such stakeholder"})
LegalBasis = Annotated[
    str,
    Query(
        min_length=1,
        max_length=2000,
        description="Why the data is disclosed, e.g. 'GDPR Art. 15 request #4711'; kept with the request.",
    ),
]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/accounts/{account_id}/as-of", responses=NOT_THEN)
def get_account_as_of(
    runtime: RuntimeDep,
    account_id: UUID,
    at: Annotated[MomentOrUtc, Query(description="The moment (UTC)")],
    _: Compliance,
) -> dict[str, Any]:
    """The account, its plan, stakeholders and deals, and its account view, as they stood at ``at``."""
    state = account_as_of(runtime.app, runtime.projector, account_id, _utc(at))
    if state.document is None:
        raise HTTPException(404, f"account {account_id} did not exist at {at.isoformat()}")
    return state.as_json()


@router.get("/accounts/{account_id}/diff")
def get_account_diff(
    runtime: RuntimeDep,
    account_id: UUID,
    from_time: Annotated[MomentOrUtc, Query(alias="from")],
    to_time: Annotated[MomentOrUtc, Query(alias="to")],
    _: Compliance,
) -> dict[str, Any]:
    """Every field of the account view that differs between two moments, readable (ids
    replaced by names), each with who made the change, when and why (``by``: the events
    of the window that changed it)."""
    start, end = _utc(from_time), _utc(to_time)
    before = account_as_of(runtime.app, runtime.projector, account_id, start).document
    after = account_as_of(runtime.app, runtime.projector, account_id, end).document
    tick = timedelta(microseconds=1)  # as of a moment includes it: the window is (from, to]
    last = datetime.max.replace(tzinfo=UTC) - tick
    window = AuditQuery(
        account_id=account_id, since=min(start, last) + tick, until=None if end >= last else end + tick, limit=1_000_000
    )
    rows = runtime.projector.view("audit_trail").select_audit(window) if end > start else []
    names = names_in(after) | names_in(before)
    return {
        "changes": [
            {"path": c.path, "readable": describe(c, names), "before": c.before, "after": c.after,
             "by": who_changed(c, account_id, rows)}
            for c in diff(before, after)
        ]
    }  # fmt: skip


@router.get("/audit/export", response_class=StreamingResponse)
def export_audit(
    runtime: RuntimeDep,
    _: Compliance,
    account_id: UUID | None = None,
    from_time: Annotated[MomentOrUtc | None, Query(alias="from")] = None,
    to_time: Annotated[MomentOrUtc | None, Query(alias="to")] = None,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> StreamingResponse:
    """The audit trail with each row's hash-chain link, streamed; cut at the latest signed checkpoint
    (its note base64-encoded in ``Gam-Checkpoint``), each row with its leaf index and inclusion proof."""
    log, latest = export_checkpoint(runtime)
    rows = export_rows(
        runtime.projector, account_id=account_id, since=from_time and _utc(from_time), until=to_time and _utc(to_time),
        transparency=log, tree_size=latest.size if latest else 0,
    )  # fmt: skip
    media = "application/x-ndjson" if format == "jsonl" else "text/csv"
    headers = {"Gam-Checkpoint": base64.b64encode(latest.note.encode()).decode()} if latest else None
    return StreamingResponse(render(rows, format), media_type=media, headers=headers)


@router.get("/audit/verify")
def verify(runtime: RuntimeDep, _: Compliance) -> dict[str, Any]:
    """Recompute the hash chain over every stored event."""
    report = verify_chain(runtime.app.recorder)
    return {"intact": report.intact, "checked": report.checked, "first_broken": report.first_broken,
            "problem": report.problem}  # fmt: skip


@router.get("/stakeholders/{stakeholder_id}/subject-access", responses=NO_SUCH_PERSON)
def get_subject_access(
    runtime: RuntimeDep,
    stakeholder_id: UUID,
    caller: Compliance,
    legal_basis: LegalBasis = ACCESS_BASIS,
) -> dict[str, Any]:
    """Everything gam holds about the person (GDPR Art. 15): their fields and interactions, the deals
    they influence, who reports to them, where plans and deals name them, and every change about them
    (who, what, when), and which services fetched their key (``key_fetches``). The request is recorded
    (caller, legal basis, time); after erasure the person reads ``[erased]``."""
    return request_subject_access(
        runtime.app,
        runtime.access_log,
        stakeholder_id,
        requested_by=caller.subject,
        legal_basis=legal_basis,
        at=datetime.now(UTC),
        key_fetches=runtime.key_fetch_log,
    )


@router.get("/subject-access-requests")
def list_subject_access_requests(
    runtime: RuntimeDep, _: Compliance, stakeholder_id: UUID | None = None
) -> dict[str, Any]:
    """Every subject-access request answered (about one person, if given), oldest first."""
    return {"requests": [access_request_json(r) for r in runtime.access_log.requests(stakeholder_id)]}

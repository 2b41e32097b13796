"""People's keys for downstream services (``personal_data`` scope, API keys only).

A message on Kafka carries each person's data sealed under that person's key
(``services.envelope``); a service allowed to hold personal data fetches the key here,
once per person, and opens the fields itself. Every fetch is recorded; after the
person's erasure the key is gone and the answer is 410 Gone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response

from services.api.auth import Compliance, PersonalDataService
from services.api.dependencies import RuntimeDep
from services.api.problems import problem_responses
from services.personal_key_access import KEY_FETCH_PURPOSE, KeyGone, fetch_personal_key
from services.subject_access import access_request_json

router = APIRouter(
    prefix="/compliance",
    tags=["compliance"],
    responses=problem_responses(
        {
            401: "No valid credential",
            422: "Invalid parameters (field paths in ``errors``)",
            503: "The store is unavailable; retry after Retry-After",
        }
    ),
)


@router.get(
    "/personal-keys/{subject_id}",
    summary="Fetch a person's key to open their sealed personal data",
    responses=problem_responses(
        {
            403: "Only a service API key with the personal_data scope may fetch keys",
            404: "No such person",
            410: "The person was erased: their key no longer exists",
        }
    ),
)
def get_personal_key(
    runtime: RuntimeDep,
    subject_id: UUID,
    caller: PersonalDataService,
    response: Response,
    purpose: Annotated[
        str, Query(min_length=1, max_length=2000, description="Why the key is fetched; kept with the record.")
    ] = KEY_FETCH_PURPOSE,
) -> dict[str, Any]:
    """The person's key (base64, 32 bytes, AES-256-GCM) and its id, the ``key_id`` that
    published sealed fields name. The fetch is recorded (caller, purpose, time). Keep the
    key no longer than the person is not erased: drop it when ``Stakeholder.PersonalDataErased``
    arrives for them."""
    try:
        grant = fetch_personal_key(
            runtime.app,
            runtime.personal_keys,
            runtime.key_fetch_log,
            subject_id,
            fetched_by=caller.subject,
            purpose=purpose,
            at=datetime.now(UTC),
        )
    except KeyGone as gone:
        raise HTTPException(410, str(gone)) from None
    response.headers["Cache-Control"] = "no-store"
    return grant.as_json()


@router.get(
    "/personal-key-fetches",
    summary="List the fetches of people's keys",
    responses=problem_responses({403: "Only the compliance and admin roles may do this"}),
)
def list_personal_key_fetches(runtime: RuntimeDep, _: Compliance, subject_id: UUID | None = None) -> dict[str, Any]:
    """Every fetch of a person's key by a downstream service (about one person, if given), oldest first."""
    return {"fetches": [access_request_json(r) for r in runtime.key_fetch_log.requests(subject_id)]}

"""How every command travels through HTTP, in one place, so the routers only say
what a command is: its body, what it touches, and which handler decides it.

The order of checks is the contract: who is calling (401), whether the entity
exists (404), whether they may change it (403), whether they said which version
they saw (If-Match, 428), then the domain decides (412 stale version, 409/422
rule broken) and the events are stored. ``Idempotency-Key`` wraps it all: the
first answer is remembered and replayed for a retry of the same request; a
refused request stores nothing and forgets its key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Depends, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.commands import Command
from domain.errors import DomainError
from domain.metadata import EventMetadata
from infra.idempotency import IdempotencyStore, InProgress, KeyReused, Replay, StoredResponse
from services.api.access import check_write
from services.api.auth import Caller, Principal
from services.api.command_models import CommandBody
from services.api.dependencies import RuntimeDep
from services.api.problems import problem_responses
from services.bus import MessageBus, Scope
from services.observability import metrics

log = logging.getLogger(__name__)

ETAG = re.compile(r'^\s*"(\d{1,12})"\s*$')
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


class CommandAccepted(BaseModel):
    """What a command stored: the entity, its new version (also the ETag), the log
    position to pass as ``min_position`` to read your own write, and the id of what
    the command created inside the entity, if anything."""

    entity_id: UUID
    version: int
    position: int
    created_id: UUID | None = None


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> int:
    if value is None:
        raise HTTPException(428, "this change needs If-Match with the entity's ETag (its version)")
    match = ETAG.match(value)
    if match is None:
        raise HTTPException(400, 'If-Match must be one strong entity tag, such as "7"')
    return int(match.group(1))


def fingerprint(request: Request, raw_body: bytes, if_match: str | None) -> str:
    """The request as far as its effect goes: method, path, body (key order ignored)
    and the version it was made against."""
    try:
        body = json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        body = raw_body.hex()
    text = json.dumps([request.method, request.url.path, request.url.query, body, if_match])
    return hashlib.sha256(text.encode()).hexdigest()


def _correlation_id(value: str | None) -> UUID:
    try:
        return UUID(value) if value else uuid4()
    except ValueError:
        return uuid4()


@dataclass
class CommandGate:
    """One command request: the caller, their headers, and the way to the store."""

    request: Request
    principal: Principal
    bus: MessageBus
    idempotency: IdempotencyStore
    idempotency_key: str | None
    if_match: str | None
    correlation_id: UUID
    raw_body: bytes

    def send(self, command: Command, body: CommandBody, location: str | None = None) -> Response:
        """Send the command through the bus; this gate admits the caller on the state
        the bus loaded. A creation answers 201 with ``Location``; a change 200."""
        return self._once(lambda: self._decide(command, body, location), command.type_name())

    def send_batch(self, commands: list[tuple[Command, int | None]], reason: str | None) -> Response:
        """Send commands through the bus in one transaction; a refusal names its index."""
        return self._once(lambda: self._decide_batch(commands, reason), "batch")

    def _decide_batch(self, commands: list[tuple[Command, int | None]], reason: str | None) -> Response:
        results = self.bus.handle_all(
            commands, self._meta(reason), _BatchGatekeeper(self.principal), (DomainError, HTTPException)
        )
        body = {
            "position": results[-1].position if results else 0,
            "results": [
                {
                    "type": command.type_name(),
                    "entity_id": str(result.entity_id),
                    "version": result.version,
                    "created_id": None if result.created_id is None else str(result.created_id),
                }
                for (command, _), result in zip(commands, results, strict=True)
            ],
        }
        return JSONResponse(body, headers={"X-Correlation-ID": str(self.correlation_id)})

    def _meta(self, reason: str | None) -> EventMetadata:
        return EventMetadata(
            actor=self.principal.subject, at=datetime.now(UTC), correlation_id=self.correlation_id, reason=reason
        )

    def admit(self, command: Command, scope: Scope) -> int | None:
        """403 for a caller who may not write here; a change also needs If-Match (428)."""
        check_write(self.principal, command, scope)
        return None if command.creates else parse_if_match(self.if_match)

    def _decide(self, command: Command, body: CommandBody, location: str | None) -> Response:
        result = self.bus.handle(command, self._meta(body.reason), gatekeeper=self)
        accepted = CommandAccepted(
            entity_id=result.entity_id, version=result.version, position=result.position, created_id=result.created_id
        )
        headers = {"ETag": etag(result.version), "X-Correlation-ID": str(self.correlation_id)}
        if location is not None:
            headers["Location"] = location
        status = 201 if command.creates else 200
        return JSONResponse(accepted.model_dump(mode="json"), status_code=status, headers=headers)

    def _once(self, decide: Callable[[], Response], type_name: str) -> Response:
        key = self.idempotency_key
        if key is None:
            return decide()
        owner = self.principal.subject
        reservation = self.idempotency.reserve(owner, key, fingerprint(self.request, self.raw_body, self.if_match))
        if isinstance(reservation, Replay):
            metrics.replayed(type_name)
            stored = reservation.response
            headers = {**stored.headers, "Idempotent-Replayed": "true"}
            return Response(stored.body, status_code=stored.status, headers=headers, media_type="application/json")
        if isinstance(reservation, KeyReused):
            raise HTTPException(422, "this Idempotency-Key was used for a different request")
        if isinstance(reservation, InProgress):
            raise HTTPException(409, "a request with this Idempotency-Key is still in progress; retry later")
        token = reservation.token
        try:
            response = decide()
        except BaseException:
            self._release(owner, key, token)
            raise
        kept = {name: value for name, value in response.headers.items() if name.lower() in _KEPT_HEADERS}
        answer = StoredResponse(response.status_code, bytes(response.body), kept)
        try:
            if not self.idempotency.complete(owner, key, token, answer):
                log.warning("Idempotency-Key %r was taken over before its answer could be remembered", key)
        except Exception:  # the events are stored: say so; a retry meets the reservation until its lease ends
            log.exception("could not remember the answer for Idempotency-Key %r", key)
        return response

    def _release(self, owner: str, key: str, token: str) -> None:
        try:
            self.idempotency.release(owner, key, token)
        except Exception:  # the lease expires on its own; the original error matters more
            log.exception("could not release Idempotency-Key %r", key)


@dataclass(frozen=True)
class _BatchGatekeeper:
    """In a batch, each command's version is its item's ``expected_version``, if any."""

    principal: Principal

    def admit(self, command: Command, scope: Scope) -> int | None:
        check_write(self.principal, command, scope)
        return None


_KEPT_HEADERS = {"etag", "location", "x-correlation-id"}


async def command_gate(
    request: Request,
    runtime: RuntimeDep,
    principal: Caller,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=KEY_PATTERN,
            description="Makes a retry safe: the same key and body give the first answer and store nothing new.",
        ),
    ] = None,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=40,
            description='Required on changes: the ETag (version) the change was made against, e.g. "7".',
        ),
    ] = None,
    correlation_id: Annotated[str | None, Header(alias="X-Correlation-ID", max_length=100)] = None,
) -> CommandGate:
    raw_body = await request.body()
    return CommandGate(
        request=request,
        principal=principal,
        bus=runtime.bus,
        idempotency=runtime.idempotency,
        idempotency_key=idempotency_key,
        if_match=if_match,
        correlation_id=_correlation_id(correlation_id),
        raw_body=raw_body,  # fingerprinted only with an Idempotency-Key (a JSON round trip per request)
    )


Gate = Annotated[CommandGate, Depends(command_gate)]

_COMMAND_HEADERS = {
    "ETag": {"description": "The entity's new version, for the next If-Match.", "schema": {"type": "string"}},
    "X-Correlation-ID": {"description": "Ties the stored events to this request.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "``true`` when this is the remembered answer to an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
_REFUSALS = {
    400: "The body cannot be read (it is not UTF-8)",
    401: "No valid credential",
    403: "The caller may not write here",
    404: "Something the command refers to does not exist",
    409: "A rule of the domain refuses it (the problem names the rule), the id is taken, "
    "or a request with the same Idempotency-Key is still in progress",
    413: "The body is larger than the server accepts (GAM_MAX_BODY_BYTES)",
    422: "Invalid input (field paths in ``errors``) or a key reused for another request",
    503: "The store is unavailable; nothing was stored, retry with the same Idempotency-Key",
}
CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Created; ``Location`` names the new entity.",
        "headers": {
            **_COMMAND_HEADERS,
            "Location": {"description": "The new entity.", "schema": {"type": "string"}},
        },
    },
    **problem_responses(_REFUSALS),
}
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Changed.", "headers": _COMMAND_HEADERS},
    **problem_responses(
        {
            **_REFUSALS,
            400: 'If-Match is not one strong entity tag, such as "7", or the body cannot be read (not UTF-8)',
            412: "The entity changed since the version in If-Match; ``current_version`` says where it is",
            428: "If-Match is missing",
        }
    ),
}

"""Every error as RFC 9457 problem+json, in one place."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import eventsourcing.persistence as es
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    CurrencyMismatch,
    DomainError,
    InvalidValue,
    NegativeAmount,
    NotAnApprover,
    NotFound,
    PersonalDataInText,
    ReasonRequired,
    SelfApproval,
)
from projections.exchange_rates import UnknownCurrency
from services.bus import BatchRefused
from services.projector import ViewNotReady

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 1


class FieldError(BaseModel):
    path: str = Field(description="Where the bad value is, e.g. ``body/target/value`` or ``query/limit``.")
    message: str
    type: str = Field(description="What is wrong with it, e.g. ``missing``, ``string_too_long``, a rule's name.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details. Besides the standard members, a refusal
    by a rule names the ``rule``; invalid input lists the ``errors`` by field path; a
    stale If-Match says the ``current_version``; a view not caught up yet names the
    ``view`` and the ``position`` it reached."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="``about:blank`` or ``/problems/<rule>``.")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    rule: str | None = None
    errors: list[FieldError] | None = None
    current_version: int | None = None
    view: str | None = None
    position: int | None = None
    index: int | None = Field(default=None, description="In a batch: the command that was refused.")


PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
_STRING = {"schema": {"type": "string"}}
PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "How to authenticate: ``Bearer``.", **_STRING}},
    412: {"ETag": {"description": "The entity's current version.", **_STRING}},
    503: {"Retry-After": {"description": "Seconds to wait before retrying.", **_STRING}},
}


def problem_responses(described: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses: each with its description, a
    problem+json body and the headers that come with it (``Retry-After`` on 503...)."""
    return {
        status: {
            "description": description,
            "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
            **({"headers": PROBLEM_HEADERS[status]} if status in PROBLEM_HEADERS else {}),
        }
        for status, description in described.items()
    }


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = dict(headers or {})
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


INPUT_RULES = (InvalidValue, NegativeAmount, CurrencyMismatch)
"""Rules about the values sent (422); every other rule is about the state the
entity is in (409), but for who may approve (403)."""
DUTY_RULES = (SelfApproval, NotAnApprover)


def domain_problem(error: DomainError, *, field_prefix: str = "body", **extra: Any) -> JSONResponse:
    """A refusal by the domain, named by its rule so clients can act on it."""
    rule_type = f"/problems/{error.rule}"
    if isinstance(error, ConcurrencyConflict):
        current = error.actual_version
        headers = {"ETag": f'"{current}"'} if current is not None else None
        return problem(
            412,
            "Version mismatch",
            str(error),
            headers,
            type=rule_type,
            rule=error.rule,
            current_version=current,
            **extra,
        )
    if isinstance(error, NotFound):
        return problem(404, "Not found", str(error), type=rule_type, rule=error.rule, **extra)
    if isinstance(error, AlreadyExists):
        return problem(409, "Already exists", str(error), type=rule_type, rule=error.rule, **extra)
    if isinstance(error, InvalidValue):
        path = f"{field_prefix}/{error.field.replace('.', '/')}"
        errors = [{"path": path, "message": str(error), "type": error.rule}]
        return problem(422, "Invalid value", str(error), type=rule_type, rule=error.rule, errors=errors, **extra)
    if isinstance(error, DUTY_RULES):
        return problem(403, "Forbidden by separation of duties", str(error), type=rule_type, rule=error.rule, **extra)
    status = 422 if isinstance(error, INPUT_RULES) else 409
    return problem(status, "Refused by a rule", str(error), type=rule_type, rule=error.rule, **extra)


def batch_problem(refused: BatchRefused) -> JSONResponse:
    """The first refused command of a batch: its problem, with its ``index`` (nothing was stored)."""
    error, index = refused.refusal, refused.index
    if isinstance(error, ReasonRequired) or (isinstance(error, PersonalDataInText) and error.field == "reason"):
        return domain_problem(error, index=index)  # a batch has one reason, beside its commands
    if isinstance(error, DomainError):
        return domain_problem(error, field_prefix=f"body/commands/{index}", index=index)
    if isinstance(error, HTTPException):
        status = error.status_code
        return problem(status, _phrase(status), f"command {index}: {error.detail}", error.headers, index=index)
    raise error


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _with_problem_schema(generate: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's document generator, adding the ``Problem`` schema that the
    problem+json responses declared with :func:`problem_responses` refer to."""

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI builds it once and keeps it
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if "Problem" not in schemas:
            schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas["Problem"] = schema
        return document

    return openapi


def install(app: FastAPI) -> None:
    app.openapi = _with_problem_schema(app.openapi)  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": "/".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        return problem(422, "Invalid request", f"{len(errors)} field(s) are invalid", errors=errors)

    @app.exception_handler(DomainError)
    async def refused(_: Request, error: DomainError) -> JSONResponse:
        return domain_problem(error)

    @app.exception_handler(BatchRefused)
    async def batch_refused(_: Request, error: BatchRefused) -> JSONResponse:
        return batch_problem(error)

    @app.exception_handler(es.OperationalError)
    @app.exception_handler(es.InterfaceError)
    @app.exception_handler(es.ConnectionUnavailableError)
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(sqlite3.OperationalError)
    async def store_unavailable(request: Request, error: Exception) -> JSONResponse:
        # The database restarted, is unreachable or locked: nothing was acknowledged,
        # so the caller may retry (with the same Idempotency-Key) after a moment.
        log.warning("store unavailable: %s", error)
        breaker = getattr(request.app.state, "breaker", None)
        if breaker is not None and not isinstance(error, sqlite3.OperationalError):
            breaker.trip()  # the next requests answer 503 at once instead of waiting for the database
        return problem(
            503, "Store unavailable", "the event store is unavailable; retry shortly", rule="store_unavailable"
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        # A bug: answer problem+json without leaking internals; the server logs the traceback.
        return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")

    @app.exception_handler(ViewNotReady)
    async def not_ready(_: Request, error: ViewNotReady) -> JSONResponse:
        return problem(503, "View not up to date yet", str(error), view=error.view_name, position=error.reached)

    @app.exception_handler(UnknownCurrency)
    async def no_rate(_: Request, error: UnknownCurrency) -> JSONResponse:
        # Configuration, not the caller's input: the rate table (GAM_FX_RATES_FILE) lacks a currency.
        return problem(500, "No exchange rate", str(error), rule="exchange_rate_missing")

    @app.exception_handler(HTTPException)
    async def http(_: Request, error: HTTPException) -> JSONResponse:
        return problem(error.status_code, _phrase(error.status_code), str(error.detail), headers=error.headers)

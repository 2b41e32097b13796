"""Every error as RFC 9457 problem+json, in one place."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import eventsourcing.persistence as es
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException

from domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    CurrencyMismatch,
    DomainError,
    InvalidValue,
    NegativeAmount,
    NotFound,
)
from projections.exchange_rates import UnknownCurrency
from services.projector import ViewNotReady

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
RETRY_AFTER_SECONDS = 1


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
entity is in (409)."""


def domain_problem(error: DomainError) -> JSONResponse:
    """A refusal by the domain, named by its rule so clients can act on it."""
    rule_type = f"/problems/{error.rule}"
    if isinstance(error, ConcurrencyConflict):
        current = error.actual_version
        headers = {"ETag": f'"{current}"'} if current is not None else None
        return problem(
            412, "Version mismatch", str(error), headers, type=rule_type, rule=error.rule, current_version=current
        )
    if isinstance(error, NotFound):
        return problem(404, "Not found", str(error), type=rule_type, rule=error.rule)
    if isinstance(error, AlreadyExists):
        return problem(409, "Already exists", str(error), type=rule_type, rule=error.rule)
    if isinstance(error, InvalidValue):
        errors = [{"path": f"body/{error.field.replace('.', '/')}", "message": str(error), "type": error.rule}]
        return problem(422, "Invalid value", str(error), type=rule_type, rule=error.rule, errors=errors)
    status = 422 if isinstance(error, INPUT_RULES) else 409
    return problem(status, "Refused by a rule", str(error), type=rule_type, rule=error.rule)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": "/".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        return problem(422, "Invalid request", f"{len(errors)} field(s) are invalid", errors=errors)

    @app.exception_handler(DomainError)
    async def refused(_: Request, error: DomainError) -> JSONResponse:
        return domain_problem(error)

    @app.exception_handler(es.OperationalError)
    @app.exception_handler(es.InterfaceError)
    @app.exception_handler(es.ConnectionUnavailableError)
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(sqlite3.OperationalError)
    async def store_unavailable(_: Request, error: Exception) -> JSONResponse:
        # The database restarted, is unreachable or locked: nothing was acknowledged,
        # so the caller may retry (with the same Idempotency-Key) after a moment.
        log.warning("store unavailable: %s", error)
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

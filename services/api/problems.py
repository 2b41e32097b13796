"""Every error as RFC 9457 problem+json, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from projections.exchange_rates import UnknownCurrency
from services.projector import ViewNotReady

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


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"path": "/".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in error.errors()
        ]
        return problem(422, "Invalid request", f"{len(errors)} field(s) are invalid", errors=errors)

    @app.exception_handler(ViewNotReady)
    async def not_ready(_: Request, error: ViewNotReady) -> JSONResponse:
        return problem(503, "View not up to date yet", str(error), view=error.view_name, position=error.reached)

    @app.exception_handler(UnknownCurrency)
    async def no_rate(_: Request, error: UnknownCurrency) -> JSONResponse:
        # Configuration, not the caller's input: the rate table (GAM_FX_RATES_FILE) lacks a currency.
        return problem(500, "No exchange rate", str(error), rule="exchange_rate_missing")

    @app.exception_handler(HTTPException)
    async def http(_: Request, error: HTTPException) -> JSONResponse:
        return problem(error.status_code, str(error.detail), str(error.detail), headers=error.headers)

"""gam over HTTP: the demo's command mix sent to the real API.

The API (``services.api.app:create_app``) runs in its own uvicorn process, as it
would in production, configured through ``GAM_*`` variables; the benchmark's
clients are httpx, one per account in flight, each sending its account's
commands in order (a command mix has dependencies within an account, none
between accounts). Every call carries a JWT (HS256, role admin); every change
carries ``If-Match`` with the version the previous answer returned, as a client
of this API must.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from bench.mix import Command
from domain.plan import plan_id_for
from infra.settings import Settings

ROUTES: dict[str, str] = {
    "onboard_account": "/accounts/onboarding",
    "add_unit": "/accounts/{account_id}/units",
    "assign_team_member": "/accounts/{account_id}/team",
    "set_objective": "/plans/{plan_id}/objectives",
    "cascade_objective": "/plans/{plan_id}/objectives/{objective_id}/cascade",
    "respond_to_cascade": "/plans/{plan_id}/objectives/{objective_id}/responses",
    "report_progress": "/plans/{plan_id}/objectives/{objective_id}/progress",
    "add_action": "/plans/{plan_id}/actions",
    "change_action_status": "/plans/{plan_id}/actions/{action_id}/status",
    "add_swot_entry": "/plans/{plan_id}/swot",
    "set_whitespace_cell": "/plans/{plan_id}/whitespace",
    "hold_business_review": "/plans/{plan_id}/reviews",
    "submit_plan": "/plans/{plan_id}/submit",
    "approve_plan": "/plans/{plan_id}/approve",
    "identify_stakeholder": "/stakeholders",
    "change_buying_role": "/stakeholders/{stakeholder_id}/buying-role",
    "rate_influence": "/stakeholders/{stakeholder_id}/influence",
    "rate_sentiment": "/stakeholders/{stakeholder_id}/sentiment",
    "assign_relationship_owner": "/stakeholders/{stakeholder_id}/owner",
    "set_reports_to": "/stakeholders/{stakeholder_id}/reports-to",
    "log_interaction": "/stakeholders/{stakeholder_id}/interactions",
    "record_departure": "/stakeholders/{stakeholder_id}/departure",
    "open_deal": "/deals",
    "attach_buying_influence": "/deals/{deal_id}/buying-influences",
    "assess_qualification": "/deals/{deal_id}/qualification",
    "move_deal_stage": "/deals/{deal_id}/stage",
    "change_deal_amount": "/deals/{deal_id}/amount",
    "change_deal_close_date": "/deals/{deal_id}/close-date",
    "change_deal_probability": "/deals/{deal_id}/probability",
    "win_deal": "/deals/{deal_id}/win",
    "lose_deal": "/deals/{deal_id}/lose",
    "reopen_deal": "/deals/{deal_id}/reopen",
}
"""Each command of the mix and the endpoint that takes it; the first path parameter
names the entity whose version goes in If-Match."""

SECRET = "bench-" + "s" * 42


class Unavailable(Exception):
    """The API cannot run this workload (it lacks an endpoint the mix needs)."""


def encode(value: Any) -> Any:
    """A command argument as JSON."""
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def token(secret: str = SECRET) -> str:
    import jwt

    claims = {"sub": "bench@vendor.example", "roles": ["admin"], "exp": datetime.now(UTC) + timedelta(hours=2)}
    return jwt.encode(claims, secret, algorithm="HS256")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_server(settings: Settings) -> Iterator[str]:
    """The API in its own uvicorn process on ``settings``' store; yields its base URL."""
    import httpx

    port = free_port()
    env = {**os.environ, "GAM_STORE": "postgres", "GAM_POSTGRES_DSN": settings.postgres_dsn or "",
           "GAM_POSTGRES_SCHEMA": settings.postgres_schema or "", "GAM_JWT_SECRET": SECRET}  # fmt: skip
    command = [sys.executable, "-m", "uvicorn", "services.api.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                msg = "the API did not start"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def needs_if_match(base: str) -> dict[str, bool]:
    """Which endpoints of the mix change an existing entity (they answer 428 without If-Match)."""
    import httpx

    paths = httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]
    missing = [route for route in ROUTES.values() if "post" not in paths.get(route, {})]
    if missing:
        raise Unavailable(f"the API has no command endpoint for {', '.join(missing)}")
    return {route: "428" in paths[route]["post"].get("responses", {}) for route in ROUTES.values()}


def send_all(base: str, commands: Sequence[Command], guarded: dict[str, bool]) -> None:
    """One account's commands, in order, over one connection."""
    import httpx

    versions: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token()}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for command in commands:
            route = ROUTES[command.name]
            params = [part[1:-1] for part in route.split("/") if part.startswith("{")]
            path = route.format(**{p: command.kwargs[p] for p in params})
            body = {k: encode(v) for k, v in command.kwargs.items() if k not in params}
            if command.meta.reason:
                body["reason"] = command.meta.reason
            extra = {"X-Correlation-ID": str(uuid4())}
            if guarded[route]:
                extra["If-Match"] = f'"{versions[str(command.kwargs[params[0]])]}"'
            answer = client.post(path, json=body, headers=extra)
            if answer.status_code >= 300:
                msg = f"{command.name}: HTTP {answer.status_code} {answer.text[:500]}"
                raise RuntimeError(msg)
            accepted = answer.json()
            versions[accepted["entity_id"]] = accepted["version"]
            if command.name == "onboard_account":
                plan = plan_id_for(command.kwargs["account_id"], command.kwargs["fiscal_period"])
                versions[str(plan)] = 1


def commands_rate(settings: Settings, traces: Sequence[Sequence[Command]], concurrency: int) -> float:
    """Commands/s of the whole mix over HTTP, ``concurrency`` accounts in flight."""
    try:
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as missing:
        raise Unavailable(f"{missing.name} is not installed") from None
    with api_server(settings) as base:
        guarded = needs_if_match(base)
        lanes = [[trace for n, trace in enumerate(traces) if n % concurrency == lane] for lane in range(concurrency)]
        errors: list[BaseException] = []

        def work(lane: list[Sequence[Command]]) -> None:
            try:
                for trace in lane:
                    send_all(base, trace, guarded)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(lane,)) for lane in lanes if lane]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return sum(len(trace) for trace in traces) / elapsed

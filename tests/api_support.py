"""Calling the HTTP API in tests: tokens for every role, and a client on a store."""

from __future__ import annotations

import time
from collections.abc import Iterable
from uuid import UUID

import jwt
from fastapi.testclient import TestClient

SECRET = "test-secret-that-is-long-enough-for-hs256"


def token(
    subject: str,
    *roles: str,
    accounts: Iterable[UUID | str] = (),
    units: Iterable[UUID | str] = (),
    secret: str = SECRET,
    expires_in: int = 3600,
) -> dict[str, str]:
    claims = {
        "sub": subject,
        "roles": list(roles),
        "accounts": [str(a) for a in accounts],
        "units": [str(u) for u in units],
        "exp": int(time.time()) + expires_in,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


ADMIN = token("root@vendor.example", "admin")


def wait_for_views(client: TestClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(v["lag"] for v in client.get("/readyz").json()["views"].values()):
        assert time.monotonic() < deadline, "views never caught up"
        time.sleep(0.05)

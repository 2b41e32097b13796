"""Calling the HTTP API in tests: tokens for people (identity and global roles; what
they may do on an account comes from its team), and a client on a store."""

from __future__ import annotations

import time
from uuid import UUID

import jwt
from fastapi.testclient import TestClient

SECRET = "test-secret-that-is-long-enough-for-hs256"


def token(
    subject: str,
    *roles: str,
    secret: str = SECRET,
    expires_in: int = 3600,
) -> dict[str, str]:
    claims = {"sub": subject, "roles": list(roles), "exp": int(time.time()) + expires_in}
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


ADMIN = token("root@vendor.example", "admin")


def join_team(
    client: TestClient, account_id: UUID | str, member: str, role: str, unit_id: UUID | str, by: dict[str, str] = ADMIN
) -> None:
    """Put ``member`` on the account's team (by an admin unless ``by`` says who)."""
    etag = client.get(f"/accounts/{account_id}", headers=ADMIN).headers["etag"]
    body = {"member": member, "unit_id": str(unit_id), "role": role}
    response = client.post(f"/accounts/{account_id}/team", json=body, headers={**by, "If-Match": etag})
    assert response.status_code == 200, response.text


def leave_team(client: TestClient, account_id: UUID | str, member: str, role: str, unit_id: UUID | str) -> None:
    etag = client.get(f"/accounts/{account_id}", headers=ADMIN).headers["etag"]
    body = {"member": member, "unit_id": str(unit_id), "role": role}
    response = client.post(f"/accounts/{account_id}/team/remove", json=body, headers={**ADMIN, "If-Match": etag})
    assert response.status_code == 200, response.text


def wait_for_views(client: TestClient, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(v["lag"] for v in client.get("/readyz").json()["views"].values()):
        assert time.monotonic() < deadline, "views never caught up"
        time.sleep(0.05)

"""Who is calling, and what they may touch.

People come with bearer tokens (JWT via PyJWT: HS256 with ``GAM_JWT_SECRET``, or
RS256/ES256 with the PEM public key in ``GAM_JWT_PUBLIC_KEY_FILE``); services come
with an ``X-API-Key`` listed (as its SHA-256) in ``GAM_API_KEYS_FILE``. Either way
the caller becomes a :class:`Principal`: its subject is the actor of every event the
call causes, its roles and grants decide what it may do. A missing or bad
credential is 401; a valid one without the right is 403.

Claims: ``sub``; ``roles`` (gam, regional_manager, local_manager, viewer,
compliance, admin); ``accounts`` (ids of the accounts assigned or granted);
``units`` (ids of the units a regional or local manager runs).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import jwt
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from infra.settings import Settings
from services.observability import metrics

ROLES = frozenset({"gam", "regional_manager", "local_manager", "viewer", "compliance", "admin"})

bearer = HTTPBearer(
    auto_error=False,
    description="A JWT (HS256 with GAM_JWT_SECRET, or RS256/ES256): sub, roles, accounts, units.",
)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="A service's key (GAM_API_KEYS_FILE).")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    accounts: frozenset[UUID] = frozenset()
    units: frozenset[UUID] = frozenset()

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


class CredentialError(ValueError):
    """A credential that cannot be accepted; the message says why."""


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 300 or "\x00" in subject:
        raise CredentialError("sub must name the caller")
    return Principal(
        subject=subject,
        roles=frozenset(_names(claims.get("roles", []), "roles")),
        accounts=frozenset(_ids(claims.get("accounts", []), "accounts")),
        units=frozenset(_ids(claims.get("units", []), "units")),
    )


def _names(value: object, claim: str) -> Iterable[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CredentialError(f"{claim} must be a list of names")
    unknown = set(value) - ROLES
    if unknown:
        raise CredentialError(f"unknown role(s): {', '.join(sorted(unknown))}")
    return value


def _ids(value: object, claim: str) -> Iterable[UUID]:
    if not isinstance(value, list):
        raise CredentialError(f"{claim} must be a list of ids")
    try:
        return [UUID(str(v)) for v in value]
    except ValueError:
        raise CredentialError(f"{claim} must be a list of UUIDs") from None


@dataclass(frozen=True)
class Verifier:
    """Checks the credentials this server was configured to accept."""

    key: str | None
    algorithms: tuple[str, ...]
    api_keys: dict[str, dict[str, Any]]

    @classmethod
    def from_settings(cls, settings: Settings) -> Verifier:
        if settings.jwt_public_key_file is not None:
            key: str | None = settings.jwt_public_key_file.read_text()
            algorithms: tuple[str, ...] = ("RS256", "ES256")
        else:
            key, algorithms = settings.jwt_secret, ("HS256",)
        return cls(key, algorithms, load_api_keys(settings.api_keys_file))

    def token(self, token: str) -> Principal:
        if not self.key:
            raise CredentialError("this server accepts no tokens: no JWT key is configured")
        try:
            claims = jwt.decode(token, self.key, algorithms=list(self.algorithms), options={"require": ["sub", "exp"]})
        except jwt.PyJWTError as error:
            raise CredentialError(f"invalid token: {error}") from None
        return principal_from_claims(claims)

    def api_key(self, presented: str) -> Principal:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for known, claims in self.api_keys.items():
            if hmac.compare_digest(known, digest):
                return principal_from_claims(claims)
        raise CredentialError("unknown API key")


def load_api_keys(path: Path | None) -> dict[str, dict[str, Any]]:
    """``[{"sha256": "<hex of the key>", "sub": "crm-sync", "roles": [...], ...}]``:
    only digests are stored, so the file leaks no usable key."""
    if path is None:
        return {}
    entries = json.loads(path.read_text())
    return {str(e["sha256"]).lower(): {k: v for k, v in e.items() if k != "sha256"} for e in entries}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    api_key: Annotated[str | None, Security(api_key_header)],
) -> Principal:
    """``async`` though it awaits nothing: a token check takes microseconds, less than
    FastAPI's hop to its thread pool for a plain ``def`` dependency."""
    verifier: Verifier = request.app.state.verifier
    try:
        if credentials is not None:
            principal = verifier.token(credentials.credentials)
        elif api_key is not None:
            principal = verifier.api_key(api_key)
        else:
            raise CredentialError("a bearer token or an API key is required")
    except CredentialError as error:
        _limit(request, "failed_auth", request.client.host if request.client else "unknown")
        raise _unauthorized(str(error)) from None
    request.state.actor = principal.subject  # for the request's log line
    _limit(request, "principal", principal.subject)
    return principal


def _limit(request: Request, limit: str, key: str) -> None:
    """429 past the ``limit``'s rate for ``key`` (a caller; an address that keeps failing to
    authenticate, which is how tokens and API keys are guessed)."""
    limiter = getattr(request.app.state, f"rate_limit_{limit}", None)
    wait = limiter.retry_after(key) if limiter is not None else None
    if wait is not None:
        metrics.HTTP_RATE_LIMITED.labels(limit).inc()
        raise HTTPException(429, "too many requests; slow down", headers={"Retry-After": str(wait)})


Caller = Annotated[Principal, Depends(authenticate)]
"""Any authenticated caller; what they may read or write is checked per entity."""


def require_role(*allowed: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Caller) -> Principal:
        if not principal.has(*allowed):
            raise HTTPException(403, f"needs one of the roles: {', '.join(allowed)}")
        return principal

    return check


Compliance = Annotated[Principal, Depends(require_role("compliance", "admin"))]
"""Compliance officers and admins: time travel, diffs, exports, erasure."""

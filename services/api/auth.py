"""Who is calling, and what they may touch.

People come with bearer tokens (JWT via PyJWT): from an identity provider whose
keys are a JWKS (``GAM_JWT_JWKS_URL``, or ``GAM_JWT_JWKS_FILE``; PyJWT's
``PyJWKClient`` picks the key by the token's ``kid``), or signed HS256 with
``GAM_JWT_SECRET``, or RS256/ES256 with the PEM public key in
``GAM_JWT_PUBLIC_KEY_FILE``. ``GAM_JWT_ISSUER`` and ``GAM_JWT_AUDIENCE``, when
set, must match the token's ``iss`` and ``aud``. Services come with an
``X-API-Key`` listed (as its SHA-256) in ``GAM_API_KEYS_FILE``. Either way the
caller becomes a :class:`Principal`: its subject is the actor of every event the
call causes. A missing or bad credential is 401; a valid one without the right is 403.

A person's token carries identity (``sub``) and global roles only (admin,
compliance, viewer_all, account_creator): what they may do on an account follows
from the account's team (``domain.team``), so it changes the moment the team
does, with no new token. Any ``accounts``/``units`` claims in a token are ignored.
A service's API key may also carry the older grants: roles gam, regional_manager,
local_manager, viewer with ``accounts`` (ids of accounts) and ``units`` (ids of
the units a manager runs), since a service is on no account team; and
``personal_data``, the scope to fetch people's keys for the personal data gam
publishes sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol
from uuid import UUID

import jwt
from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK, PyJWKClient, PyJWKSet

from infra.settings import Settings
from services.api.problems import problem_responses
from services.observability import metrics

GLOBAL_ROLES = frozenset({"admin", "compliance", "viewer_all", "account_creator"})
"""The roles a person's token may carry; everything else comes from account teams."""
JWKS_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
"""Asymmetric only: a JWKS publishes public keys, and HS256 with a public key as secret is the classic forgery."""

PERSONAL_DATA_SCOPE = "personal_data"
"""A service's right to fetch people's keys and open the personal data gam publishes sealed
(``GET /compliance/personal-keys/{subject_id}``); only an API key may hold it."""
SERVICE_ROLES = GLOBAL_ROLES | {"gam", "regional_manager", "local_manager", "viewer", PERSONAL_DATA_SCOPE}
"""A service's API key may also hold grants by id, for it is on no account team."""

bearer = HTTPBearer(
    auto_error=False,
    description="A JWT (from the identity provider's JWKS, or HS256/RS256/ES256): sub and global roles.",
)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="A service's key (GAM_API_KEYS_FILE).")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    accounts: frozenset[UUID] = frozenset()
    units: frozenset[UUID] = frozenset()
    service: bool = False
    """A service (API key): its ``accounts``/``units`` grants count; a person's rights come from teams."""

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


class CredentialError(ValueError):
    """A credential that cannot be accepted; the message says why."""


def principal_from_claims(claims: dict[str, Any], *, service: bool = False) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 300 or "\x00" in subject:
        raise CredentialError("sub must name the caller")
    roles = frozenset(_names(claims.get("roles", []), "roles", SERVICE_ROLES if service else GLOBAL_ROLES))
    if not service:
        return Principal(subject=subject, roles=roles)
    return Principal(
        subject=subject,
        roles=roles,
        accounts=frozenset(_ids(claims.get("accounts", []), "accounts")),
        units=frozenset(_ids(claims.get("units", []), "units")),
        service=True,
    )


def _names(value: object, claim: str, known: frozenset[str]) -> Iterable[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CredentialError(f"{claim} must be a list of names")
    unknown = set(value) - known
    if unknown:
        raise CredentialError(f"unknown role(s): {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    return value


def _ids(value: object, claim: str) -> Iterable[UUID]:
    if not isinstance(value, list):
        raise CredentialError(f"{claim} must be a list of ids")
    try:
        return [UUID(str(v)) for v in value]
    except ValueError:
        raise CredentialError(f"{claim} must be a list of UUIDs") from None


class KeySource(Protocol):
    def get_signing_key_from_jwt(self, token: str) -> PyJWK: ...


class JWKSFile:
    """An identity provider's JWKS kept as a local file (PyJWT's client reads only
    http(s)); read again when a token names a key it does not hold, so a rotated
    key is picked up by replacing the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys = self._read()

    def _read(self) -> PyJWKSet:
        try:
            return PyJWKSet.from_json(self.path.read_text())
        except (OSError, jwt.PyJWKSetError) as error:
            raise CredentialError(f"the JWKS file {self.path} cannot be read: {error}") from None

    def get_signing_key_from_jwt(self, token: str) -> PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        for keys in (self._keys, None):
            if keys is None:
                keys = self._keys = self._read()
            for key in keys.keys:
                if key.key_id == kid:
                    return key
        raise jwt.PyJWKClientError(f"no key with kid {kid!r} in {self.path}")


VERIFIED_SECONDS = 60.0
"""How long a verified token is trusted without checking it again. A key withdrawn from
the JWKS stops being accepted this much later at most."""
VERIFIED_KEPT = 10_000


@dataclass(frozen=True)
class Verifier:
    """Checks the credentials this server was configured to accept."""

    key: str | None
    algorithms: tuple[str, ...]
    api_keys: dict[str, dict[str, Any]]
    jwks: KeySource | None = None
    issuer: str | None = None
    audience: str | None = None
    _verified: dict[str, tuple[Principal, float]] = field(default_factory=dict, compare=False, repr=False)
    """Tokens verified lately: their principal and until when it is trusted."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Verifier:
        jwks: KeySource | None = None
        if settings.jwt_jwks_url is not None:
            # The key set is cached for five minutes; an unknown kid (a rotated key) refetches it.
            jwks, key, algorithms = PyJWKClient(settings.jwt_jwks_url, lifespan=300, timeout=5), None, JWKS_ALGORITHMS
        elif settings.jwt_jwks_file is not None:
            jwks, key, algorithms = JWKSFile(settings.jwt_jwks_file), None, JWKS_ALGORITHMS
        elif settings.jwt_public_key_file is not None:
            key, algorithms = settings.jwt_public_key_file.read_text(), ("RS256", "ES256")
        else:
            key, algorithms = settings.jwt_secret, ("HS256",)
        return cls(
            key,
            algorithms,
            load_api_keys(settings.api_keys_file),
            jwks,
            settings.jwt_issuer,
            settings.jwt_audience,
        )

    def token(self, token: str) -> Principal:
        """The token's principal. A token verified here is remembered for up to
        :data:`VERIFIED_SECONDS` (never past its ``exp``): checking a signature again on
        every request was a twentieth of the API process's CPU per command."""
        now = time.time()
        known = self._verified.get(token)
        if known is not None and known[1] > now:
            return known[0]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()
        self._verified[token] = (principal, min(expires, now + VERIFIED_SECONDS))
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        key: Any = self.key
        try:
            if self.jwks is not None:
                key = self.jwks.get_signing_key_from_jwt(token)
            elif not key:
                raise CredentialError("this server accepts no tokens: no JWT key is configured")
            required = ["sub", "exp"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                audience=self.audience,
                options={"require": required, "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as error:
            raise CredentialError(f"invalid token: {error}") from None
        return principal_from_claims(claims), float(claims["exp"])

    def api_key(self, presented: str) -> Principal:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for known, claims in self.api_keys.items():
            if hmac.compare_digest(known, digest):
                return principal_from_claims(claims, service=True)
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


def compliance_router(errors: Mapping[int, str]) -> APIRouter:
    """A router under ``/compliance``, whose routes are for the compliance and admin roles
    (each takes :data:`Compliance`): their 401 and 403 are documented once, here, besides
    the router's own ``errors``."""
    described = {401: "No valid credential", 403: "Only the compliance and admin roles may do this", **errors}
    return APIRouter(prefix="/compliance", tags=["compliance"], responses=problem_responses(described))


"""Compliance officers and admins: time travel, diffs, exports, erasure."""


async def require_personal_data_scope(principal: Caller) -> Principal:
    if not (principal.service and principal.has(PERSONAL_DATA_SCOPE)):
        raise HTTPException(403, f"needs a service API key with the {PERSONAL_DATA_SCOPE} scope")
    return principal


PersonalDataService = Annotated[Principal, Depends(require_personal_data_scope)]
"""A downstream service holding the ``personal_data`` scope: fetches people's keys."""

"""Who is calling: bearer tokens (JWT, HS256, key from ``GAM_JWT_SECRET``, via
PyJWT). The token's ``sub`` becomes the actor of every event the call causes;
its ``roles`` decide what it may do. A missing or bad token is 401, a valid
token without the role 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="A JWT signed with GAM_JWT_SECRET (HS256): sub, roles.")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    secret: str | None = request.app.state.jwt_secret
    if credentials is None:
        raise _unauthorized("a bearer token is required")
    if not secret:
        raise _unauthorized("this server accepts no tokens: GAM_JWT_SECRET is not set")
    try:
        claims = jwt.decode(credentials.credentials, secret, algorithms=["HS256"], options={"require": ["sub"]})
    except jwt.PyJWTError as error:
        raise _unauthorized(f"invalid token: {error}") from None
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _unauthorized("invalid token: roles must be a list of names")
    return Principal(str(claims["sub"]), frozenset(roles))


def require_role(*allowed: str) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.roles & set(allowed):
            raise HTTPException(403, f"needs one of the roles: {', '.join(allowed)}")
        return principal

    return check


Compliance = Annotated[Principal, Depends(require_role("compliance", "admin"))]
"""Compliance officers and admins: time travel, diffs, exports, erasure."""

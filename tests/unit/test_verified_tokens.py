"""A verified token is remembered, but never trusted past its expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from services.api.auth import CredentialError, Verifier

SECRET = "s" * 32


def signed(subject: str, expires_in: float, secret: str = SECRET) -> str:
    claims = {"sub": subject, "roles": ["admin"], "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    verifier = Verifier(SECRET, ("HS256",), {})
    token = signed("ada@vendor.example", expires_in=1)
    assert verifier.token(token).subject == "ada@vendor.example"
    assert verifier.token(token).subject == "ada@vendor.example"  # remembered
    time.sleep(2.1)  # exp has whole seconds
    with pytest.raises(CredentialError):
        verifier.token(token)


def test_a_token_signed_with_another_key_is_refused_even_beside_a_remembered_one() -> None:
    verifier = Verifier(SECRET, ("HS256",), {})
    assert verifier.token(signed("ada@vendor.example", expires_in=60)).subject == "ada@vendor.example"
    with pytest.raises(CredentialError):
        verifier.token(signed("ada@vendor.example", expires_in=60, secret="x" * 32))

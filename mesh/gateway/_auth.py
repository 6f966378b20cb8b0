"""Authentication at the gateway: HS256 JSON Web Tokens (PyJWT) with OAuth-style scopes.

:meth:`Tokens.issue` makes a token for a subject with space-separated ``scope`` and an expiry;
:meth:`Tokens.check` returns the verified claims or raises :class:`AuthError` with the HTTP status
the gateway answers: 401 for a missing, malformed, forged or expired token, 403 for a valid one
without the scope the route needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import jwt


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Tokens:
    ALGORITHM = "HS256"

    def __init__(self, secret: str, issuer: str = "workbench-gateway", now: Callable[[], float] = time.time):
        if len(secret) < 32:
            raise ValueError("an HS256 secret should be at least 32 characters")
        self._secret = secret
        self._issuer = issuer
        self._now = now

    def issue(self, subject: str, scopes: Iterable[str] = (), ttl: float = 3600.0) -> str:
        """Return a signed token for ``subject`` with ``scopes``, valid for ``ttl`` seconds."""
        now = self._now()
        claims = {"sub": subject, "iss": self._issuer, "iat": int(now), "exp": int(now + ttl),
                  "scope": " ".join(scopes)}
        return jwt.encode(claims, self._secret, algorithm=self.ALGORITHM)

    def check(self, authorization: str | None, scope: str) -> dict:
        """Verify an ``Authorization: Bearer <token>`` header; return the token's claims."""
        if not authorization:
            raise AuthError(401, "this route needs a token: send 'Authorization: Bearer <token>'")
        kind, _, token = authorization.partition(" ")
        if kind.lower() != "bearer" or not token:
            raise AuthError(401, "the Authorization header must be 'Bearer <token>'")
        try:  # expiry is checked below, on this object's clock (PyJWT would read the system clock)
            claims = jwt.decode(token, self._secret, algorithms=[self.ALGORITHM], issuer=self._issuer,
                                options={"require": ["exp", "sub"], "verify_exp": False})
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, f"the token is not valid: {exc}") from None
        expiry = claims["exp"]
        if type(expiry) not in (int, float) or not math.isfinite(expiry):  # bool, str, Infinity, NaN
            raise AuthError(401, "the token's exp must be a finite NumericDate (seconds since 1970)")
        if expiry <= self._now():  # RFC 7519 4.1.4: at exp the token is no longer valid
            raise AuthError(401, "the token has expired")
        if scope and scope not in str(claims.get("scope", "")).split():
            raise AuthError(403, f"the token of {claims['sub']!r} lacks the scope {scope!r}")
        return claims

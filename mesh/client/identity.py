"""Service-to-service identity (安全): who is calling, proved, and who may call whom.

``x-caller`` names the calling service, but any code can write any header: it is a claim, not a
proof. Here every caller also sends ``x-identity``, a token the mesh signed for it (HS256 JWT,
PyJWT: ``sub`` the service, ``aud`` the mesh *and the service called*, a short ``exp``); a service
that has an access rule (``mesh.allow_callers("fraud", ["payments"])``) checks the token on every
call of every kind — unary and streaming alike (:class:`mesh.interceptors.ServerIdentity`) — and
refuses a call without a valid one (``UNAUTHENTICATED``) or from a service not in its rule
(``PERMISSION_DENIED``). Because the audience names the callee, a token is good for one callee
only: a service that receives a caller's token cannot replay it against another service. Services
without a rule accept every caller, and callers send no token while no rule exists anywhere (a
token costs each call its bytes and a signature check).

The mesh's operator (the notebook that started it) has an identity too, :data:`OPERATOR`: it is
the only caller a service with an access rule lets read its admin interface (its settings,
breakers and recent errors).

This is what a production mesh does with mutual TLS and SPIFFE identities (a certificate per
workload, issued by the mesh's authority, checked at every connection); a signed token shows the
same idea — identity proved by a signature the mesh issued, authorisation by rule — without
certificates, and is checked per call rather than per connection.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable

import grpc
import jwt

__all__ = ["OPERATOR", "Identities", "IdentityError"]

ALGORITHM = "HS256"
#: The subject of the operator's identity: the kernel that started the mesh.
OPERATOR = "mesh-operator"


class IdentityError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class Identities:
    """The mesh's authority: it signs each service's identity and keeps who may call whom."""

    def __init__(self, mesh: str, secret: str | None = None, ttl: float = 600.0,
                 clock: Callable[[], float] = time.time):
        self._mesh, self._ttl, self._clock = mesh, ttl, clock
        self._secret = secret or secrets.token_hex(32)
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], tuple[float, str]] = {}  # (caller, callee) -> (renew at, token)
        self._rules: dict[str, frozenset[str]] = {}

    @property
    def active(self) -> bool:
        """Whether any service checks its callers (only then do callers send their token)."""
        return bool(self._rules)

    def allow_callers(self, service: str, callers: Iterable[str] | None) -> None:
        """Let only ``callers`` call ``service`` (``None``: anyone, as without a rule)."""
        with self._lock:
            if callers is None:
                self._rules.pop(service, None)
            else:
                self._rules[service] = frozenset(callers)

    def rule(self, service: str) -> frozenset[str] | None:
        return self._rules.get(service)

    def rules(self) -> dict[str, frozenset[str]]:
        """Every access rule in force, by service."""
        with self._lock:
            return dict(self._rules)

    @property
    def secret(self) -> str:
        """The signing key, for the processes of the same mesh (which must verify its tokens)."""
        return self._secret

    def audience(self, callee: str) -> str:
        """The audience of a token for calls to ``callee``: this mesh and that service."""
        return f"mesh:{self._mesh}/{callee}"

    def token(self, service: str, callee: str) -> str:
        """Return ``service``'s identity for calls to ``callee``, signed anew when most of its life
        has passed."""
        now = self._clock()
        with self._lock:
            renew, token = self._tokens.get((service, callee), (0.0, ""))
            if now >= renew:
                claims = {"sub": service, "aud": self.audience(callee), "iat": int(now),
                          "exp": int(now + self._ttl)}
                token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
                if len(self._tokens) >= 4096:
                    self._tokens.clear()
                self._tokens[(service, callee)] = (now + 0.8 * self._ttl, token)
        return token

    def verify(self, token: str, callee: str) -> str:
        """Return the service a token proves to ``callee``, or raise :class:`IdentityError` saying
        why not (a token issued for calls to another service is refused: a replay)."""
        if not token:
            raise IdentityError(grpc.StatusCode.UNAUTHENTICATED,
                                "no identity: the call carries no x-identity token")
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], audience=self.audience(callee),
                                options={"require": ["sub", "exp", "aud"], "verify_exp": False})
        except jwt.InvalidAudienceError:
            raise IdentityError(grpc.StatusCode.UNAUTHENTICATED,
                                f"the identity was not issued for calls to {callee} in this mesh (a token "
                                "is good only for the service it was sent to: a replay?)") from None
        except jwt.InvalidTokenError as exc:
            raise IdentityError(grpc.StatusCode.UNAUTHENTICATED,
                                f"the identity is not valid: {exc}") from None
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= self._clock():
            raise IdentityError(grpc.StatusCode.UNAUTHENTICATED, "the identity has expired")
        return str(claims["sub"])

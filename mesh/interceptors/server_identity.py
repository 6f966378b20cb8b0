"""Server side: check the caller's signed identity against the service's access rule (see
:mod:`mesh.client.identity`) on every call of every kind — unary, server streaming, client
streaming and bidirectional. A service without a rule lets every call in.

With a rule, the admin interface (its settings, breakers and recent errors) answers the mesh's
operator only (:data:`~mesh.client.identity.OPERATOR`); the health service and reflection stay
open to all (:data:`~._wrap.OPEN_PREFIXES` says why).
"""

from __future__ import annotations

import grpc

from ..client.headers import IDENTITY
from ..client.identity import OPERATOR, Identities, IdentityError
from ._wrap import ADMIN_PREFIX, WrappedHandlers, guard_every_kind, metadata_value


class ServerIdentity(grpc.ServerInterceptor):
    """Check the caller's identity against ``service``'s rule (no rule: let every call in)."""

    def __init__(self, identities: Identities, service: str):
        self._identities, self._service = identities, service
        self._handlers = WrappedHandlers(guard_every_kind)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        check = self._check_admin if method.startswith(ADMIN_PREFIX) else self._check
        return self._handlers.wrap(continuation(handler_call_details), method, lambda: check)

    def _caller(self, context: grpc.ServicerContext) -> str:
        try:
            return self._identities.verify(metadata_value(context, IDENTITY), self._service)
        except IdentityError as exc:
            context.abort(exc.code, exc.message)

    def _check(self, context: grpc.ServicerContext) -> None:
        allowed = self._identities.rule(self._service)
        if allowed is not None:
            caller = self._caller(context)
            if caller not in allowed:
                names = ", ".join(sorted(allowed))
                context.abort(grpc.StatusCode.PERMISSION_DENIED,
                              f"{caller} may not call {self._service} (allowed: {names})")

    def _check_admin(self, context: grpc.ServicerContext) -> None:
        if self._identities.rule(self._service) is not None:
            caller = self._caller(context)
            if caller != OPERATOR:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{caller} may not read {self._service}'s "
                              "admin interface (the mesh's operator only)")

"""Server side: check the caller's signed identity against the service's access rule (see
:mod:`mesh.client.identity`); a service without a rule lets every call in."""

from __future__ import annotations

import grpc

from ..client.headers import IDENTITY
from ..client.identity import Identities, IdentityError
from ._wrap import WrappedHandlers, metadata_value


class ServerIdentity(grpc.ServerInterceptor):
    """Check the caller's identity against ``service``'s rule (no rule: let every call in)."""

    def __init__(self, identities: Identities, service: str):
        self._identities, self._service = identities, service
        self._handlers = WrappedHandlers()

    def intercept_service(self, continuation, handler_call_details):
        return self._handlers.wrap(continuation(handler_call_details), handler_call_details.method,
                                   lambda: self._around)

    def _around(self, behaviour, request, context: grpc.ServicerContext):
        allowed = self._identities.rule(self._service)
        if allowed is not None:
            try:
                caller = self._identities.verify(metadata_value(context, IDENTITY))
            except IdentityError as exc:
                context.abort(exc.code, exc.message)
            if caller not in allowed:
                names = ", ".join(sorted(allowed))
                context.abort(grpc.StatusCode.PERMISSION_DENIED,
                              f"{caller} may not call {self._service} (allowed: {names})")
        return behaviour(request, context)

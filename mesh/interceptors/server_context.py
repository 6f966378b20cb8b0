"""Server side: record who is serving and by when the caller needs the answer; refuse late calls.

Sets :data:`mesh.client.inbound` for the handler, so its outgoing calls carry the caller's
deadline on (a callee never works past its caller's deadline) and name their caller. A call whose
deadline has already passed is answered DEADLINE_EXCEEDED without running the handler.
"""

from __future__ import annotations

import time

import grpc

from ..client import Inbound, inbound
from ._wrap import WrappedHandlers


class ServerContext(grpc.ServerInterceptor):
    def __init__(self, service: str, instance: str, mesh: str = ""):
        self._service = service
        self._instance = instance
        self._mesh = mesh
        self._handlers = WrappedHandlers()

    def intercept_service(self, continuation, handler_call_details):
        return self._handlers.wrap(continuation(handler_call_details), handler_call_details.method,
                                   lambda: self._around)

    def _around(self, behaviour, request, context: grpc.ServicerContext):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call started")
        deadline = None if remaining is None else time.monotonic() + remaining
        token = inbound.set(Inbound(self._service, self._instance, deadline, self._mesh))
        try:
            return behaviour(request, context)
        finally:
            inbound.reset(token)

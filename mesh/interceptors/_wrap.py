"""Wrap the behaviour of a handler, once per handler: the unary-unary behaviour (what the server
interceptors that measure, trace and fault calls do), or a check before a handler of any kind (what
the identity check does: a stream is no way around it)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

HEALTH_PREFIX = "/grpc.health.v1.Health/"
ADMIN_PREFIX = "/admin.Admin/"
REFLECTION_PREFIX = "/grpc.reflection."
#: Operators' services, served beside every instance's own: never traced, measured or faulted.
OPERATOR_PREFIXES = (HEALTH_PREFIX, ADMIN_PREFIX, REFLECTION_PREFIX)
#: What every caller may reach, access rules or not: the health service (the registry's checks and
#: every balancer ask it, and it tells only SERVING or not) and reflection (the service's schema,
#: which its .proto already publishes).
OPEN_PREFIXES = (HEALTH_PREFIX, REFLECTION_PREFIX)

Around = Callable[[Callable, object, grpc.ServicerContext], object]


def wrap_unary(handler: grpc.RpcMethodHandler | None, method: str, around: Around):
    """Return ``handler`` with its unary-unary behaviour run through ``around(behaviour, request, ctx)``.

    Health checks, the admin interface, reflection and streaming methods pass through untouched.
    """
    if handler is None or handler.unary_unary is None or method.startswith(OPERATOR_PREFIXES):
        return handler
    inner = handler.unary_unary
    return grpc.unary_unary_rpc_method_handler(
        lambda request, context: around(inner, request, context),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


_KINDS = (("unary_unary", grpc.unary_unary_rpc_method_handler),
          ("unary_stream", grpc.unary_stream_rpc_method_handler),
          ("stream_unary", grpc.stream_unary_rpc_method_handler),
          ("stream_stream", grpc.stream_stream_rpc_method_handler))


def guard_every_kind(handler: grpc.RpcMethodHandler | None, method: str,
                     check: Callable[[grpc.ServicerContext], None]):
    """Return ``handler`` with ``check(context)`` run before its behaviour, whichever of the four
    kinds of call it serves (``check`` aborts the call to refuse it). The health service and
    reflection pass through untouched (:data:`OPEN_PREFIXES`)."""
    if handler is None or method.startswith(OPEN_PREFIXES):
        return handler
    for kind, build in _KINDS:
        inner = getattr(handler, kind)
        if inner is not None:
            def checked(request_or_requests, context, inner=inner):
                check(context)
                return inner(request_or_requests, context)

            return build(checked, request_deserializer=handler.request_deserializer,
                         response_serializer=handler.response_serializer)
    return handler


class WrappedHandlers:
    """The handlers one server interceptor has wrapped, kept so that each is wrapped only once.

    gRPC asks each interceptor for the handler of every call; building a new one each time costs
    every call microseconds per interceptor. A server's handlers do not change while it runs, so
    the wrapped handler is kept, keyed by the method and the handler it wraps.
    """

    LIMIT = 512  # handlers of servers since stopped are dropped past this many

    def __init__(self, wrap: Callable = wrap_unary):
        self._wrap = wrap  # wrap_unary, or guard_every_kind
        self._wrapped: dict[tuple[str, int], tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def wrap(self, handler: grpc.RpcMethodHandler | None, method: str,
             make_around: Callable[[], Callable]) -> grpc.RpcMethodHandler | None:
        """Return ``handler`` wrapped by what ``make_around()`` makes (made on first use): the
        ``around`` of :func:`wrap_unary`, or the ``check`` of :func:`guard_every_kind`."""
        if handler is None:
            return None
        key = (method, id(handler))
        found = self._wrapped.get(key)
        if found is not None and found[0] is handler:
            return found[1]
        wrapped = self._wrap(handler, method, make_around())
        if len(self._wrapped) >= self.LIMIT:
            self._wrapped.clear()
        self._wrapped[key] = (handler, wrapped)  # a lost race only wraps the same handler twice
        return wrapped


def status_name(context: grpc.ServicerContext, failed: bool) -> str:
    """Return the status a handler ended with (UNKNOWN for an exception that set none)."""
    code = context.code() if hasattr(context, "code") else None
    if code is None:
        return "UNKNOWN" if failed else "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


def run_reporting(behaviour, request, context: grpc.ServicerContext, report: Callable[[str], None]):
    """Run the handler and then ``report(status)`` with how it ended, whether it returned or raised."""
    failed = True
    try:
        response = behaviour(request, context)
        failed = False
        return response
    finally:
        report(status_name(context, failed))


def metadata_value(context: grpc.ServicerContext, key: str, default: str = "") -> str:
    for k, v in context.invocation_metadata():
        if k == key:
            return v
    return default

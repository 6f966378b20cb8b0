"""Wrap the behaviour of a unary-unary handler (what every server interceptor here does)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

HEALTH_PREFIX = "/grpc.health.v1.Health/"

Around = Callable[[Callable, object, grpc.ServicerContext], object]


def wrap_unary(handler: grpc.RpcMethodHandler | None, method: str, around: Around):
    """Return ``handler`` with its unary-unary behaviour run through ``around(behaviour, request, ctx)``.

    Health checks and streaming methods pass through untouched.
    """
    if handler is None or handler.unary_unary is None or method.startswith(HEALTH_PREFIX):
        return handler
    inner = handler.unary_unary
    return grpc.unary_unary_rpc_method_handler(
        lambda request, context: around(inner, request, context),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


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

"""Run a unary client interceptor around a channel's calls, without ``grpc.intercept_channel``'s
per-call wrappers.

Written by hand because ``grpc.intercept_channel`` builds, for every call, a details object, a
continuation closure that unpacks it again and an outcome wrapper, and runs generic checks for
every kind of interceptor; for the mesh's single unary interceptor that plumbing cost about as
much as the policies themselves (measured with ``bench/client_stack.py``). The contract is gRPC's:
the interceptor's ``intercept_unary_unary(continuation, details, request)`` gets
:class:`CallDetails` and returns an outcome that is both a ``grpc.Call`` and a ``grpc.Future``;
the continuation returns such an outcome and never raises. Any ``grpc.UnaryUnaryClientInterceptor``
works here and with ``grpc.intercept_channel`` alike. Unary-unary calls only: the mesh balances no
streams.
"""

from __future__ import annotations

import sys
from collections import namedtuple

import grpc

from ..client.outcome import Answered, Completed, Failed


class CallDetails(namedtuple("CallDetails", ("method", "timeout", "metadata", "credentials",
                                             "wait_for_ready", "compression")), grpc.ClientCallDetails):
    """The ``grpc.ClientCallDetails`` of one call (or of one attempt of it)."""


class InterceptedChannel(grpc.Channel):
    """``channel`` with ``interceptor`` around each of its unary-unary calls."""

    def __init__(self, channel: grpc.Channel, interceptor: grpc.UnaryUnaryClientInterceptor):
        self._channel = channel
        self._interceptor = interceptor

    def unary_unary(self, method, request_serializer=None, response_deserializer=None,
                    _registered_method=False):
        inner = self._channel.unary_unary(method, request_serializer, response_deserializer,
                                          _registered_method=_registered_method)
        return _InterceptedUnary(method, inner, self._interceptor)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        raise NotImplementedError("unary-unary calls only")

    def stream_unary(self, method, request_serializer=None, response_deserializer=None,
                     _registered_method=False):
        raise NotImplementedError("unary-unary calls only")

    def stream_stream(self, method, request_serializer=None, response_deserializer=None,
                      _registered_method=False):
        raise NotImplementedError("unary-unary calls only")

    def subscribe(self, callback, try_to_connect=False):
        self._channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback):
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> InterceptedChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _InterceptedUnary:
    """A unary multi-callable whose every invocation goes through the interceptor."""

    __slots__ = ("_answer", "_intercept", "_method", "_response")

    def __init__(self, method: str, inner, interceptor: grpc.UnaryUnaryClientInterceptor):
        self._method = method
        self._intercept = interceptor.intercept_unary_unary

        def answer(details: grpc.ClientCallDetails, request):
            """The continuation when the caller wants the call too (``with_call``, ``future``)."""
            try:
                response, call = inner.with_call(
                    request, timeout=details.timeout, metadata=details.metadata,
                    credentials=details.credentials, wait_for_ready=details.wait_for_ready,
                    compression=details.compression)
            except grpc.RpcError as error:
                return error
            except Exception as error:  # handed to the interceptor as an outcome, as gRPC does
                return Failed(error, sys.exc_info()[2])
            return Answered(response, call)

        def response(details: grpc.ClientCallDetails, request):
            """The continuation when the caller wants the response only (skips making a call object)."""
            try:
                return Completed(inner(
                    request, timeout=details.timeout, metadata=details.metadata,
                    credentials=details.credentials, wait_for_ready=details.wait_for_ready,
                    compression=details.compression))
            except grpc.RpcError as error:
                return error
            except Exception as error:  # handed to the interceptor as an outcome, as gRPC does
                return Failed(error, sys.exc_info()[2])

        self._answer = answer
        self._response = response

    def outcome(self, continuation, request, timeout, metadata, credentials, wait_for_ready, compression):
        details = CallDetails(self._method, timeout, metadata, credentials, wait_for_ready, compression)
        return self._intercept(continuation, details, request)

    def __call__(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None,
                 compression=None):
        return self.outcome(self._response, request, timeout, metadata, credentials, wait_for_ready,
                             compression).result()

    def with_call(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None,
                  compression=None):
        outcome = self.outcome(self._answer, request, timeout, metadata, credentials, wait_for_ready,
                                compression)
        return outcome.result(), outcome

    def future(self, request, timeout=None, metadata=None, credentials=None, wait_for_ready=None,
               compression=None):
        """Return the call's outcome as a ``grpc.Future``, already finished: the interceptor needs
        each attempt's result before it can decide on the next, so the call runs here."""
        return self.outcome(self._answer, request, timeout, metadata, credentials, wait_for_ready,
                             compression)

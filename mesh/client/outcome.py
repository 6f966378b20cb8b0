"""Call outcomes the mesh makes itself: a gRPC error it raises, or an answer it gives in place.

Client interceptors must return objects that behave like gRPC's own call outcomes (both a
``grpc.Call`` and a ``grpc.Future``). :class:`MeshRpcError` is a failed one (a rejection by a
breaker, limiter or bulkhead, or no instance to call); :class:`Completed` a successful one that
no server produced (a fallback answer); :class:`Answered` a server's answer with its call, and
:class:`Failed` an exception that is not a gRPC error (raised again by ``result()``).
"""

from __future__ import annotations

import grpc


class _Finished(grpc.Call, grpc.Future):
    """The parts of ``grpc.Call`` and ``grpc.Future`` that every finished outcome shares."""

    def __init__(self, metadata: tuple = ()):
        self._metadata = tuple(metadata)

    def initial_metadata(self):
        return self._metadata

    def trailing_metadata(self):
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self):
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def traceback(self, timeout=None):
        return None

    def add_done_callback(self, fn) -> None:
        fn(self)


class MeshRpcError(grpc.RpcError, _Finished):
    """An error the mesh raises on the client side, with a gRPC status code."""

    def __init__(self, code: grpc.StatusCode, details: str, metadata: tuple = ()):
        grpc.RpcError.__init__(self, f"{code.name}: {details}")
        _Finished.__init__(self, metadata)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def result(self, timeout=None):
        raise self

    def exception(self, timeout=None):
        return self


class Completed(_Finished):
    """A successful outcome with ``response``, made by the mesh (e.g. a fallback)."""

    def __init__(self, response, metadata: tuple = ()):
        super().__init__(metadata)
        self._response = response

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.OK

    def details(self) -> str:
        return ""

    def result(self, timeout=None):
        return self._response

    def exception(self, timeout=None):
        return None


class Answered(Completed):
    """A server's successful answer, with the ``grpc.Call`` it came on (for its metadata)."""

    def __init__(self, response, call):
        super().__init__(response)
        self._call = call

    def initial_metadata(self):
        return self._call.initial_metadata()

    def trailing_metadata(self):
        return self._call.trailing_metadata()


class Failed(_Finished):
    """A call that ended in an exception other than a gRPC error (a bug, a closed channel)."""

    def __init__(self, error: BaseException, traceback=None):
        super().__init__()
        self._error = error
        self._traceback = traceback

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNKNOWN

    def details(self) -> str:
        return str(self._error)

    def result(self, timeout=None):
        raise self._error.with_traceback(self._traceback)

    def exception(self, timeout=None):
        return self._error

    def traceback(self, timeout=None):
        return self._traceback


#: The details gRPC gives a call its own caller cancelled (grpc/_channel.py).
LOCALLY_CANCELLED = "Locally cancelled by application!"


def as_seen_by_caller(outcome, instance: str):
    """Return ``outcome`` as the call plan must see it: a call the *server* cut off (CANCELLED,
    not cancelled by its caller) is an instance that went away mid-call, which is UNAVAILABLE —
    retried by the default policy, counted by breakers and outlier detection like any crash."""
    error = outcome.exception() if hasattr(outcome, "exception") else None
    if (error is not None and hasattr(error, "code") and error.code() == grpc.StatusCode.CANCELLED
            and error.details() != LOCALLY_CANCELLED):
        return MeshRpcError(grpc.StatusCode.UNAVAILABLE,
                            f"{instance} went away mid-call (the server cancelled it: {error.details()})")
    return outcome


def status_of(outcome) -> str:
    """Return the status code name of a call outcome (``OK`` for a success)."""
    return code_of(outcome.exception() if hasattr(outcome, "exception") else None)


def code_of(error: BaseException | None) -> str:
    """Return the status code name a call ended with: ``OK`` without an error, the error's code, or
    ``UNKNOWN`` for an error that carries none."""
    if error is None:
        return "OK"
    code = error.code() if hasattr(error, "code") else None
    return code.name if code is not None else "UNKNOWN"

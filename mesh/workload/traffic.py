"""Send calls through a client and record, for each one, when it began, who answered and how it ended."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from ..client.headers import FALLBACK, SERVED_BY
from ..client.outcome import code_of


@dataclass(frozen=True)
class CallRecord:
    """One finished call: when it began (seconds since its run or burst began), how long it took,
    its status code, the instance that served it ('' if none did), and why a fallback answered
    instead ('' if none did). Load runs and bursts both give these."""

    start: float
    latency: float
    code: str
    served_by: str
    fallback: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "OK"


def initial_metadata(call: Any) -> dict[str, str]:
    """Return a finished call's initial metadata as a dict — of a call that answered, or of the
    error a failed one raised (empty when no server sent any)."""
    metadata = call.initial_metadata() if hasattr(call, "initial_metadata") else None
    return dict(metadata or ())


def timed(call: Callable[[], Any]) -> tuple[Any, grpc.RpcError | None, float]:
    """Make a call; return what it returned (None if it failed), the error it failed with, and the
    seconds it took."""
    started = time.perf_counter()
    try:
        result, error = call(), None
    except grpc.RpcError as exc:
        result, error = None, exc
    return result, error, time.perf_counter() - started


def observe(method: Callable[..., Any], request: Any, timeout: float, start: float = 0.0) -> CallRecord:
    """Make one call (which began ``start`` seconds into its run) and return its record.

    A failed call has the metadata its server sent before failing (``x-served-by`` when an instance
    took the call and then failed it), or none if no server answered.
    """
    result, error, latency = timed(lambda: method.with_call(request, timeout=timeout))
    metadata = initial_metadata(error if error is not None else result[1])
    return CallRecord(start, latency, code_of(error), metadata.get(SERVED_BY, ""), metadata.get(FALLBACK, ""))


def burst(method: Callable[..., Any], request: Any, calls: int = 30,
          timeout: float = 2.0) -> list[CallRecord]:
    """Make ``calls`` sequential calls of a stub method and return one record per call."""
    began = time.perf_counter()
    return [observe(method, request, timeout, start=time.perf_counter() - began) for _ in range(calls)]


def tally(records: Iterable[CallRecord]) -> Counter:
    """Count calls by the instance that served them; failed calls count under their status code."""
    return Counter(r.served_by if r.ok else r.code for r in records)

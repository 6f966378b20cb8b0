"""Send calls through a client and record, for each one, who answered and how it ended."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from ..client.headers import SERVED_BY


@dataclass(frozen=True)
class CallRecord:
    """One call: the instance that served it ('' if none did), its status code, its latency."""

    served_by: str
    code: str
    latency: float

    @property
    def ok(self) -> bool:
        return self.code == "OK"


def initial_metadata(call: Any) -> dict[str, str]:
    """Return a finished call's initial metadata as a dict — of a call that answered, or of the
    error a failed one raised (empty when no server sent any)."""
    metadata = call.initial_metadata() if hasattr(call, "initial_metadata") else None
    return dict(metadata or ())


def observe(method: Callable[..., Any], request: Any, timeout: float) -> tuple[str, dict[str, str], float]:
    """Make one call; return its status code, its initial metadata, its latency.

    A failed call has the metadata its server sent before failing (``x-served-by`` when an instance
    took the call and then failed it), or none if no server answered.
    """
    start = time.perf_counter()
    try:
        _, call = method.with_call(request, timeout=timeout)
        code, metadata = "OK", initial_metadata(call)
    except grpc.RpcError as exc:
        code, metadata = exc.code().name, initial_metadata(exc)
    return code, metadata, time.perf_counter() - start


def burst(method: Callable[..., Any], request: Any, calls: int = 30,
          timeout: float = 2.0) -> list[CallRecord]:
    """Make ``calls`` sequential calls of a stub method and return one record per call."""
    records = []
    for _ in range(calls):
        code, metadata, latency = observe(method, request, timeout)
        records.append(CallRecord(metadata.get(SERVED_BY, ""), code, latency))
    return records


def tally(records: Iterable[CallRecord]) -> Counter:
    """Count calls by the instance that served them; failed calls count under their status code."""
    return Counter(r.served_by if r.ok else r.code for r in records)

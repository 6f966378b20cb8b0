"""Traffic mirroring (shadowing): copy a share of real calls to a new version and compare answers.

``Mirror(mesh.client("greeter").SayHello, version="v2", percent=20, rng=rng)`` is called like the
stub method it wraps. Each call goes where release routing sends it (pin the stable version with
``mesh.set_policy(service, release_version="v1")``), and its answer is what the caller gets. For
``percent`` of the calls, a copy of the request is then sent to ``version`` — asked for with the
``x-version`` header, marked with ``x-mirrored: 1`` — on a separate pool of threads: fire and
forget, as Envoy's ``request_mirror_policies``. The shadow's answer, error and latency are only
recorded, next to the primary's, for :meth:`Mirror.summary` to compare; they never reach the
caller, and a slow or failing v2 never slows or fails a caller: at most ``max_in_flight`` shadow
calls run at once, and a copy that would exceed that is dropped (and counted).

A mirrored call does its work twice. Mirror only what is safe to repeat, or have the new
version treat ``x-mirrored`` calls as a dry run: a mirrored checkout would charge twice.

Written here rather than taken from a proxy because the mesh has no sidecar: the client stack is
where a call is routed, so it is where a copy can be made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..client.headers import MIRRORED, VERSION
from ..client.outcome import code_of
from .traffic import timed

__all__ = ["Mirror", "MirrorRecord"]


@dataclass(frozen=True)
class MirrorRecord:
    """One mirrored call: how the primary and its shadow copy ended, and whether they agreed."""

    primary_code: str
    primary_latency: float
    shadow_code: str
    shadow_latency: float
    same_reply: bool  # both OK with equal replies, or both failed with the same code


class Mirror:
    def __init__(self, method: Callable[..., Any], version: str, percent: float, rng: np.random.Generator,
                 max_in_flight: int = 8, timeout: float = 2.0,
                 same: Callable[[Any, Any], bool] = lambda a, b: a == b):
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be in [0, 100], got {percent!r}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        if not version:
            raise ValueError("version must name the version to mirror to")
        self._method, self.version, self.percent = method, version, percent
        self._rng, self._timeout, self._same = rng, timeout, same
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix=f"mirror-{version}")
        self._lock = threading.Lock()
        self._records: list[MirrorRecord] = []
        self.calls = self.mirrored = self.dropped = 0
        self._closed = False

    def __call__(self, request: Any, timeout: float | None = None) -> Any:
        """Make the call; copy it to the mirrored version for ``percent`` of calls; return (or
        raise) what the primary call gave."""
        if self._closed:
            raise RuntimeError("this Mirror is closed; make a new one to mirror again")
        reply, error, latency = timed(lambda: self._method(request, timeout=timeout or self._timeout))
        primary = (reply, code_of(error), latency)
        with self._lock:
            self.calls += 1
            copy = self._rng.random() * 100 < self.percent
            if copy and not self._closed and self._slots.acquire(blocking=False):
                self.mirrored += 1
                self._pool.submit(self._shadow, request, primary)
            elif copy:
                self.dropped += 1
        if error is not None:
            raise error
        return reply

    def _shadow(self, request: Any, primary: tuple[Any, str, float]) -> None:
        try:
            reply, error, latency = timed(lambda: self._method(
                request, timeout=self._timeout, metadata=((VERSION, self.version), (MIRRORED, "1"))))
        finally:
            self._slots.release()
        code = code_of(error)
        primary_reply, primary_code, primary_latency = primary
        same = code == primary_code and (code != "OK" or bool(self._same(primary_reply, reply)))
        with self._lock:
            self._records.append(MirrorRecord(primary_code, primary_latency, code, latency, same))

    def records(self) -> list[MirrorRecord]:
        """Return the mirrored calls whose shadow has ended, in the order they ended."""
        with self._lock:
            return list(self._records)

    def summary(self) -> dict[str, Any]:
        """Compare the primary and shadow sides of the mirrored calls that have ended."""
        records = self.records()

        def side(codes: list[str], latencies: list[float]) -> dict[str, Any]:
            ok = [lat * 1e3 for code, lat in zip(codes, latencies, strict=True) if code == "OK"]
            return {"error_pct": round(100 * sum(c != "OK" for c in codes) / len(codes), 1) if codes else 0.0,
                    "p50_ms": round(float(np.percentile(ok, 50)), 1) if ok else None,
                    "p99_ms": round(float(np.percentile(ok, 99)), 1) if ok else None}

        return {"calls": self.calls, "mirrored": self.mirrored, "dropped": self.dropped,
                "compared": len(records),
                "differing": sum(not r.same_reply for r in records),
                "primary": side([r.primary_code for r in records], [r.primary_latency for r in records]),
                "shadow": side([r.shadow_code for r in records], [r.shadow_latency for r in records])}

    def close(self, wait: bool = True) -> None:
        """Stop mirroring; with ``wait``, let the shadow calls in flight end first."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


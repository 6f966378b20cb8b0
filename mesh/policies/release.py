"""Release routing (灰度发布 canary, 蓝绿部署 blue-green): which versions of a service take a call.

Instances carry a version (the mesh registers it as a tag and in ``Meta``). A :class:`Release`
narrows the instances a call may go to before the balancer picks one:

- **blue-green**: ``version`` set — only that version serves; switching it moves all traffic at
  once, and switching back is the rollback. A pinned version overrides a canary;
- **canary**: ``canary`` and ``canary_percent`` set — that share of calls goes to the canary
  version and the rest to the others (a canary at 0% is deployed but takes no traffic); with
  ``sticky``, the share is of request keys rather than of calls, so one user keeps seeing one
  version as the share grows;
- otherwise every version serves.

A call that asks for a version itself (a tester's header) gets it when it exists. Randomness is a
uniform draw the caller passes in; the key hash is fixed (BLAKE2b), so runs repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Release:
    version: str = ""
    canary: str = ""
    canary_percent: float = 0.0
    sticky: bool = False

    def __post_init__(self) -> None:
        # Only single-field rules: the fields live under separate config-center keys, written one
        # at a time, so a rule across fields could refuse a half-written change.
        if not 0 <= self.canary_percent <= 100:
            raise ValueError("canary_percent must be in [0, 100]")

    @property
    def active(self) -> bool:
        return bool(self.version or self.canary)


def key_bucket(key: str) -> float:
    """Return where ``key`` falls in [0, 100): the same key always lands in the same place."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100


def route(instances: Sequence[T], release: Release, draw: float, key: str = "", asked: str = "",
          version_of: Callable[[T], str] = lambda i: getattr(i, "version", "")) -> list[T]:
    """Return the instances this call may go to (possibly none: a pinned version with no instance).

    ``draw`` is a uniform number in [0, 1) (used for an unsticky canary); ``key`` identifies the
    request for a sticky one; ``asked`` is a version the call asked for itself.
    """
    if asked:
        chosen = [i for i in instances if version_of(i) == asked]
        if chosen:
            return chosen
    if release.version:
        return [i for i in instances if version_of(i) == release.version]
    if release.canary:
        canary = [i for i in instances if version_of(i) == release.canary]
        others = [i for i in instances if version_of(i) != release.canary]
        if not canary or not others:
            return canary or others
        where = key_bucket(key) if release.sticky else draw * 100
        return canary if where < release.canary_percent else others
    return list(instances)


def describe(release: Release) -> str:
    """Return a one-line account of where calls go."""
    if release.version:
        overridden = f" (the canary {release.canary} is overridden)" if release.canary else ""
        return f"all calls to {release.version}{overridden}"
    if release.canary:
        per = "of request keys" if release.sticky else "of calls"
        return f"{release.canary_percent:g}% {per} to {release.canary}, the rest to the other versions"
    return "every version serves"


def version_share(versions: Sequence[Any]) -> dict[str, float]:
    """Return the share of each version in a sequence of versions (for a run's records)."""
    counts: dict[str, int] = {}
    for version in versions:
        counts[version] = counts.get(version, 0) + 1
    total = sum(counts.values()) or 1
    return {version: count / total for version, count in sorted(counts.items())}

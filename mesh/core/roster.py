"""A mesh's instances by id, wherever they run, and what the mesh did to them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..services import KINDS, ServiceKind

__all__ = ["MeshEvent", "Roster"]


@dataclass(frozen=True)
class MeshEvent:
    """Something the mesh did to an instance, with the monotonic time it happened."""

    time: float
    action: str
    instance: str


class Roster:
    """The instances a mesh started (in the order it started them), shared with its placement."""

    def __init__(self):
        self._instances: dict[str, Any] = {}
        self.events: list[MeshEvent] = []

    def add(self, instance) -> None:
        self._instances[instance.id] = instance

    def select(self, service: str | None = None) -> list:
        return [i for i in self._instances.values() if service is None or i.service == service]

    def get(self, ref):
        """The instance ``ref`` names (an id, or the instance itself); KeyError if the mesh has none."""
        key = ref if isinstance(ref, str) else ref.id
        try:
            return self._instances[key]
        except KeyError:
            raise KeyError(f"no instance {key!r}; the mesh has {sorted(self._instances)}") from None

    def kind_of(self, service: str) -> ServiceKind:
        """The kind of ``service``: one of ``KINDS``, or a kind the mesh runs (made at run time)."""
        kind = KINDS.get(service) or next(
            (i.kind for i in self._instances.values() if i.service == service), None)
        if kind is None:
            raise KeyError(f"no stub known for service {service!r}")
        return kind

    def next_numbers(self, kind: ServiceKind, replicas: int, version: str) -> range:
        """The numbers of ``replicas`` more instances of ``kind`` (after those it has), checked."""
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        if not version or not version.replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"version must be a DNS-friendly label such as 'v2', got {version!r}")
        existing = sum(1 for i in self._instances.values() if i.kind.name == kind.name)
        return range(existing + 1, existing + replicas + 1)

    def versions(self, service: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for instance in self.select(service):
            found.setdefault(instance.version, []).append(instance.id)
        return found

    def log(self, action: str, instance) -> None:
        self.events.append(MeshEvent(time.monotonic(), action, instance.id))

    def counts(self) -> dict[str, int]:
        """The instances running, by service."""
        counts: dict[str, int] = {}
        for instance in self._instances.values():
            counts[instance.service] = counts.get(instance.service, 0) + instance.running
        return counts

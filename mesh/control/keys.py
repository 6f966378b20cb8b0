"""Where a mesh keeps what it shares in the registry, and the names it registers under: written once.

A mesh with a ``prefix`` (a class on one Consul, a learner each) registers ``<prefix>-<name>`` and
keeps its keys under ``<prefix>/``; without one, names and keys are plain:

- ``config/<service>/<field>``: a service's settings, and its callers' policy (``policy.<service>``);
- ``access/<service>``: the callers allowed to call ``service`` (:mod:`mesh.control.shared_state`);
- ``fallbacks/<service>/<method>``: what callers answer with when ``service`` fails;
- ``faults/<instance>`` and ``faults-applied/<instance>``: an instance process's faults, and what
  it applied (``<instance>`` is its registered id).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCESS", "CONFIG", "FALLBACKS", "FAULTS", "SHARED_WITH_PROCESSES", "MeshKeys", "local_name",
           "policy_config", "registry_name"]

CONFIG = "config"
ACCESS = "access"
FALLBACKS = "fallbacks"
FAULTS = "faults"
#: The roots a mesh's kernel writes for its processes (and removes when it stops).
SHARED_WITH_PROCESSES = (ACCESS, FALLBACKS)


def policy_config(service: str, method: str | None = None) -> str:
    """The config center's name for the callers' policy towards ``service`` (or one method of it),
    kept under ``config/policy.<service>[.<method>]/``."""
    return f"policy.{service}" + (f".{method}" if method else "")


def registry_name(prefix: str, name: str) -> str:
    """The name (or id) ``name`` is registered under with ``prefix``: ``ada-greeter``."""
    return f"{prefix}-{name}" if prefix else name


def local_name(prefix: str, name: str) -> str:
    """The mesh's own name for a registered ``name`` (the inverse of :func:`registry_name`)."""
    return name.removeprefix(f"{prefix}-") if prefix else name


@dataclass(frozen=True)
class MeshKeys:
    """The registry names and KV keys of the mesh with ``prefix``."""

    prefix: str = ""

    def registry_name(self, name: str) -> str:
        return registry_name(self.prefix, name)

    def local_name(self, name: str) -> str:
        return local_name(self.prefix, name)

    def root(self, name: str) -> str:
        """Where the mesh keeps ``name`` in the KV store: ``name``, or ``<prefix>/name``."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def access(self, service: str) -> str:
        return f"{self.root(ACCESS)}/{service}"

    def fallback(self, service: str, method: str) -> str:
        return f"{self.root(FALLBACKS)}/{service}/{method}"

    def faults(self, instance: str) -> tuple[str, str]:
        """The key of an instance's faults and the key its process writes back what it applied
        (``instance``: the mesh's own id of it)."""
        registered = self.registry_name(instance)
        return f"{self.root(FAULTS)}/{registered}", f"{self.root(FAULTS)}-applied/{registered}"

"""The names the mesh and the simulator give instances and breakers, built and read in one place.

An instance is ``<service>-<number>`` (``greeter-2``); a caller that is not an instance is named
as itself (``client``, ``gateway``). A breaker is ``<caller>-><callee>``, with ``.<method>`` for
a method's own policy (``orders-1->payments``, ``client->greeter.SayHello``).
"""

from __future__ import annotations

__all__ = ["breaker_name", "instance_id", "parse_breaker_name", "service_of"]

_ARROW = "->"


def instance_id(service: str, number: int) -> str:
    """Return the id of replica ``number`` of ``service``: ``greeter-2``."""
    return f"{service}-{number}"


def service_of(caller: str) -> str:
    """Return the service an instance id belongs to (``orders-1`` → ``orders``); a caller that is
    not an instance (``client``, ``gateway``) is its own service."""
    service, dash, number = caller.rpartition("-")
    return service if dash and service and number.isdigit() else caller


def breaker_name(caller: str, callee: str, method: str | None = None) -> str:
    """Return the name of ``caller``'s breaker towards ``callee`` (or towards one method of it)."""
    return f"{caller}{_ARROW}{callee}" + (f".{method}" if method else "")


def parse_breaker_name(name: str) -> tuple[str, str] | None:
    """Return ``(caller, callee)`` from a service-wide breaker's name, or None if it is not one."""
    caller, arrow, callee = name.partition(_ARROW)
    return (caller, callee) if arrow and caller and callee else None

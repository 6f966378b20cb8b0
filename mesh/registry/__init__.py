"""An embedded service registry that speaks Consul's HTTP API, with real health checks.

Start it in-process with ``Registry()`` (a context manager), or standalone with
``python -m mesh.registry --http-port 8500``, which runs until interrupted like ``consul agent -dev``.
"""

from ._catalog import CRITICAL, MAINTENANCE, PASSING, WARNING
from ._decode import DecodeError, format_duration, parse_duration
from ._server import Registry

__all__ = [
    "CRITICAL",
    "MAINTENANCE",
    "PASSING",
    "WARNING",
    "DecodeError",
    "Registry",
    "format_duration",
    "parse_duration",
]

"""An embedded service registry that speaks Consul's HTTP API and DNS, with real health checks.

Start it in-process with ``Registry()`` (a context manager), or standalone with
``python -m mesh.registry --http-port 8500 --dns-port 8600``, which runs until interrupted like
``consul agent -dev``. With ``Registry(acl=ACLConfig(...))`` (or ``--acl-default-policy deny
--acl-management-token TOKEN``) it enforces Consul's ACL system (:mod:`mesh.registry.acl`).
"""

from ._catalog import CONSUL_VERSION, CRITICAL, MAINTENANCE, PASSING, WARNING
from ._decode import DecodeError, decode_service, format_duration, parse_duration
from ._filter import FilterError, compile_filter
from ._index import Indexes
from ._kv import MAX_VALUE, TOMBSTONE_TTL, KVError, KVStore
from ._server import Registry
from .acl import ACLConfig

__all__ = [
    "CONSUL_VERSION",
    "CRITICAL",
    "MAINTENANCE",
    "MAX_VALUE",
    "PASSING",
    "TOMBSTONE_TTL",
    "WARNING",
    "ACLConfig",
    "DecodeError",
    "FilterError",
    "Indexes",
    "KVError",
    "KVStore",
    "Registry",
    "compile_filter",
    "decode_service",
    "format_duration",
    "parse_duration",
]

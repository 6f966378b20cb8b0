"""The control plane: which registry, the one blocking-query watch, the config center, discovery,
and what a mesh's kernel shares with its processes through the KV store."""

from ._kv_watch import REGISTRY_ERRORS, BlockingWatch, kv_query
from .backends import Backend, BackendUnavailable, consul_binary, parse_http_addr, start_backend
from .classroom import LEARNER, SHARED_PREFIX, enroll, learner_rules
from .config import ConfigCenter, ConfigError, ServiceConfig
from .discovery import Discovery, Endpoint, ServiceWatch
from .keys import (
                   ACCESS,
                   CONFIG,
                   FALLBACKS,
                   FAULTS,
                   SHARED_WITH_PROCESSES,
                   MeshKeys,
                   local_name,
                   policy_config,
                   registry_name,
)
from .registration import Registration
from .shared_state import (
                   SECRET_VARIABLE,
                   PrefixWatch,
                   SharedStatePublisher,
                   decode_access_rules,
                   decode_fallback,
                   decode_fallbacks,
                   encode_access_rule,
                   encode_fallback,
)

__all__ = [
                   "ACCESS",
                   "CONFIG",
                   "FALLBACKS",
                   "FAULTS",
                   "LEARNER",
                   "REGISTRY_ERRORS",
                   "SECRET_VARIABLE",
                   "SHARED_PREFIX",
                   "SHARED_WITH_PROCESSES",
                   "Backend",
                   "BackendUnavailable",
                   "BlockingWatch",
                   "ConfigCenter",
                   "ConfigError",
                   "Discovery",
                   "Endpoint",
                   "MeshKeys",
                   "PrefixWatch",
                   "Registration",
                   "ServiceConfig",
                   "ServiceWatch",
                   "SharedStatePublisher",
                   "consul_binary",
                   "decode_access_rules",
                   "decode_fallback",
                   "decode_fallbacks",
                   "encode_access_rule",
                   "encode_fallback",
                   "enroll",
                   "kv_query",
                   "learner_rules",
                   "local_name",
                   "parse_http_addr",
                   "policy_config",
                   "registry_name",
                   "start_backend",
]

"""The real mesh: gRPC services on loopback that register with and discover each other.

Start with ``Mesh({"greeter": 3})``; see ``notebooks/00-tour.ipynb``.

The names below are loaded when first used, so ``import mesh.policies`` (pure policies, what the
simulator needs) does not load grpc, aiohttp or OpenTelemetry.
"""

import importlib
import os

# gRPC's C core logs connection events (GOAWAY on a killed instance) at INFO; in a notebook
# that is noise under every cell. It must be set before grpc is first imported.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

_EXPORTS = {
    "GREETER": ".services",
    "KINDS": ".services",
    "SERVED_BY": ".headers",
    "Backend": ".backends",
    "BackendUnavailable": ".backends",
    "BalancedChannel": ".channel",
    "CallNode": ".tracing",
    "CallRecord": ".traffic",
    "ConfigError": ".config",
    "Discovery": ".discovery",
    "DiscoveryProxy": ".proxy",
    "Endpoint": ".discovery",
    "Faults": ".interceptors",
    "Host": ".hosts",
    "Hosts": ".hosts",
    "HostsUnavailable": ".hosts",
    "Instance": "._instance",
    "LoadRecord": ".load",
    "Mesh": "._mesh",
    "MeshEvent": "._mesh",
    "Metrics": ".metrics",
    "Mirror": ".mirror",
    "MirrorRecord": ".mirror",
    "Monolith": ".monolith",
    "NoHealthyInstances": ".channel",
    "OtlpReceiver": ".otlp",
    "PolicySettings": ".policies",
    "ProcessInstance": ".processes",
    "Registry": ".registry",
    "ServiceConfig": ".config",
    "ServiceKind": ".services",
    "ScaledMonolith": ".monolith",
    "ServiceWatch": ".discovery",
    "SteadyLoad": ".load",
    "Tracing": ".tracing",
    "burst": ".traffic",
    "closed_loop": ".load",
    "open_loop": ".load",
    "start_backend": ".backends",
    "stop_all": "._mesh",
    "tally": ".traffic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mesh' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})

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
    "SERVED_BY": ".client.headers",
    "Backend": ".control",
    "BackendUnavailable": ".control",
    "BalancedChannel": ".client",
    "CallNode": ".telemetry",
    "CallRecord": ".workload",
    "ConfigError": ".control",
    "Discovery": ".control",
    "DiscoveryProxy": ".client",
    "Endpoint": ".control",
    "Faults": ".interceptors",
    "Host": ".processes",
    "Hosts": ".processes",
    "HostsUnavailable": ".processes",
    "Instance": ".core",
    "Mesh": ".core",
    "MeshEvent": ".core",
    "Metrics": ".telemetry",
    "Mirror": ".workload",
    "MirrorRecord": ".workload",
    "NoHealthyInstances": ".client",
    "OtlpReceiver": ".telemetry",
    "PolicySettings": ".policies",
    "ProcessInstance": ".processes",
    "Registry": ".registry",
    "ServiceConfig": ".control",
    "ServiceKind": ".services",
    "ServiceWatch": ".control",
    "SteadyLoad": ".workload",
    "Tracing": ".telemetry",
    "burst": ".workload",
    "closed_loop": ".workload",
    "open_loop": ".workload",
    "start_backend": ".control",
    "stop_all": ".core",
    "tally": ".workload",
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

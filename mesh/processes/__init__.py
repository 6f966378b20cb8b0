"""Instances as OS processes, and hosts for them: the notebook's stand-in for each process, faults
carried through the KV store, hosts made of network namespaces, and latency between them."""

from .delay_proxy import DelayProxy
from .hosts import Host, Hosts, HostsUnavailable, available, sweep_leftovers
from .instance import ProcessInstance, SpawnSpec
from .placement import ProcessPlacement
from .remote_faults import FaultsWatch, RemoteFaults, faults_from_json, faults_to_json

__all__ = [
    "DelayProxy",
    "FaultsWatch",
    "Host",
    "Hosts",
    "HostsUnavailable",
    "ProcessInstance",
    "ProcessPlacement",
    "RemoteFaults",
    "SpawnSpec",
    "available",
    "faults_from_json",
    "faults_to_json",
    "sweep_leftovers",
]

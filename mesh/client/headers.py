"""The gRPC metadata keys the mesh's clients, servers, proxy and gateway exchange, defined once."""

#: The calling service (``client`` for the notebook); servers record it, partitions match on it.
CALLER = "x-caller"
#: The caller's identity, signed by the mesh (:mod:`mesh.client.identity`): what proves ``x-caller``.
IDENTITY = "x-identity"
#: The attempt number of a retry (absent on the first attempt), as Envoy's ``x-envoy-attempt-count``.
ATTEMPT = "x-attempt"
#: W3C trace context: the trace and the client span an attempt belongs to.
TRACEPARENT = "traceparent"
#: A version the call asks for itself (a dark launch: a tester trying a release before it takes traffic).
VERSION = "x-version"
#: Marks a copy of a call sent to another version by traffic mirroring (``mesh.workload.mirror``); a server
#: may treat it as a dry run.
MIRRORED = "x-mirrored"
#: Sent back by the client stack when a fallback answered instead of a server: the reason.
FALLBACK = "x-fallback"
#: Sent back by every instance in its initial metadata: the instance that served the call.
SERVED_BY = "x-served-by"
#: Sent back by the discovery proxy: the proxy that forwarded the call.
PROXIED_BY = "x-proxied-by"

__all__ = ["ATTEMPT", "CALLER", "FALLBACK", "IDENTITY", "MIRRORED", "PROXIED_BY", "SERVED_BY", "TRACEPARENT",
           "VERSION"]

"""One service instance as its own OS process: ``python -m mesh.serve <service> <number> ...``.

What :class:`mesh.Mesh` in ``mode="processes"`` starts for each instance, and what a learner can
start by hand on another machine. The process builds a mesh of its own on the shared registry
(``--registry host:port``), starts the one instance on ``--port`` (0: any free port) and registers
it, exactly as the chapter's code registers its server. Everything else reaches it the way it
would reach a real service:

- its settings and its callers' policies: the config center (the registry's KV store, watched);
- its faults: ``<prefix/>faults/<instance>`` in the KV store (:mod:`mesh.processes.remote_faults`);
- its spans: OTLP/gRPC to ``--otlp host:port`` (the notebook's receiver, :mod:`mesh.telemetry.otlp`, or an
  OpenTelemetry Collector or Jaeger).

It prints ``ready <port>`` once it serves, and runs until SIGTERM or SIGINT (it then deregisters
and flushes its spans) or until its parent process (``--parent``) is gone. SIGKILL is a crash.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mesh.serve", description=__doc__.splitlines()[0])
    parser.add_argument("service", help="the kind of service (greeter, frontend, orders, ...)")
    parser.add_argument("number", type=int, help="the replica's number: greeter 2 is greeter-2")
    parser.add_argument("--registry", required=True, help="host:port of the registry's HTTP API")
    parser.add_argument("--mesh", default="default", help="the mesh's name (the audience of its identities)")
    parser.add_argument("--prefix", default="", help="the prefix of a mesh that shares its registry")
    parser.add_argument("--port", type=int, default=0, help="the port to serve on (0: any free one)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve on and register")
    parser.add_argument("--advertise", default="", help="host:port to register instead (a proxy in front)")
    parser.add_argument("--version", default="v1", help="the version registered as a tag and in Meta")
    parser.add_argument("--max-workers", type=int, default=16, help="threads serving calls")
    parser.add_argument("--seed", type=int, default=None, help="seeds the instance's random choices")
    parser.add_argument("--otlp", default="", help="host:port of an OTLP/gRPC trace receiver")
    parser.add_argument("--check-interval", default="1s")
    parser.add_argument("--check-timeout", default="1s")
    parser.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    parser.add_argument("--bus-log", default="", help="host:port of the log a bus replica serves from "
                        "(the service is then a bus of that name)")
    return parser


def _follow_parent(parent: int, stop: threading.Event, orphaned: threading.Event) -> None:
    """Stop when the parent (the notebook's kernel) is gone, however it ended."""

    def watch() -> None:
        while not stop.wait(0.2):
            if os.getppid() != parent:
                orphaned.set()
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from .client import Identities
    from .control import SECRET_VARIABLE
    from .core import Mesh
    from .processes import FaultsWatch
    from .services import KINDS

    if args.bus_log:
        from .bus import bus_replica

        kind = bus_replica(args.service, args.bus_log)
    elif args.service in KINDS:
        kind = KINDS[args.service]
    else:
        print(f"unknown service {args.service!r}; known: {sorted(KINDS)}", file=sys.stderr)
        return 2
    stop, orphaned = threading.Event(), threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if args.parent:
        _follow_parent(args.parent, stop, orphaned)
    # The kernel's signing key, so that this process's callers prove who they are and its
    # instance checks the kernel's callers.
    identities = Identities(args.mesh, secret=os.environ.get(SECRET_VARIABLE) or None)
    mesh = Mesh(registry=args.registry, name=args.mesh, prefix=args.prefix, seed=args.seed,
                check_interval=args.check_interval, check_timeout=args.check_timeout, identities=identities)
    watch = instance = logs = None
    shared = []
    code = 0
    try:
        if args.otlp:
            # Sent within a tenth of a second of ending, so the notebook's views stay live.
            mesh.tracing.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=args.otlp, insecure=True), schedule_delay_millis=100))
            logs = _ship_logs(args.otlp)
        # Rules and fallbacks hold from the first call on; what cannot be read is said on stderr.
        shared = mesh.shared.follow(mesh.consul, mesh.keys,
                                    lambda said: print(said, file=sys.stderr, flush=True))
        instance = mesh.placement.start(kind, args.number, args.max_workers, args.version,
                                        port=args.port, host=args.host, advertise=args.advertise)
        watch = FaultsWatch(mesh.consul, mesh.keys, instance.id, instance.faults)
        print(f"ready {instance.port}", flush=True)
        while not stop.wait(0.5):
            pass
    except Exception as exc:  # said on stderr, which the notebook shows when the start fails
        print(f"{args.service}-{args.number}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for watched in shared:
            watched.request_stop()
        _leave(mesh, instance, watch, logs, code, flush=not orphaned.is_set())
    return code


def _ship_logs(endpoint: str):
    """Send the services' log lines (``mesh.service``, from INFO up) with OpenTelemetry's OTLP log
    exporter, each carrying the fields the kernel's own records have (trace id, service,
    instance); return the provider, to flush at the end."""
    import logging

    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    from .telemetry.logs import LOGGER, TraceContextFilter

    provider = LoggerProvider()
    provider.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=100))
    handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    handler.addFilter(TraceContextFilter())
    handler.addFilter(lambda record: bool(record.instance))  # the lines of calls served, as the kernel keeps
    logging.getLogger(LOGGER).addHandler(handler)
    return provider


def _leave(mesh, instance, watch, logs, code: int, flush: bool = True) -> None:
    """End quickly and cleanly: out of the registry first, then the calls in flight, then the
    last spans and log lines out (unless the kernel that received them is gone: the exporters
    would retry for seconds). The watches' threads end with the process (joining them would wait
    out their blocking queries)."""

    if instance is not None:
        mesh.registration.deregister(instance.id)
        instance.stop(grace=0.5)
    if watch is not None:
        watch.request_stop()
    if flush:
        mesh.tracing.shutdown()  # flushes the OTLP exporter
        if logs is not None:
            logs.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

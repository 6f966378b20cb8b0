"""Structured logs (日志) of the mesh's services, each line carrying the trace it belongs to.

Services log with the standard library (``logging.getLogger("mesh.service.shop")`` and the like);
every instance also writes an access-log line per call it serves (``mesh.service.access``: method,
status, latency — as Envoy's access log). :class:`TraceContextFilter` adds to each record the
OpenTelemetry trace and span ids of the call being served (``trace.get_current_span()``) and the
serving service and instance (:data:`mesh.client.inbound`), so the lines of one request can be
found across every service by its trace id — the id the trace explorer shows.

A mesh keeps its services' records in a :class:`LogStore` (``mesh.logs``: a bounded, thread-safe
list of dicts, newest last), filterable by trace, service, level or text; :meth:`LogStore.lines`
gives them as JSON lines, what a log shipper would send on. Written with stdlib ``logging`` and
``json`` rather than a structured-logging library (structlog, python-json-logger): the filter and
a dict per record are all that is needed, and any handler a learner attaches gets the same fields.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from typing import Any

from opentelemetry import trace

from ..client import inbound

__all__ = ["ACCESS", "CONTEXT_FIELDS", "LOGGER", "LogStore", "TraceContextFilter"]

#: The logger every service logs under (one child per concern), and the access log's.
LOGGER = "mesh.service"
# With no mesh listening (a monolith's services, a mesh since stopped), the services' warnings go
# nowhere, rather than to stderr through logging's last resort, as a library's logs should.
logging.getLogger(LOGGER).addHandler(logging.NullHandler())
ACCESS = "mesh.service.access"
#: Fields a record carries besides the standard ones, set by :class:`TraceContextFilter`.
CONTEXT_FIELDS = ("trace_id", "span_id", "service", "instance", "mesh")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", *CONTEXT_FIELDS}


class TraceContextFilter(logging.Filter):
    """Add ``trace_id``, ``span_id`` (hex; "" outside a trace), and the ``service``, ``instance``
    and ``mesh`` serving ("" outside a handler) to every record that passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else ""
        record.span_id = format(context.span_id, "016x") if context.is_valid else ""
        serving = inbound.get()
        record.service = serving.service if serving else ""
        record.instance = serving.instance if serving else ""
        record.mesh = serving.mesh if serving else ""
        return True


class LogStore(logging.Handler):
    """Keep the records of the services of the mesh named ``mesh`` as dicts, at most
    ``max_records`` (the oldest go first)."""

    def __init__(self, mesh: str, max_records: int = 50_000):
        super().__init__(logging.INFO)
        self._mesh = mesh
        self._records: deque[dict[str, Any]] = deque(maxlen=max_records)
        self._records_lock = threading.Lock()
        self.addFilter(TraceContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if not record.instance or record.mesh != self._mesh:
            return
        entry = {"time": record.created, "level": record.levelname, "logger": record.name,
                 "message": record.getMessage(), **{k: getattr(record, k) for k in CONTEXT_FIELDS}}
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        with self._records_lock:
            self._records.append(entry)

    def add(self, entry: dict[str, Any]) -> None:
        """Keep a record made elsewhere (a process's, received over OTLP), as a dict of the fields
        :meth:`emit` makes."""
        with self._records_lock:
            self._records.append(entry)

    def records(self, trace_id: str = "", service: str = "", level: str = "",
                contains: str = "") -> list[dict[str, Any]]:
        """Return the kept records, oldest first, of one trace, service, minimum level, or with
        ``contains`` in their message (each filter optional). Oldest by the time each was logged:
        a process's records arrive in batches, after some the kernel logged later."""
        least = logging.getLevelName(level.upper()) if level else 0
        with self._records_lock:
            kept = list(self._records)
        chosen = [r for r in kept
                  if (not trace_id or r["trace_id"] == trace_id) and (not service or r["service"] == service)
                  and logging.getLevelName(r["level"]) >= least and contains in r["message"]]
        return sorted(chosen, key=lambda r: r["time"])

    def lines(self, **filters: str) -> list[str]:
        """Return the records :meth:`records` selects as JSON lines."""
        return [json.dumps(r, default=str) for r in self.records(**filters)]

    def clear(self) -> None:
        with self._records_lock:
            self._records.clear()

    def attach(self) -> LogStore:
        """Start receiving the services' records (the service loggers log from INFO up, to the
        meshes' stores and to handlers attached to ``mesh.service``; not up to the root logger,
        which would print every call's access line in a notebook)."""
        logger = logging.getLogger(LOGGER)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(self)
        return self

    def detach(self) -> None:
        logging.getLogger(LOGGER).removeHandler(self)

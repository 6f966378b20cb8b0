"""How the mesh makes and keeps spans cheaply: ids drawn ahead, client spans built off the call path,
the most recent spans kept in memory.

The OpenTelemetry SDK's span takes tens of microseconds of Python to build, and each one spent
before or after a call delays the caller's next call (bench/client_stack.py measures it). The
client side of an attempt therefore draws its span's ids first and sends them as the
``traceparent`` (:class:`ReservableIds`), and when the call returns hands everything the span
needs — parent, ids, start and end time, attributes, status — to :class:`LateSpans`, whose thread
builds the real SDK span while the caller's next call waits on the network. The spans are the
same as if they had been built in line: same ids, times and attributes, through the same
processors, so any exporter added to the provider sees them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

MAX_SPANS = 100_000
log = logging.getLogger(__name__)


class RecentSpans(SpanProcessor):
    """Keep the most recent ``max_spans`` finished spans in memory.

    A processor rather than the SDK's ``SimpleSpanProcessor`` + ``InMemorySpanExporter``: that pair
    grows without bound over a long load run, and wraps every export in a context switch meant for
    exporters that do I/O, which costs each span microseconds on the call path.
    """

    def __init__(self, max_spans: int = MAX_SPANS):
        self._spans: deque[ReadableSpan] = deque(maxlen=max_spans)
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._spans.append(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def get_finished_spans(self) -> tuple[ReadableSpan, ...]:
        with self._lock:
            return tuple(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        self.clear()


class ReservableIds(IdGenerator):
    """Random span and trace ids, as the SDK's, except that a thread may say what its next span's
    ids are (:meth:`next_span`), so a span can be built after its ids went out on the wire."""

    def __init__(self):
        self._random = RandomIdGenerator()
        self._next = threading.local()

    def generate_span_id(self) -> int:
        reserved = getattr(self._next, "span_id", None)
        if reserved is None:
            return self._random.generate_span_id()
        self._next.span_id = None
        return reserved

    def generate_trace_id(self) -> int:
        reserved = getattr(self._next, "trace_id", None)
        if reserved is None:
            return self._random.generate_trace_id()
        self._next.trace_id = None
        return reserved

    def is_trace_id_random(self) -> bool:
        return True

    def new_span_id(self) -> int:
        return self._random.generate_span_id()

    def new_trace_id(self) -> int:
        return self._random.generate_trace_id()

    def next_span(self, trace_id: int, span_id: int) -> None:
        """Make the next span this thread starts take these ids (start it right after this call)."""
        self._next.trace_id, self._next.span_id = trace_id, span_id


class LateSpans:
    """Build, on a thread of its own, the spans of calls that have already returned.

    :meth:`record` takes what a span needs and only appends it to a list: waking a thread for every
    span would cost the caller a system call each. The thread builds what has gathered every
    ``period`` seconds, letting other threads run between spans. :meth:`flush` builds whatever is
    left at once, so reading spans after a call always finds that call's. The thread starts with
    the first record and ends at :meth:`close`; after that, and whenever more than ``backlog``
    records wait (a load far above what one thread builds), the caller builds its own span.
    """

    def __init__(self, tracer: trace.Tracer, ids: ReservableIds, backlog: int = 10_000,
                 period: float = 0.02):
        self._tracer = tracer
        self._ids = ids
        self._backlog = backlog
        self._period = period
        self._pending: deque = deque()
        self._building = threading.Lock()  # held while pending spans are built: flush waits for a batch
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def record(self, parent: otel_context.Context, trace_id: int, span_id: int, name: str,
               kind: trace.SpanKind, start_ns: int, end_ns: int, attributes: dict, error: str = "") -> None:
        """Have a span built with these ids under ``parent``, from ``start_ns`` to ``end_ns``;
        ``error`` (a status name) marks it failed."""
        item = (parent, trace_id, span_id, name, kind, start_ns, end_ns, attributes, error)
        if self._thread is None:
            self._start()
        if self._closed or len(self._pending) >= self._backlog:
            self._build_logged(item)
        else:
            self._pending.append(item)

    def flush(self) -> None:
        """Return when every span recorded so far is finished."""
        self._drain(pause=False)

    def close(self) -> None:
        """Finish every recorded span and stop the thread (later records are built at once)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join()
        self._drain(pause=False)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="mesh-late-spans", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._drain(pause=True)

    def _drain(self, pause: bool) -> None:
        with self._building:
            while self._pending:
                self._build_logged(self._pending.popleft())
                if pause:
                    time.sleep(0)  # let a caller whose response has arrived run before the next span

    def _build_logged(self, item) -> None:
        try:
            self._build(item)
        except Exception:  # one bad record must not stop the spans of every later call
            log.exception("could not record a span")

    def _build(self, item) -> None:
        parent, trace_id, span_id, name, kind, start_ns, end_ns, attributes, error = item
        self._ids.next_span(trace_id, span_id)
        span = self._tracer.start_span(name, context=parent, kind=kind, start_time=start_ns,
                                       attributes=attributes)
        if error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        span.end(end_time=end_ns)

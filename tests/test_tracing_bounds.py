"""The in-memory span store keeps the most recent spans only, so long load runs do not grow memory."""

from __future__ import annotations

from mesh.tracing import Tracing


def test_the_span_store_keeps_only_the_most_recent_spans():
    tracing = Tracing(max_spans=5)
    for n in range(12):
        tracing.tracer.start_span(f"call-{n}").end()
    assert [s.name for s in tracing.spans()] == [f"call-{n}" for n in range(7, 12)]
    tracing.clear()
    assert tracing.spans() == ()
    tracing.shutdown()

"""The in-memory span store keeps the most recent spans only, so long load runs do not grow memory."""

from __future__ import annotations

from mesh.telemetry.tracing import Tracing


def test_the_span_store_keeps_only_the_most_recent_spans():
    tracing = Tracing(max_spans=5)
    for n in range(12):
        tracing.tracer.start_span(f"call-{n}").end()
    assert [s.name for s in tracing.spans()] == [f"call-{n}" for n in range(7, 12)]
    tracing.clear()
    assert tracing.spans() == ()
    tracing.shutdown()


def test_recent_reads_take_spans_by_end_and_requests_whole():
    """Spans arrive as they end; a read of the last seconds stops at the first older one."""
    import time

    from opentelemetry import trace

    tracing = Tracing()
    now, s = time.time_ns(), 1_000_000_000
    long_ago = tracing.tracer.start_span("long-ago", start_time=now - 20 * s)
    long_ago.end(end_time=now - 15 * s)
    old = tracing.tracer.start_span("old-root", start_time=now - 10 * s)
    inside = trace.set_span_in_context(old)
    tracing.tracer.start_span("old-child", context=inside, start_time=now - 2 * s).end(end_time=now - s)
    old.end(end_time=now - s // 2)
    fresh = tracing.tracer.start_span("fresh", start_time=now - s)
    fresh.end(end_time=now - s // 4)
    try:
        assert [x.name for x in tracing.spans(within=5)] == ["old-child", "old-root", "fresh"]
        assert [x.name for x in tracing.spans(within=16)] == ["long-ago", "old-child", "old-root", "fresh"]
        assert tracing.spans(within=0.1) == ()
        # the old request began 10 s ago: left out whole, though its child began 2 s ago
        assert [x.name for x in tracing._whole_requests(5)] == ["fresh"]
        assert [x.name for x in tracing._whole_requests(11)] == ["old-child", "old-root", "fresh"]
        assert len(tracing._whole_requests(None)) == 4
    finally:
        tracing.shutdown()


def test_a_request_in_flight_is_not_listed_cut_short():
    """Spans are kept as they end: while a checkout waits on a slow fraud, inventory's call has
    ended but frontend's and orders' have not. The request appears whole once it ends, not before."""
    import threading

    from lessons.experiment import CHECKOUT
    from mesh import Mesh
    from mesh.services import shop_topology

    with Mesh(shop_topology(1), name="in-flight") as mesh:
        mesh.wait_until_passing()
        mesh.inject("fraud-1", delay=0.8)
        checkout = threading.Thread(target=mesh.client("frontend").Checkout, args=(CHECKOUT,),
                                    kwargs={"timeout": 5})
        checkout.start()
        mesh.wait_until(lambda: any(s.name == "inventory/Reserve" for s in mesh.tracing.spans()), timeout=5)
        assert checkout.is_alive()
        assert mesh.tracing.requests() == []
        checkout.join()
        (request,) = mesh.tracing.requests()
        root = request[0]
        assert (root.service, root.method) == ("frontend", "Checkout")
        assert [n.service for _, n in root.walk()] == ["frontend", "orders", "inventory", "payments", "fraud"]

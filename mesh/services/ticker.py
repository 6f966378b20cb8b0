"""A service with one RPC of each streaming kind (section 6.6.2), for seeing streams move.

``Countdown`` streams ticks from the server, ``Sum`` adds a stream of numbers from the client,
``Chat`` answers each line of a stream as it arrives. Waits end at once when the call is
cancelled or the server stops.
"""

from __future__ import annotations

import threading

import grpc

from mesh.pb import streams_pb2, streams_pb2_grpc


class TickerServicer(streams_pb2_grpc.TickerServicer):
    def __init__(self, stopping: threading.Event | None = None):
        self._stopping = stopping or threading.Event()

    def Countdown(self, request: streams_pb2.CountdownRequest, context):
        if request.start < 0 or request.interval < 0:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "start and interval must be >= 0")
        for remaining in range(request.start, 0, -1):
            yield streams_pb2.Tick(remaining=remaining)
            if remaining > 1 and (self._stopping.wait(request.interval) or not context.is_active()):
                return

    def Sum(self, request_iterator, context) -> streams_pb2.Total:
        total = count = 0
        for number in request_iterator:
            total += number.value
            count += 1
        return streams_pb2.Total(sum=total, count=count)

    def Chat(self, request_iterator, context):
        for line in request_iterator:
            yield streams_pb2.Line(seq=line.seq, text=f"heard {line.text!r}")

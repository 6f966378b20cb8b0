"""What a handler's outgoing calls need to know about the call it is serving.

The server side sets :data:`inbound` for the duration of a handler: who is serving, and by when
the caller needs the answer. The client side reads it to name the caller and to pass the
remaining deadline downstream (gRPC Python does not do this by itself). Worker threads that a
handler starts must run in a copy of its context (``contextvars.copy_context().run``).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class Inbound:
    service: str
    instance: str
    deadline: float | None  # time.monotonic() by which the caller needs the answer
    mesh: str = ""  # the name of the mesh the instance belongs to


inbound: contextvars.ContextVar[Inbound | None] = contextvars.ContextVar("inbound", default=None)

"""A bulkhead (隔离): at most ``max_concurrent`` calls to one downstream, the rest wait in line.

A caller that cannot enter at once gets a ticket and waits up to ``max_wait`` for it to be
admitted. The bulkhead only keeps the count and the line; the runtime does the waiting (a
``threading.Event`` in the mesh, a SimPy event in the simulator) and calls :meth:`leave` when a
call ends, which admits the next ticket in line.
"""

from __future__ import annotations

from collections import deque


class Ticket:
    """A place in line; ``admitted`` turns True when :meth:`Bulkhead.leave` lets it in."""

    __slots__ = ("admitted", "cancelled", "payload")

    def __init__(self, payload: object = None):
        self.admitted = False
        self.cancelled = False
        self.payload = payload


class Bulkhead:
    def __init__(self, max_concurrent: int, max_wait: float = 0.0, max_queue: int | None = None):
        if max_concurrent < 1 or max_wait < 0:
            raise ValueError("max_concurrent must be >= 1 and max_wait >= 0")
        self.max_concurrent = max_concurrent
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.active = 0
        self._line: deque[Ticket] = deque()
        self.rejected = 0

    def try_enter(self) -> bool:
        """Enter at once if there is room and nobody waits; else False."""
        if self.active < self.max_concurrent and not self._line:
            self.active += 1
            return True
        return False

    def enqueue(self, payload: object = None) -> Ticket | None:
        """Join the line (None if waiting is not allowed or the line is full: reject)."""
        if self.max_wait <= 0 or (self.max_queue is not None and len(self._line) >= self.max_queue):
            self.rejected += 1
            return None
        ticket = Ticket(payload)
        self._line.append(ticket)
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Give up a ticket that waited ``max_wait`` without being admitted."""
        if ticket.admitted:
            self.leave()
        else:
            ticket.cancelled = True
            self.rejected += 1

    def leave(self) -> Ticket | None:
        """End one call; return the ticket admitted in its place, if any (its owner may proceed)."""
        while self._line:
            ticket = self._line.popleft()
            if not ticket.cancelled:
                ticket.admitted = True
                return ticket
        self.active -= 1
        return None

    @property
    def waiting(self) -> int:
        return sum(not t.cancelled for t in self._line)

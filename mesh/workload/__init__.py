"""Traffic for the lessons: load generators, a burst of calls and its tally, traffic mirroring, and
the monolith the architecture lesson measures the mesh against."""

from .load import LoadRun, SteadyLoad, closed_loop, open_loop
from .mirror import Mirror, MirrorRecord
from .monolith import LocalCallError, Monolith, ScaledMonolith
from .traffic import CallRecord, burst, initial_metadata, observe, tally, timed

__all__ = [
    "CallRecord",
    "LoadRun",
    "LocalCallError",
    "Mirror",
    "MirrorRecord",
    "Monolith",
    "ScaledMonolith",
    "SteadyLoad",
    "burst",
    "closed_loop",
    "initial_metadata",
    "observe",
    "open_loop",
    "tally",
    "timed",
]

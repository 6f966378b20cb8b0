"""The lessons: what each notebook shows and lets a learner change — its experiments, pictures and
controls — apart from the runtime they drive (``mesh``, ``sim``). Notebooks import one module each:

- ``tour`` (00), ``rpc`` and ``wire`` (01), ``discovery`` and ``chapter`` (02), ``balancing`` (03),
  ``fault_tolerance`` (04), ``simulation`` (05), ``releases`` (06), ``gateway`` (07), ``bus`` (08),
  ``cascade`` (09), ``observability`` (10);
- the live workbench, for any running mesh: ``console`` (faults, policy and load, with live
  charts), ``service_map`` (the call graph coloured by health and breakers), ``traces`` (the trace
  explorer), ``replay`` (a recorded run scrubbed over the map);
- ``charts``, ``display``, ``experiment``, ``live`` and ``live_charts`` hold what several lessons share;
- ``answer_limits``: the time, memory and thread limits a graded exercise's check runs an answer within.

Nothing here is imported by the runtime.
"""

__all__ = ["answer_limits", "balancing", "bus", "cascade", "chapter", "charts", "console", "discovery",
           "display", "experiment", "fault_tolerance", "gateway", "live", "live_charts", "observability",
           "releases", "replay", "rpc", "service_map", "simulation", "tour", "traces", "wire"]

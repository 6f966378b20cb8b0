"""The lessons: what each notebook shows and lets a learner change — its experiments, pictures and
controls — apart from the runtime they drive (``mesh``, ``sim``). Notebooks import one module each:

- in the chapter's order: ``tour`` (00), ``architecture`` (01), ``rpc`` and ``wire`` (02),
  ``discovery`` and ``chapter`` (03), ``balancing`` (04), ``fault_tolerance`` (05), ``cascade`` (06),
  ``simulation`` (07), ``gateway`` (08), ``bus`` (09), ``observability`` (10), ``framework`` (11),
  ``releases`` (12);
- the live workbench, for any running mesh: ``console`` (faults, policy and load, with live
  charts), ``service_map`` (the call graph coloured by health and breakers), ``traces`` (the trace
  explorer), ``replay`` (a recorded run scrubbed over the map);
- ``charts``, ``display``, ``experiment``, ``live`` and ``live_charts`` hold what several lessons share;
- ``answer_limits``: the time, memory and thread limits a graded exercise's check runs an answer within.

Nothing here is imported by the runtime.
"""

__all__ = ["answer_limits", "architecture", "balancing", "bus", "cascade", "chapter", "charts", "console",
           "discovery", "display", "experiment", "fault_tolerance", "framework", "gateway", "live",
           "live_charts", "observability", "releases", "replay", "rpc", "service_map", "simulation", "tour",
           "traces", "wire"]

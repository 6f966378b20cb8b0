"""The lessons: what each notebook shows and lets a learner change — its experiments, pictures and
controls — apart from the runtime they drive (``mesh``, ``sim``). Notebooks import one module each:

- ``tour`` (00), ``rpc`` and ``wire`` (01), ``discovery`` and ``chapter`` (02), ``balancing`` (03),
  ``fault_tolerance`` (04), ``simulation`` (05), ``releases`` (06), ``gateway`` (07), ``bus`` (08);
- ``charts``, ``display`` and ``experiment`` hold what several lessons share.

Nothing here is imported by the runtime.
"""

__all__ = ["balancing", "bus", "chapter", "charts", "discovery", "display", "experiment", "fault_tolerance",
           "gateway", "releases", "rpc", "simulation", "tour", "wire"]

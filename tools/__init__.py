"""Tools the Makefile runs, never imported by the workbench itself: stub generation from
``protos/`` (``make protos``), building and grading the exercises (``make exercises``,
``make grade``), and breaking the call plan on purpose (``make mutations``)."""

__all__ = ["codegen", "exercises", "plan_mutations"]

"""Tools the Makefile runs, never imported by the workbench itself: stub generation from
``protos/`` (``make protos``) and building and grading the exercises (``make exercises``,
``make grade``)."""

__all__ = ["codegen", "exercises"]

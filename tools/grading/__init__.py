"""Grading a submitted notebook so that its code cannot cheat, crash or outlive the grader.

The notebook runs in a sandbox (``sandbox``) as the *answers* (``answers``); the tests run in a
process it never touched, the *checker* (``checker``), and reach the answers only through a channel
of plain data and handles (``wire``); ``grader`` runs many of them and reads back the scores.
"""

from .grader import Result, grade_many
from .sandbox import Sandbox, probe

__all__ = ["Result", "Sandbox", "grade_many", "probe"]

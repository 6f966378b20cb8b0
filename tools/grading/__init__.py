"""Grading a submitted notebook so that its code cannot cheat, crash or outlive the grader.

The notebook runs in a sandbox (``sandbox``) as the *answers* (``answers``); the tests run in a
process it never touched, the *checker* (``checker``), and reach the answers only through a channel
(``wire``) of plain data and handles (``values``); ``grader`` runs many of them and reads back the scores.
"""

from .grader import Result, grade_many
from .sandbox import Sandbox, probe
from .values import Remote, RemoteCallable
from .wire import AnswersGone, LearnerCodeError, Peer

__all__ = ["AnswersGone", "LearnerCodeError", "Peer", "Remote", "RemoteCallable", "Result", "Sandbox",
           "grade_many", "probe"]

"""Stands in for otter-grader in the learner's process while a notebook is graded.

The notebook's own ``grader.check("q")`` cells are the learner's help, not the grade: the checker
runs every test, hidden ones too, in a process of its own. Here they do nothing (and cost none of
the seconds importing otter would).
"""


class Notebook:
    """``otter.Notebook`` whose checks, exports and submissions do nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def check(self, *args, **kwargs):
        return None

    def check_all(self, *args, **kwargs):
        return None

    def export(self, *args, **kwargs):
        return None

    def submit(self, *args, **kwargs):
        return None

    def to_pdf(self, *args, **kwargs):
        return None

"""Every lesson without a control test of its own (``tests/test_browser.py``) run whole in a real
browser (``tests/browser.py``): Run All, a picture drawn, nothing on stderr, no error in the
browser's console."""

from __future__ import annotations

import pytest

from .browser import MARKS, ROOT, WITH_CONTROL_TESTS, chromium, lab, notebook  # noqa: F401 - fixtures

pytestmark = MARKS

OTHER_LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")
                       if p.name not in WITH_CONTROL_TESTS)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.lesson(n)) for n in OTHER_LESSONS])
def test_every_other_lesson_runs_all_clean_in_the_browser(notebook, name):
    nb = notebook(name)
    nb.run_all()
    nb.check_drew_picture()
    nb.screenshot("after-run-all")
    nb.check_clean()

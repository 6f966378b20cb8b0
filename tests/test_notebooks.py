"""Every notebook executes headless, top to bottom, on a real mesh — unless this session runs it
whole in Chromium (a browser test marked ``lesson(name)``), which checks the same and more: no
error, nothing on stderr, a picture drawn, and then its controls."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .test_browser import CHROMIUM

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
SKIP: set[str] = set()  # notebooks that cannot run headless, each with its reason in a comment


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name not in SKIP], ids=lambda p: p.name)
def test_notebook_executes(path: Path, request):
    in_browser = {marker.args[0] for item in request.session.items
                  for marker in item.iter_markers("lesson")}
    if CHROMIUM is not None and path.name in in_browser:
        pytest.skip("run whole in Chromium in this session (tests/test_browser.py)")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    pictures = ("image/png", "application/vnd.jupyter.widget-view+json")  # a plot, or a live view
    shown = [o for c in nb.cells for o in c.get("outputs", [])
             if o.get("output_type") in ("display_data", "execute_result")]
    assert any(set(pictures) & set(o.get("data", {})) for o in shown), "the notebook drew no picture"


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name

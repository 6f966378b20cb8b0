"""The harness of the browser tests: JupyterLab on a loopback port, headless Chromium driven by
Playwright, and a notebook opened in a page of its own (``tests/test_browser.py`` uses the lessons'
controls; ``tests/test_browser_lessons.py`` runs the other lessons whole). Two files, so that the two
test workers share the browser's minutes; each file starts its own JupyterLab and Chromium.

Each notebook is copied to a temporary folder, so nothing is saved into the repository. Every
notebook must render without "Error displaying widget" and without an error in the browser's
console. Screenshots go to ``test-artifacts/browser/``.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it when it runs as
root); without it the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_port

__all__ = ["ARTIFACTS", "CHROMIUM", "MARKS", "ROOT", "WITH_CONTROL_TESTS", "Notebook", "chromium", "lab",
           "notebook", "press", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: The marks of every browser test module (``pytestmark = MARKS``).
MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.timeout(420),
    pytest.mark.skipif(CHROMIUM is None, reason="the browser tests need Debian's chromium: apt-get install"
                                                " chromium (as root; .ci/run installs it when run as root)"),
]

#: The lessons whose controls ``tests/test_browser.py`` uses (after running them whole); every
#: other lesson is run whole by ``tests/test_browser_lessons.py``.
WITH_CONTROL_TESTS = {"00-tour.ipynb", "03-discovery.ipynb", "04-load-balancing.ipynb",
                      "05-fault-tolerance.ipynb", "06-cascading-failure.ipynb", "07-simulation.ipynb",
                      "10-observability.ipynb"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free loopback port, serving a copy of the notebooks; stopped with its kernels."""
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    settings = work / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update checks: the machine has no internet, and a refused fetch is a console error.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"checkForUpdates": False,
                                                                           "fetchNews": "false"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(work / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "ws"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={work / 'notebooks'}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.getuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("JupyterLab did not start")
            time.sleep(0.2)
    yield base, token
    os.killpg(server.pid, signal.SIGTERM)  # the server, and the kernels it started
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture(scope="module")
def chromium():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


class Notebook:
    """One notebook open in a browser page, with the console errors the page logs."""

    def __init__(self, chromium, lab, name: str):
        base, token = lab
        self.name = name
        self.errors: list[str] = []
        self.page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # A workspace of its own, reset: only this notebook open, whatever pages came before.
        self.page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}")
        self.page.wait_for_function(
            "() => { const p = window.jupyterapp && jupyterapp.shell.currentWidget;"
            " const k = p && p.sessionContext && p.sessionContext.session && p.sessionContext.session.kernel;"
            " return k && k.status === 'idle'; }", timeout=90_000)

    def run_all(self) -> None:
        self.page.evaluate("jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_function(
            "() => { const p = jupyterapp.shell.currentWidget;"
            " const cells = p.content.widgets.filter(c => c.model.type === 'code');"
            " return p.sessionContext.session.kernel.status === 'idle'"
            "   && cells.every(c => c.model.executionCount !== null); }", timeout=240_000, polling=500)

    def figure_dots(self, title: str) -> dict[str, str]:
        """Return each node of a map figure (by its title) and its fill colour, as drawn: a node's
        name is the text drawn just above its dot."""
        return self.page.evaluate("""(title) => {
            const figure = [...document.querySelectorAll('.bqplot.figure')]
                .find(f => (f.querySelector('.mainheading') || {}).textContent === title);
            const centre = e => {
                const r = e.getBoundingClientRect();
                return [r.x + r.width / 2, r.y + r.height / 2];
            };
            const texts = [...figure.querySelectorAll('text')].map(t => [t.textContent, centre(t)]);
            const found = {};
            for (const dot of figure.querySelectorAll('path.dot')) {
                const [x, y] = centre(dot);
                const above = texts.filter(([name, [tx, ty]]) => name && ty < y && y - ty < 40)
                    .sort((a, b) => Math.abs(a[1][0] - x) - Math.abs(b[1][0] - x));
                if (above.length) found[above[0][0]] = getComputedStyle(dot).fill;
            }
            return found;
        }""", title)

    def check_drew_picture(self) -> None:
        """Run All drew something: a plot, or a live figure."""
        pictures = self.page.locator(".jp-OutputArea-output img, .bqplot.figure")
        assert pictures.count() > 0, f"{self.name} drew no picture"

    def check_clean(self) -> None:
        """Every widget rendered, and the browser logged no error."""
        assert self.page.locator("text=Error displaying widget").count() == 0
        # JupyterLab renders a traceback, and anything written to stderr, with the stderr mime type.
        stderr = self.page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        assert stderr.all_inner_texts() == []
        assert self.errors == []

    def screenshot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{Path(self.name).stem}-{label}.png"))

    def close(self) -> None:
        self.page.evaluate("jupyterapp.commands.execute('kernelmenu:shutdown')")
        self.page.close()


@pytest.fixture
def notebook(chromium, lab):
    opened = []

    def open_notebook(name: str) -> Notebook:
        opened.append(Notebook(chromium, lab, name))
        return opened[-1]

    yield open_notebook
    for nb in opened:
        nb.close()


def wait_for(nb: Notebook, condition: str, failure, arg=None, timeout: int = 20_000) -> None:
    """Wait for a JavaScript condition on the page; if it never holds, save a screenshot and fail
    with ``failure()``: what the learner would have seen."""
    from playwright.sync_api import TimeoutError as Timeout

    try:
        nb.page.wait_for_function(condition, arg=arg, timeout=timeout)
    except Timeout:
        nb.screenshot("FAILED")
        pytest.fail(f"{failure()} (waited {timeout / 1000:.0f} s)")


def press(handle, key: str) -> None:
    handle.scroll_into_view_if_needed()
    handle.focus()
    handle.press(key)

"""A mesh stopped while calls are in flight leaves nothing running behind it.

In a module of its own: no other mesh is alive while it runs, so any thread that appears and stays
is this test's. (Thread names are not unique per mesh — every registry's check pool names its
threads alike — so a mesh kept by another module's fixture could grow a thread meanwhile.)
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lessons.experiment import CHECKOUT
from mesh import Mesh, SteadyLoad
from mesh.services import shop_topology

from .conftest import eventually


@pytest.mark.slow
def test_a_shop_stopped_under_load_leaves_no_watch_or_client_behind():
    """Calls in flight when a mesh stops used to make clients and config watches after its clean-up
    had run, and those polled a dead registry for ever."""
    before = set(threading.enumerate())

    def left() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t not in before)

    for attempt in range(3):
        with Mesh(shop_topology(1), name="stop-under-load") as mesh:
            mesh.wait_until_passing()
            load = SteadyLoad(mesh.client("frontend").Checkout, CHECKOUT, 200, np.random.default_rng(attempt))
            time.sleep(0.05 * attempt)
        load.stop(wait=True)
    try:
        eventually(lambda: not left(), timeout=10)
    except BaseException:
        pytest.fail(f"threads left: {left()}")

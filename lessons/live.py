"""What every live widget of the lessons shares: it stays alive after Run All, says so when its mesh
is gone, shows its own errors, and stops its refresher when it should.

A :class:`LivePanel` is an ipywidgets box with a refresher thread that calls :meth:`refresh` every
``period`` seconds. The thread stops when the panel is closed, when a newer panel of the same name
replaces it (a re-run cell), or when its mesh stops — then the panel disables its controls and
says, in its own ``notice`` line, that the mesh is gone and how to get one back. Every callback a
control runs goes through :meth:`LivePanel.guard`: an exception is shown in the panel, never only
in JupyterLab's log console. :func:`set_killed` and :func:`instance_state` are how the panels'
kill buttons act and how they name an instance's state, the same in every panel.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Container, Iterable
from typing import Any

import ipywidgets as widgets

from mesh.core.lifetime import ByName

_panels = ByName()


def set_killed(mesh, instance_id: str, killed: bool) -> None:
    """Kill or revive ``instance_id`` so that it is killed, or not; nothing if it already is (a
    refresh that sets a control to what the mesh has must not act again)."""
    running = mesh.instance(instance_id).running
    if killed and running:
        mesh.kill(instance_id)
    elif not killed and not running:
        mesh.revive(instance_id)


def instance_state(instance, passing: Container[str]) -> str:
    """Return ``killed`` (its server is stopped), ``passing`` (discovery lists it) or ``critical``."""
    return "killed" if not instance.running else "passing" if instance.id in passing else "critical"


def problem_html(error: BaseException) -> str:
    """Return how a widget shows an exception its callback raised."""
    return (f"<div style='color:#c62828'><b>{html.escape(type(error).__name__)}</b>: "
            f"{html.escape(str(error))}</div>")


def shown_in(notice: widgets.HTML, action: Callable[..., Any]) -> Callable[..., None]:
    """Wrap a callback so that an exception it raises is shown in ``notice``, not in the log console."""

    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            action(*args, **kwargs)
        except Exception as error:  # shown to the learner, in the widget
            notice.value = problem_html(error)

    return guarded


class LivePanel(widgets.VBox):
    """A box of controls and views over a running mesh, refreshed every ``period`` seconds."""

    def __init__(self, mesh, name: str, children: Iterable[widgets.Widget], period: float = 0.5):
        self.mesh = mesh
        self.period = period
        self.notice = widgets.HTML()
        self._name = name
        self._halt = threading.Event()
        self._ended = False
        self._refresh_lock = threading.Lock()
        self._inside = threading.local()  # set while this thread refreshes the panel
        self.refreshes = 0  # how many refreshes have run (the refresh rate, measured)
        super().__init__([*children, self.notice])
        _panels.replace(name)
        _panels.claim(name, self)
        self._thread = threading.Thread(target=self._loop, name=f"live-{name}", daemon=True)
        self._thread.start()

    # -- what a panel provides -------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the views up to date (called on the refresher thread)."""

    def controls(self) -> list[widgets.Widget]:
        """Return the widgets to disable when the panel can no longer act."""
        return [w for w in _descendants(self) if hasattr(w, "disabled") and w is not self.notice]

    def on_stop(self) -> None:
        """Release what the panel runs besides its refresher (a load generator)."""

    # -- lifetime --------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return not self._ended

    def _loop(self) -> None:
        # At a fixed rate: a refresh is due one period after the previous one was due, not one period
        # after it ended (which would be slower than asked); a tick missed altogether is skipped.
        due = time.monotonic() + self.period
        while not self._halt.wait(max(0.0, due - time.monotonic())):
            if self.mesh.stopped:
                self._end(f"The mesh <b>{html.escape(self.mesh.name)}</b> has stopped, so these controls "
                          f"do nothing any more: run the cell that starts it again, then this one.")
                return
            self.refresh_now()
            due += self.period
            if due < time.monotonic():
                due = time.monotonic() + self.period

    def refresh_now(self) -> None:
        """Refresh at once (on the calling thread), showing any error in the panel.

        A refresh sets controls to what the mesh has, which runs their callbacks: those of controls
        that change the mesh do nothing then (see :meth:`guard`).
        """
        if getattr(self._inside, "refreshing", False):
            return
        with self._refresh_lock:
            self._inside.refreshing = True
            try:
                self.refresh()
            except Exception as error:  # a view must not die silently: show it in the panel
                self.show_problem(error)
            finally:
                self._inside.refreshing = False
                self.refreshes += 1

    def guard(self, action: Callable[..., Any], refresh: bool = True) -> Callable[..., None]:
        """Wrap a control's callback: refuse when the mesh is gone, show any exception here, and
        (with ``refresh``: a control that changes the mesh) bring the views up to date at once
        rather than at the next tick.

        Such a control acts only when a learner (or code) moves it, never when a refresh moves it
        to show what the mesh has: the refresh may have read the mesh just before a change made
        elsewhere, and writing its view back would undo that change.
        """

        def guarded(*args: Any, **kwargs: Any) -> None:
            if refresh and getattr(self._inside, "refreshing", False):
                return
            if self.mesh.stopped or self._ended:
                self._end("This panel's mesh has stopped: nothing was changed.")
                return
            try:
                action(*args, **kwargs)
            except Exception as error:  # shown to the learner, in the widget
                self.show_problem(error)
            else:
                if refresh:
                    self.refresh_now()

        return guarded

    def show_problem(self, error: BaseException) -> None:
        self.notice.value = problem_html(error)

    def stop(self) -> None:
        """Stop refreshing (the panel stays on screen, its controls disabled)."""
        self._end("A newer panel took over from this one (its cell was run again).")

    def close(self) -> None:
        self._end("")
        super().close()

    def _end(self, why: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._halt.set()
        try:
            self.on_stop()
        finally:
            for control in self.controls():
                control.disabled = True
            if why:
                self.notice.value = f"<div style='color:#c62828'>{why}</div>"
            _panels.release(self._name, self)
            if threading.current_thread() is not self._thread:
                self._thread.join(timeout=5)


def _descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    found = []
    for child in getattr(widget, "children", ()):
        found.append(child)
        found.extend(_descendants(child))
    return found


__all__ = ["LivePanel", "instance_state", "problem_html", "set_killed", "shown_in"]

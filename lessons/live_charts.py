"""Charts that update while load runs: bqplot figures whose data a refresher thread replaces.

bqplot draws in the browser (d3) and a refresh sends only the new numbers over the widget's comm,
so two updates a second cost the kernel little — unlike redrawing a matplotlib figure, which
renders a picture in the kernel each time (see the README for how the libraries were chosen).
"""

from __future__ import annotations

from collections.abc import Sequence

import bqplot as bq
import numpy as np

SIZE = {"height": "230px", "width": "100%"}
MARGIN = {"top": 30, "bottom": 40, "left": 55, "right": 15}
STATUS_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "p50": "#1565c0", "p99": "#ef6c00"}


class SeriesChart:
    """A few named lines over the last seconds (x: seconds ago, 0 = now)."""

    def __init__(self, title: str, names: Sequence[str], colours: Sequence[str], y_label: str,
                 window: float, log: bool = False):
        self.x = bq.LinearScale(min=-window, max=0.0)
        self.y = bq.LogScale() if log else bq.LinearScale(min=0.0)
        self.lines = bq.Lines(x=np.array([-window, 0.0]), y=np.full((len(names), 2), np.nan),
                              scales={"x": self.x, "y": self.y}, colors=list(colours), labels=list(names),
                              display_legend=True, stroke_width=2)
        axes = [bq.Axis(scale=self.x, label="seconds ago"),
                bq.Axis(scale=self.y, side="left", label=y_label, tick_format=".3~g")]
        self.figure = bq.Figure(marks=[self.lines], axes=axes, title=title, layout=dict(SIZE),
                                fig_margin=dict(MARGIN), legend_location="top-left",
                                animation_duration=0)

    def show(self, x: np.ndarray, ys: Sequence[np.ndarray]) -> None:
        """Replace the lines' data (one y array per name, nan where there is nothing to draw)."""
        with self.lines.hold_sync():
            self.lines.x = x
            self.lines.y = np.vstack(ys) if len(x) else np.full((len(ys), 0), np.nan)


class BarChart:
    """One bar per category (instances), replaced on every refresh."""

    def __init__(self, title: str, y_label: str, colour: str = "#1565c0"):
        self.x = bq.OrdinalScale()
        self.y = bq.LinearScale(min=0.0)
        self.bars = bq.Bars(x=[], y=[], scales={"x": self.x, "y": self.y}, colors=[colour], padding=0.3,
                            labels=[y_label])
        axes = [bq.Axis(scale=self.x), bq.Axis(scale=self.y, side="left", label=y_label,
                                               tick_format=".3~g")]
        self.figure = bq.Figure(marks=[self.bars], axes=axes, title=title, layout=dict(SIZE),
                                fig_margin=dict(MARGIN), animation_duration=0)

    def show(self, names: Sequence[str], values: Sequence[float],
             colours: Sequence[str] | None = None) -> None:
        with self.bars.hold_sync():
            self.bars.x = list(names)
            self.bars.y = np.asarray(values, dtype=float)
            if colours is not None:
                self.bars.colors = list(colours)


def buckets(starts: np.ndarray, now: float, window: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the bucket of each start time (0 = oldest) and the buckets' centres in seconds ago."""
    edges = np.arange(now - window, now + 1e-9, width)
    index = np.clip(((starts - (now - window)) // width).astype(int), 0, len(edges) - 1)
    return index, edges + width / 2 - now


__all__ = ["STATUS_COLOURS", "BarChart", "SeriesChart", "buckets"]

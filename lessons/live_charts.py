"""Charts that update while load runs: bqplot figures whose data a refresher thread replaces.

bqplot draws in the browser (d3) and a refresh sends only the new numbers over the widget's comm,
so two updates a second cost the kernel little — unlike redrawing a matplotlib figure, which
renders a picture in the kernel each time (see the README for how the libraries were chosen).

Three things bqplot 0.13 draws with errors in the browser's console, found by the browser test and
avoided here, in the map and in the replay: a line with no points, a line with a missing (nan)
point, and a scatter mark's own ``names``. So each series is a line mark of its own holding only
the points it has (hidden while it has none), and a separate label mark writes node names.
"""

from __future__ import annotations

from collections.abc import Sequence

import bqplot as bq
import numpy as np

SIZE = {"height": "230px", "width": "100%"}
MARGIN = {"top": 30, "bottom": 40, "left": 55, "right": 15}
STATUS_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "p50": "#1565c0", "p99": "#ef6c00"}


def series_lines(names: Sequence[str], colours: Sequence[str], scales: dict) -> list[bq.Lines]:
    """Return one line mark per name, hidden until :func:`show_series` gives it points."""
    return [bq.Lines(x=[0.0, 1.0], y=[1.0, 1.0], scales=scales, colors=[colour], labels=[name],
                     display_legend=True, stroke_width=2, visible=False)
            for name, colour in zip(names, colours, strict=False)]


def show_series(lines: Sequence[bq.Lines], x: np.ndarray, ys: Sequence[np.ndarray]) -> None:
    """Give each line the points of its series that are not nan (and hide a line that has none)."""
    x = np.asarray(x, dtype=float)
    for line, y in zip(lines, ys, strict=True):
        y = np.asarray(y, dtype=float)
        kept = ~np.isnan(y) if len(y) == len(x) else np.zeros(len(x), dtype=bool)
        with line.hold_sync():
            if kept.any():
                line.x, line.y = x[kept], y[kept]
            line.visible = bool(kept.any())


class SeriesChart:
    """A few named lines over the last seconds (x: seconds ago, 0 = now)."""

    def __init__(self, title: str, names: Sequence[str], colours: Sequence[str], y_label: str,
                 window: float, log: bool = False):
        self.x = bq.LinearScale(min=-window, max=0.0)
        self.y = bq.LogScale() if log else bq.LinearScale(min=0.0)
        self.lines = series_lines(names, colours, {"x": self.x, "y": self.y})
        axes = [bq.Axis(scale=self.x, label="seconds ago"),
                bq.Axis(scale=self.y, side="left", label=y_label, tick_format=",.5~g")]
        self.figure = bq.Figure(marks=self.lines, axes=axes, title=title, layout=dict(SIZE),
                                fig_margin=dict(MARGIN), legend_location="top-left",
                                animation_duration=0)

    def show(self, x: np.ndarray, ys: Sequence[np.ndarray]) -> None:
        """Replace the lines' data (one y array per name, nan where there is nothing to draw)."""
        show_series(self.lines, x, ys)

    def series(self, name: str) -> np.ndarray:
        """The y values shown now for one name (empty while its line is hidden)."""
        line = next(line for line in self.lines if line.labels == [name])
        return np.asarray(line.y, dtype=float) if line.visible else np.array([])


class BarChart:
    """One bar per category (instances), replaced on every refresh."""

    def __init__(self, title: str, y_label: str, colour: str = "#1565c0"):
        self.x = bq.OrdinalScale()
        self.y = bq.LinearScale(min=0.0)
        self.bars = bq.Bars(x=[], y=[], scales={"x": self.x, "y": self.y}, colors=[colour], padding=0.3,
                            labels=[y_label])
        axes = [bq.Axis(scale=self.x), bq.Axis(scale=self.y, side="left", label=y_label,
                                               tick_format=",.5~g")]
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


__all__ = ["STATUS_COLOURS", "BarChart", "SeriesChart", "buckets", "series_lines", "show_series"]

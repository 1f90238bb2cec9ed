"""The user map: (a sample of) the users on two axes, coloured by segment, with a legend."""

from __future__ import annotations

from rich.columns import Columns
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

EMPTY = "The map appears once the workspace has a segmentation run."
CAPTION = "Each dot is a user; nearby users have similar texts and behaviour (first two principal components)."


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


class SegmentMap(Vertical):
    """A plotext scatter with one series per segment, in the same colours as the table and the report."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.n_points = 0
        self.legend: list[Text] = []

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="map-caption")
        yield PlotextPlot(id="map-plot")
        yield Static("", id="map-legend")

    def show(self, points: list[tuple[float, float]], labels: list[int], names: dict[int, str], colours: dict[int, str]) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_figure()
        by_segment: dict[int, tuple[list[float], list[float]]] = {}
        for (x, y), label in zip(points, labels):
            xs, ys = by_segment.setdefault(int(label), ([], []))
            xs.append(x)
            ys.append(y)
        for sid in sorted(by_segment):
            xs, ys = by_segment[sid]
            plt.scatter(xs, ys, marker="braille", color=_rgb(colours.get(sid, "#A0A0A0")))
        plt.xticks([])
        plt.yticks([])
        plt.frame(True)
        plot.refresh()
        self.n_points = len(points)
        self.query_one("#map-caption", Static).update(Text(CAPTION, style="dim"))
        # Columns wraps between entries, never inside one.
        # The segments on the map: every segment of a flat run, the top level of a hierarchy.
        self.legend = [Text.assemble(("● ", colours.get(sid, "")), f"{sid} {names[sid]}") for sid in sorted(names) if sid in by_segment]
        self.query_one("#map-legend", Static).update(Columns(self.legend, padding=(0, 2)))

    def clear(self) -> None:
        self.query_one(PlotextPlot).plt.clear_figure()
        self.n_points = 0
        self.legend = []
        self.query_one("#map-caption", Static).update(EMPTY)
        self.query_one("#map-legend", Static).update("")

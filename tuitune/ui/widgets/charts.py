"""Provides the dashboard's charts, one PlotextPlot subclass each, redrawn through ``update()``.

Each ``update()`` clears the figure, plots from a SessionView and refreshes; the dashboard calls it at
most a few times a second (and only for the chart on show). The value axis's ticks are laid out for the
chart's height at that moment, so a chart whose height changes afterwards (the first layout after an early
update, a resized terminal, a table above it that grew) draws its last update again (``_Chart.on_resize``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from tuitune.core.records import TrialRecord, TrialState, pareto_set
from tuitune.ui.axes import Curve, ValueAxis, value_axis
from tuitune.ui.model import SessionView

TRAIN, VAL, BEST, DIM, FAILED = "cyan", "orange", "green", "gray", "red"
CURVES = 30  # the all-curves chart draws the best 30 complete trials and the 30 latest others
MAX_POINTS = 1500  # scatter plots of more points are thinned evenly (a terminal shows fewer cells)


def _thin(xs: list[Any], ys: list[Any]) -> tuple[list[Any], list[Any]]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    step = len(xs) // MAX_POINTS + 1
    return xs[::step], ys[::step]


# plotext's colour names as Rich styles, for the legend drawn under the plot
RICH = {"orange": "dark_orange", "gray": "grey58", "white": "bright_white"}


def _epoch_ticks(plt: Any, hi: int) -> None:
    """Whole-number epoch ticks from 1 to ``hi`` (plotext's own are fractional: 1.0 5.8 10.5); a 1-epoch
    chart puts its one epoch in the middle instead of on the frame."""
    if hi <= 1:
        plt.xlim(0.5, 1.5)
        plt.xticks([1], ["1"])
        return
    _int_ticks(plt, 1, hi)


def _int_ticks(plt: Any, lo: int, hi: int) -> None:
    """At most 7 whole-number ticks from ``lo`` to ``hi`` on the x axis."""
    plt.xlim(lo, hi)
    step = max(1, -(-(hi - lo) // 6))
    ticks = list(range(lo, hi + 1, step))
    if ticks[-1] != hi:
        ticks.append(hi)
    plt.xticks(ticks, [str(x) for x in ticks])


def _xy(t: TrialRecord, key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for e in t.epochs:
        v = e.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(int(e["epoch"]))
            ys.append(float(v))
    return xs, ys


class _Chart(PlotextPlot):
    """Common set-up: an empty figure shows a one-line hint instead of bare axes; curves are drawn on a
    ``ValueAxis`` (round ticks, a diverging curve left off and named, a log axis for losses spanning
    decades); the legend is drawn under the plot, folded to the width, never over the curves."""

    legend: list[tuple[str, str]] = []  # (label, plotext colour) of each curve drawn (set by _begin)
    title_text = short_title = note = x_name = ""
    _axis_rows: int | None = None  # the height in rows the value axis's ticks were laid out for
    _redraw: Callable[[], None] | None = None  # the last update, with its arguments

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each chart's drawing methods (``update``, ``update_series``) remember their last call, which a
        change of height repeats; done here once rather than by hand in every chart."""
        super().__init_subclass__(**kwargs)
        for name in ("update", "update_series"):
            draw = cls.__dict__.get(name)
            if draw is not None:
                setattr(cls, name, _remembered(draw))

    def on_resize(self) -> None:
        if self._redraw is not None and self._axis_rows is not None and self._rows() != self._axis_rows:
            self._redraw()

    def _begin(self, title: str, short: str | None = None) -> Any:
        plt = self.plt
        plt.clear_figure()
        self.legend = []
        self.title_text, self.short_title, self.note = title, short or title, ""
        self.x_name = ""
        self._axis_rows = None
        return plt

    def _title(self, width: int) -> str:
        """The title that fits ``width`` (plotext drops one that does not): the long form, else the short
        one, each with the axis note; the note is kept before the words around it."""
        note = f" · {self.note}" if self.note else ""
        for text in (self.title_text + note, self.short_title + note, self.note or self.short_title):
            if len(text) <= width - 2:
                return text
        text = self.note or self.short_title
        return text[: width - 3] + "…"

    def _empty(self, title: str, hint: str) -> None:
        plt = self._begin(title)
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.text(hint, 0.5, 0.5, alignment="center")
        self.refresh()

    def _rows(self) -> int:
        """The plot's height in rows (before the first layout: a guess)."""
        return max(self.size.height - 4, 3) if self.size.height else 8

    def _axis(self, plt: Any, curves: list[Curve], *, loss: bool) -> ValueAxis:
        """Sets the value axis for ``curves`` and adds its note to the title."""
        self._axis_rows = self._rows()
        axis = value_axis(curves, loss=loss, rows=self._axis_rows)  # a tick about every 4 rows
        plt.ylim(axis.lo, axis.hi)
        plt.yticks(axis.ticks, axis.labels)
        self.note = axis.note
        return axis

    def _curve(self, plt: Any, xs: list[Any], ys: list[float], color: str, label: str | None) -> None:
        """One curve (a single point as a visible dot); its label goes to the legend."""
        if len(xs) == 1:
            plt.scatter(xs, ys, color=color, marker="●")
        else:
            plt.plot(xs, ys, color=color, marker="braille")
        if label:
            self.legend.append((label, color))

    def _legend_lines(self, width: int) -> list[Text]:
        lines: list[Text] = []
        line = Text(" ")
        for label, color in self.legend:
            entry = Text.assemble(("━━ ", RICH.get(color, color)), (label, ""), "  ")
            if line.cell_len > 1 and line.cell_len + entry.cell_len > width:
                lines.append(line)
                line = Text(" ")
            line.append_text(entry)
        if line.cell_len > 1:
            lines.append(line)
        return lines

    def render(self) -> RenderResult:
        self._plot.title(self._title(self.size.width))
        # The x axis's name costs a row: a short chart leaves it out (its title says "per epoch").
        self._plot.xlabel(self.x_name if self.size.height >= 14 else "")
        lines = self._legend_lines(self.size.width)
        if not lines or self.size.height < 6 + len(lines):
            return super().render()
        h = self.size.height - len(lines)
        self._plot.plotsize(self.size.width, h)
        self._plot._set_size(self.size.width, h)
        self._plot.theme(self._get_plotext_theme_name(self.app.theme))
        out = Text.from_ansi(self._plot.build().rstrip("\n"))
        for line in lines:
            out.append("\n")
            out.append_text(line)
        return out


def _remembered(draw: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(draw)
    def remembered(self: _Chart, *args: Any, **kwargs: Any) -> None:
        self._redraw = functools.partial(draw, self, *args, **kwargs)
        draw(self, *args, **kwargs)

    return remembered


class TrialChart(_Chart):
    """The current (or chosen) trial's train and validation loss per epoch, over the best trial's curve."""

    number: int | None = None  # the trial drawn

    def update(self, view: SessionView, number: int | None) -> None:
        t = view.trials.get(number) if number is not None else None
        best = view.best()
        self.number = t.number if t is not None else None
        if t is None:
            self._empty("current trial", "no trial yet")
            return
        plt = self._begin(f"trial {t.number}: loss per epoch ({t.state.value})", f"trial {t.number} loss")
        self.x_name = "epoch"
        series: list[tuple[list[int], list[float], str, str]] = []
        if best is not None and best.number != t.number:
            bx, by = _xy(best, "val_loss")
            if bx:
                series.append((bx, by, DIM, f"best #{best.number} val"))
        for key, color, label in (("train_loss", TRAIN, "train"), ("val_loss", VAL, "val")):
            xs, ys = _xy(t, key)
            if xs:
                series.append((xs, ys, color, label))
        # every curve here matters (this trial and the best): a diverging one spanning decades goes on a log axis
        axis = self._axis(plt, [Curve(None, ys, matters=True) for _, ys, _, _ in series], loss=True)
        for xs, ys, color, label in series:
            self._curve(plt, xs, axis.ys(ys), color, label)
        _epoch_ticks(plt, max(t.budget, t.last_epoch, 1))
        self.refresh()


class CurvesChart(_Chart):
    """Every trial's learning curve of the session metric; pruned and failed trials dimmed, rungs marked.
    A curve that diverges from the rest is left off the axis (the title names it) unless it is the best
    or the ``selected`` trial."""

    def update(self, view: SessionView, selected: int | None = None) -> None:
        trials = [t for t in view.curves(CURVES) if t.epochs]
        if not trials:
            self._empty(f"all trials: {view.metric}", "no epochs yet")
            return
        n = view.n_trials()
        shown = f"the best {CURVES} and latest others of {n}" if n > len(trials) else "all trials"
        plt = self._begin(f"{shown}: {view.metric} per epoch", f"{view.metric} per epoch")
        self.x_name = "epoch"
        best = view.best()
        series: list[tuple[TrialRecord, list[int], list[float], str, str]] = []
        for t in trials:
            xs, ys = _xy(t, view.metric)
            if not xs:
                continue
            if t.state in (TrialState.PRUNED, TrialState.INTERRUPTED):
                color, kind = DIM, "pruned"
            elif t.state == TrialState.FAILED:
                color, kind = FAILED, "failed"
            elif best is not None and t.number == best.number:
                continue  # drawn last, on top
            elif t.state == TrialState.RUNNING:
                color, kind = VAL, f"running #{t.number}"
            else:
                color, kind = TRAIN, "complete"
            series.append((t, xs, ys, color, kind))
        if best is not None:
            xs, ys = _xy(best, view.metric)
            if xs:
                series.append((best, xs, ys, BEST, f"best #{best.number}"))
        matters = {selected, best.number if best is not None else None}
        axis = self._axis(
            plt,
            [Curve(t.number, ys, matters=t.number in matters) for t, _, ys, _, _ in series],
            loss="loss" in view.metric,
        )
        for r in view.rungs():
            plt.vline(r, DIM)
        labelled: set[str] = set()  # the legend names each kind of curve once
        for _, xs, ys, color, kind in series:
            self._curve(plt, xs, axis.ys(ys), color, None if kind in labelled else kind)
            labelled.add(kind)
        _epoch_ticks(plt, max(view.record.max_epochs, 2))
        self.refresh()


class BestChart(_Chart):
    """The best value so far against the trial number, with each complete trial's value."""

    def update(self, view: SessionView) -> None:
        xs, ys, px, py = view.best_so_far()
        if not xs:
            self._empty(f"best {view.metric} so far", "no complete trial yet")
            return
        plt = self._begin(f"best {view.metric} so far ({view.direction})")
        self.x_name = "trial"
        _int_ticks(plt, min(px), max(max(px), min(px) + 1))
        px, py = _thin(px, py)
        axis = self._axis(plt, [Curve(None, ys, matters=True), Curve(None, py, matters=True)], loss=False)
        plt.scatter(px, axis.ys(py), color=DIM, marker="dot")
        plt.plot(xs, axis.ys(ys), color=BEST, marker="braille")
        self.legend += [("trial", DIM), ("best so far", BEST)]
        self.refresh()


class SliceChart(_Chart):
    """The session metric against one parameter (a slice plot); complete trials only."""

    def update(self, view: SessionView, param: str | None, hint: bool = True) -> None:
        if param is None:
            self._empty("slice", "no searched parameter")
            return
        spec = view.record.space.get(param, {})
        pts = view.slice_points(param)
        if len(pts) > MAX_POINTS:
            pts = pts[:: len(pts) // MAX_POINTS + 1]
        if not pts:
            self._empty(f"{view.metric} against {param}", "no complete trial yet")
            return
        plt = self._begin(f"{view.metric} against {param}" + ("   (x: next parameter)" if hint else ""))
        self.x_name = param
        axis = self._axis(plt, [Curve(None, [y for _, y in pts], matters=True)], loss=False)
        if spec.get("type") == "choice":
            values = list(spec.get("values", []))
            labels = [str(v) for v in values]
            xs = [values.index(x) if x in values else -1 for x, _ in pts]
            plt.scatter(xs, axis.ys([y for _, y in pts]), color=VAL, marker="dot")
            plt.xticks(list(range(len(values))), labels)
            plt.xlim(-0.5, len(values) - 0.5)
        else:
            xs = [float(x) for x, _ in pts if isinstance(x, (int, float))]
            ys = [y for x, y in pts if isinstance(x, (int, float))]
            if spec.get("scale") == "log" and all(x > 0 for x in xs):
                plt.xscale("log")
            plt.scatter(xs, axis.ys(ys), color=VAL, marker="dot")
        best = view.best()
        if best is not None and isinstance(best.config.get(param), (int, float)) and spec.get("type") != "choice":
            plt.scatter([float(best.config[param])], [axis.y(best.value)], color=BEST, marker="x")
            self.legend.append((f"best #{best.number}", BEST))
        self.refresh()


class ParetoChart(_Chart):
    """Several objectives: the first two metrics of each complete trial, the Pareto set (records.pareto_set)
    joined as a staircase, the dominated ones dim and the infeasible ones red."""

    def update(self, view: SessionView) -> None:
        goal = view.goal
        if not goal.multi:
            self._empty("Pareto set", "one objective: the best chart shows it")
            return
        m1, m2 = goal.metrics[0], goal.metrics[1]
        trials = [t for t in view.store.trials(view.name, with_epochs=False)
                  if t.state == TrialState.COMPLETE and t.value is not None]
        pts = {t.number: v for t in trials if (v := goal.values(t)) is not None}
        if not pts:
            self._empty(f"{m2} against {m1}", "no complete trial yet")
            return
        front = [t.number for t in pareto_set(trials, goal)]
        plt = self._begin(f"Pareto set: {m2} ({goal.directions[1]}) against {m1} ({goal.directions[0]})",
                          f"Pareto set: {m2} against {m1}")
        self.x_name = m1
        on_front = set(front)
        feasible = {t.number for t in trials if goal.feasible(t)}
        bad = [n for n in pts if n not in on_front and n not in feasible]
        rest = [n for n in pts if n not in on_front and n in feasible]
        for nums, color, label in ((rest, DIM, "dominated"), (bad, FAILED, "infeasible")):
            if nums:
                xs, ys = _thin([pts[n][0] for n in nums], [pts[n][1] for n in nums])
                plt.scatter(xs, ys, color=color, marker="dot")
                self.legend.append((label, color))
        fx, fy = [pts[n][0] for n in front], [pts[n][1] for n in front]
        self._curve(plt, fx, fy, BEST, f"Pareto set ({len(front)})")
        plt.scatter(fx, fy, color=BEST, marker="●")
        self.refresh()


PALETTE = ("cyan", "orange", "magenta", "green", "yellow", "blue", "red", "white")


class OverlayChart(_Chart):
    """Several learning curves of one metric overlaid, each in its colour with a legend entry."""

    def update_series(self, title: str, metric: str, series: list[tuple[str, TrialRecord, str | None]], hi: int) -> None:
        """``series``: (legend label, trial with its epochs, colour or None for the next of the palette)."""
        drawn = [(label, t, color) for label, t, color in series if _xy(t, metric)[0]]
        if not drawn:
            self._empty(title, "no epochs yet")
            return
        plt = self._begin(title)
        self.x_name = "epoch"
        # every curve here was chosen (the compared trials, a change and its base): none is left off
        axis = self._axis(plt, [Curve(None, _xy(t, metric)[1], matters=True) for _, t, _ in drawn], loss="loss" in metric)
        for i, (label, t, color) in enumerate(drawn):
            xs, ys = _xy(t, metric)
            self._curve(plt, xs, axis.ys(ys), color or PALETTE[i % len(PALETTE)], label)
        _epoch_ticks(plt, max(hi, 2))
        self.refresh()

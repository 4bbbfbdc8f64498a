"""Provides the dashboard's charts, one PlotextPlot subclass each, redrawn through ``update()``.

Each ``update()`` clears the figure, plots from a SessionView and refreshes; the dashboard calls it at
most a few times a second (and only for the chart on show).
"""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

from tuitune.core.records import TrialRecord, TrialState
from tuitune.ui.model import SessionView

TRAIN, VAL, BEST, DIM, FAILED = "cyan", "orange", "green", "gray", "red"
CURVES = 30  # the all-curves chart draws the best 30 complete trials and the 30 latest others
MAX_POINTS = 1500  # scatter plots of more points are thinned evenly (a terminal shows fewer cells)


def _thin(xs: list[Any], ys: list[Any]) -> tuple[list[Any], list[Any]]:
    if len(xs) <= MAX_POINTS:
        return xs, ys
    step = len(xs) // MAX_POINTS + 1
    return xs[::step], ys[::step]


def _epoch_ticks(plt: Any, hi: int) -> None:
    """Whole-number epoch ticks from 1 to ``hi`` (plotext's own are fractional: 1.0 5.8 10.5)."""
    _int_ticks(plt, 1 if hi > 1 else 0, hi)


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
    """Common set-up: an empty figure shows a one-line hint instead of bare axes."""

    def _begin(self, title: str) -> Any:
        plt = self.plt
        plt.clear_figure()
        plt.title(title)
        return plt

    def _empty(self, title: str, hint: str) -> None:
        plt = self._begin(title)
        plt.xlim(0, 1)
        plt.ylim(0, 1)
        plt.text(hint, 0.5, 0.5, alignment="center")
        self.refresh()


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
        plt = self._begin(f"trial {t.number}: loss per epoch ({t.state.value})")
        plt.xlabel("epoch")
        if best is not None and best.number != t.number:
            bx, by = _xy(best, "val_loss")
            if bx:
                plt.plot(bx, by, color=DIM, marker="braille", label=f"best #{best.number} val")
        for key, color, label in (("train_loss", TRAIN, "train"), ("val_loss", VAL, "val")):
            xs, ys = _xy(t, key)
            if xs:
                plt.plot(xs, ys, color=color, marker="braille", label=label)
        _epoch_ticks(plt, max(t.budget, t.last_epoch, 1))
        self.refresh()


class CurvesChart(_Chart):
    """Every trial's learning curve of the session metric; pruned and failed trials dimmed, rungs marked."""

    def update(self, view: SessionView) -> None:
        trials = [t for t in view.curves(CURVES) if t.epochs]
        if not trials:
            self._empty(f"all trials: {view.metric}", "no epochs yet")
            return
        n = view.n_trials()
        shown = f"the best {CURVES} and latest others of {n}" if n > len(trials) else "all trials"
        plt = self._begin(f"{shown}: {view.metric} per epoch")
        plt.xlabel("epoch")
        for r in view.rungs():
            plt.vline(r, DIM)
        best = view.best()
        labelled: set[str] = set()  # the legend names each kind of curve once
        for t in trials:
            xs, ys = _xy(t, view.metric)
            if not xs:
                continue
            if t.state in (TrialState.PRUNED, TrialState.INTERRUPTED):
                color, kind = DIM, "pruned/stopped"
            elif t.state == TrialState.FAILED:
                color, kind = FAILED, "failed"
            elif best is not None and t.number == best.number:
                continue  # drawn last, on top
            elif t.state == TrialState.RUNNING:
                color, kind = VAL, f"running #{t.number}"
            else:
                color, kind = TRAIN, "complete"
            plt.plot(xs, ys, color=color, marker="braille", label=None if kind in labelled else kind)
            labelled.add(kind)
        if best is not None:
            xs, ys = _xy(best, view.metric)
            plt.plot(xs, ys, color=BEST, marker="braille", label=f"best #{best.number}")
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
        plt.xlabel("trial")
        _int_ticks(plt, min(px), max(max(px), min(px) + 1))
        px, py = _thin(px, py)
        plt.scatter(px, py, color=DIM, marker="dot", label="trial")
        plt.plot(xs, ys, color=BEST, marker="braille", label="best so far")
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
        plt.xlabel(param)
        if spec.get("type") == "choice":
            values = list(spec.get("values", []))
            labels = [str(v) for v in values]
            xs = [values.index(x) if x in values else -1 for x, _ in pts]
            plt.scatter(xs, [y for _, y in pts], color=VAL, marker="dot")
            plt.xticks(list(range(len(values))), labels)
            plt.xlim(-0.5, len(values) - 0.5)
        else:
            xs = [float(x) for x, _ in pts if isinstance(x, (int, float))]
            ys = [y for x, y in pts if isinstance(x, (int, float))]
            if spec.get("scale") == "log" and all(x > 0 for x in xs):
                plt.xscale("log")
            plt.scatter(xs, ys, color=VAL, marker="dot")
        best = view.best()
        if best is not None and isinstance(best.config.get(param), (int, float)) and spec.get("type") != "choice":
            plt.scatter([float(best.config[param])], [best.value], color=BEST, marker="x", label=f"best #{best.number}")
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
        plt.xlabel("epoch")
        for i, (label, t, color) in enumerate(drawn):
            xs, ys = _xy(t, metric)
            plt.plot(xs, ys, color=color or PALETTE[i % len(PALETTE)], marker="braille", label=label)
        _epoch_ticks(plt, max(hi, 2))
        self.refresh()

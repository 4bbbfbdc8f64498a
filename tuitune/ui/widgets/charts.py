"""Provides the dashboard's charts, one PlotextPlot subclass each, redrawn through ``update()``.

Each ``update()`` clears the figure, plots from a SessionView and refreshes; the dashboard calls it at
most a few times a second (and only for the chart on show).
"""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

from tuitune.core.records import TrialRecord, TrialState, is_rankable
from tuitune.ui.model import SessionView

TRAIN, VAL, BEST, DIM, FAILED = "cyan", "orange", "green", "gray", "red"


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

    def update(self, view: SessionView, number: int | None) -> None:
        t = view.trials.get(number) if number is not None else None
        best = view.best()
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
        hi = max(t.budget, t.last_epoch, 1)
        plt.xlim(1 if hi > 1 else 0, hi)
        self.refresh()


class CurvesChart(_Chart):
    """Every trial's learning curve of the session metric; pruned and failed trials dimmed, rungs marked."""

    def update(self, view: SessionView) -> None:
        trials = [t for t in view.ordered() if t.epochs]
        if not trials:
            self._empty(f"all trials: {view.metric}", "no epochs yet")
            return
        plt = self._begin(f"all trials: {view.metric} per epoch")
        plt.xlabel("epoch")
        for r in view.rungs():
            plt.vline(r, DIM)
        best = view.best()
        for t in trials:
            xs, ys = _xy(t, view.metric)
            if not xs:
                continue
            if t.state in (TrialState.PRUNED, TrialState.INTERRUPTED):
                color = DIM
            elif t.state == TrialState.FAILED:
                color = FAILED
            elif best is not None and t.number == best.number:
                continue  # drawn last, on top
            elif t.state == TrialState.RUNNING:
                color = VAL
            else:
                color = TRAIN
            plt.plot(xs, ys, color=color, marker="braille")
        if best is not None:
            xs, ys = _xy(best, view.metric)
            plt.plot(xs, ys, color=BEST, marker="braille", label=f"best #{best.number}")
        plt.xlim(1, max(view.record.max_epochs, 2))
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
        plt.scatter(px, py, color=DIM, marker="dot", label="trial")
        plt.plot(xs, ys, color=BEST, marker="braille", label="best so far")
        self.refresh()


class SliceChart(_Chart):
    """The session metric against one parameter (a slice plot); complete trials only."""

    def update(self, view: SessionView, param: str | None) -> None:
        if param is None:
            self._empty("slice", "no searched parameter")
            return
        spec = view.record.space.get(param, {})
        pts = [
            (t.config.get(param), t.value)
            for t in view.ordered()
            if is_rankable(t)
        ]
        if not pts:
            self._empty(f"{view.metric} against {param}", "no complete trial yet")
            return
        plt = self._begin(f"{view.metric} against {param}   (x: next parameter)")
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

"""Provides the compare screen: two or more trials' configs side by side, differences marked, and
their learning curves overlaid."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Static

from tuitune.core.records import TrialRecord
from tuitune.ui.format import fmt, fmt_duration
from tuitune.ui.model import SessionView, best_value, trial_duration
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.widgets.charts import PALETTE, OverlayChart


class CompareScreen(TuituneScreen):
    """The trials marked on the dashboard (space), or the selected one and the best."""

    HELP_TITLE = "compare trials"
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("c", "next_metric", "Curve metric", tooltip="Show the next reported metric's curves"),
        Binding("d", "only_differences", "Only differences"),
    ]

    def __init__(self, view: SessionView, numbers: list[int]) -> None:
        super().__init__(name="compare")
        self.view = view
        self.session_name = view.name
        self.numbers = numbers
        self.metric_index = 0
        self.only_diff = False

    def compose(self) -> ComposeResult:
        yield Static(id="compare-header")
        with Horizontal(id="compare-body"):
            yield DataTable(id="compare-config", cursor_type="row", zebra_stripes=True)
            yield OverlayChart(id="compare-chart")
        yield Footer()

    def on_mount(self) -> None:
        self._draw()
        self.query_one(DataTable).focus()

    def _trials(self) -> list[TrialRecord]:
        return [t for n in self.numbers if (t := self.view.trial(n)) is not None]

    def metrics(self) -> list[str]:
        m = self.view.metric
        return [m, *(k for k in self.view.metrics if k not in (m, "epoch_seconds", "lr"))]

    def differing(self, trials: list[TrialRecord]) -> set[str]:
        """The parameters whose values are not the same in every trial compared."""
        keys = {k for t in trials for k in t.config}
        return {k for k in keys if len({repr(t.config.get(k)) for t in trials}) > 1}

    def _draw(self) -> None:
        v, trials = self.view, self._trials()
        diff = self.differing(trials)
        self.query_one("#compare-header", Static).update(
            f"[b]compare[/] {len(trials)} trials of {v.name}: "
            + (f"[b yellow]{len(diff)} parameters differ[/] (≠)" if diff else "the same config")
            + "   [dim]d: only differences  c: curve metric[/]"
        )
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("")
        for i, t in enumerate(trials):
            table.add_column(Text(f"#{t.number}", style=f"bold {PALETTE[i % len(PALETTE)]}"))
        best = v.best()
        table.add_row(
            Text(v.metric, style="bold"),
            *(Text(fmt(best_value(t, v.metric, v.direction)), style="bold green" if best and t.number == best.number else "")
              for t in trials),
        )
        table.add_row("state", *(t.state.value for t in trials))
        table.add_row("epochs", *(f"{t.last_epoch}/{t.budget}" for t in trials))
        table.add_row("trained", *(fmt_duration(trial_duration(t)) for t in trials))
        order = list(v.record.space) + sorted({k for t in trials for k in t.config} - set(v.record.space))
        for k in order:
            if self.only_diff and k not in diff:
                continue
            mark = k in diff
            table.add_row(
                Text(("≠ " if mark else "  ") + k, style="bold yellow" if mark else "dim"),
                *(Text(fmt(t.config.get(k)), style="bold yellow" if mark else "") for t in trials),
            )
        if any(t.note for t in trials):
            table.add_row("note", *((t.note or "")[:30] for t in trials))
        metrics = self.metrics()
        metric = metrics[self.metric_index % len(metrics)]
        self.query_one(OverlayChart).update_series(
            f"{metric} per epoch",
            metric,
            [(f"#{t.number}", t, PALETTE[i % len(PALETTE)]) for i, t in enumerate(trials)],
            max([v.record.max_epochs, *(t.budget for t in trials)]),
        )

    def action_next_metric(self) -> None:
        self.metric_index += 1
        self._draw()

    def action_only_differences(self) -> None:
        self.only_diff = not self.only_diff
        self._draw()

    def action_back(self) -> None:
        self.app.pop_screen()

"""Provides the parameter importance screen: PED-ANOVA shares as bars, and a slice plot per parameter."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Static

from tuitune.core.search.importance import parameter_importance
from tuitune.ui.model import SessionView
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.widgets.charts import SliceChart

BAR = 24  # cells of the longest bar


class ImportanceScreen(TuituneScreen):
    """Which parameters matter for the session metric (computed off the UI thread), best first."""

    HELP_TITLE = "parameter importance"
    BINDINGS = [Binding("escape,q", "back", "Back"), Binding("g", "recompute", "Recompute")]

    def __init__(self, view: SessionView) -> None:
        super().__init__(name="importance")
        self.view = view
        self.session_name = view.name
        self.shares: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        yield Static("computing…", id="importance-header")
        with Horizontal(id="importance-body"):
            yield DataTable(id="importance-table", cursor_type="row", zebra_stripes=True)
            yield SliceChart(id="importance-slice")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("parameter", "share", "importance")
        table.focus()
        self._compute()

    @work(thread=True, exit_on_error=False, group="importance", exclusive=True)
    def _compute(self) -> None:
        v = self.view
        points = v.store.complete_configs(v.name)
        try:
            shares = parameter_importance(v.record.space, [c for c, _ in points], [x for _, x in points], v.direction)
            text = (
                f"[b]parameter importance[/] for {v.metric} ({v.direction}) over {len(points)} complete trials: "
                "PED-ANOVA, how differently the best 10% are spread from all  [dim]↑↓: slice plot[/]"
            )
        except ValueError as e:
            shares, text = {}, f"[yellow]{e}[/] (this session has {len(points)})"
        self.app.call_from_thread(self._show, shares, text)

    def _show(self, shares: dict[str, float], text: str) -> None:
        self.shares = shares
        self.query_one("#importance-header", Static).update(text)
        table = self.query_one(DataTable)
        table.clear()
        top = max(shares.values(), default=0.0) or 1.0
        for k, share in sorted(shares.items(), key=lambda kv: -kv[1]):
            cells = share / top * BAR
            bar = "█" * int(cells) + ("▌" if cells - int(cells) >= 0.5 else "")
            table.add_row(k, f"{share:.0%}", Text(bar, style="green"), key=k)
        params = [k for k, _ in sorted(shares.items(), key=lambda kv: -kv[1])] or self.view.searched
        self._slice(params[0] if params else None)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self._slice(event.row_key.value)

    def _slice(self, param: Any) -> None:
        self.query_one(SliceChart).update(self.view, param, hint=False)

    def action_recompute(self) -> None:
        self.view.changed()
        self._compute()

    def action_back(self) -> None:
        self.app.pop_screen()

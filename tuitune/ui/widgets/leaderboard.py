"""Provides the Leaderboard: a DataTable of a session's trials, ranked, sortable, live.

Enter on a row posts ``Leaderboard.TrialChosen``; the screen decides what to open.
"""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from tuitune.core.records import TrialRecord, TrialState
from tuitune.ui.format import fmt, fmt_duration
from tuitune.ui.model import SessionView, is_manual, trial_duration

STATE_STYLE = {
    "complete": "green",
    "running": "bold cyan",
    "paused": "yellow",
    "pruned": "dim",
    "failed": "red",
    "interrupted": "dim yellow",
}


class Leaderboard(DataTable):
    """The session's trials as rows; ``sort_by`` cycles through rank, trial, time and each parameter."""

    class TrialChosen(Message):
        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    class TrialHighlighted(Message):
        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.sort_keys: list[str] = ["rank"]
        self.sort_index = 0
        self._columns_for: tuple[str, ...] | None = None
        self._view: SessionView | None = None

    @property
    def sort_by(self) -> str:
        return self.sort_keys[self.sort_index % len(self.sort_keys)]

    def cycle_sort(self) -> str:
        self.sort_index = (self.sort_index + 1) % len(self.sort_keys)
        if self._view is not None:
            self.update(self._view)
        return self.sort_by

    def _ensure_columns(self, view: SessionView) -> None:
        acc = () if view.metric == "val_acc" else ("acc",)
        # What ranks a trial comes first: with many parameters the row still shows value and state at 80 columns.
        # A Ray session's trials run on several machines: where each ran (node and device) gets a column.
        where = ("where",) if view.record.info.get("backend") == "ray" else ()
        cols = ("rank", "trial", view.metric, *acc, "epochs", "state", "time", *where, *view.searched)
        if cols == self._columns_for:
            return
        self.clear(columns=True)
        for c in cols:
            self.add_column(c, key=c)
        self._columns_for = cols
        self.sort_keys = ["rank", "trial", "time", *view.searched]

    def _sorted(self, view: SessionView) -> list[TrialRecord]:
        ranked = view.ranked()
        key = self.sort_by
        if key == "trial":
            return sorted(ranked, key=lambda t: t.number)
        if key == "time":
            return sorted(ranked, key=lambda t: -(trial_duration(t) or 0.0))
        if key in view.searched:

            def k(t: TrialRecord):
                v = t.config.get(key)
                return (0, v, t.number) if isinstance(v, (int, float)) else (1, str(v), t.number)

            return sorted(ranked, key=k)
        return ranked

    def update(self, view: SessionView) -> None:
        """Rebuilds the rows, keeping the cursor on the same trial."""
        self._view = view
        self._ensure_columns(view)
        keep = self.selected_number()
        ranks = view.rank_of()
        best = view.best()
        self.clear()
        for t in self._sorted(view):
            state = t.state.value
            if t.state == TrialState.RUNNING:
                state = f"running {t.last_epoch}/{t.budget}"
            elif t.state == TrialState.FAILED and t.reason:
                state = f"failed: {t.reason}"
            elif t.state == TrialState.PRUNED and t.reason:
                state = f"pruned: {t.reason}"
            dim = t.state in (TrialState.PRUNED, TrialState.FAILED, TrialState.INTERRUPTED)
            row_style = "dim" if dim else ""
            number = f"{t.number}{'m' if is_manual(t) else ''}"
            acc = [] if view.metric == "val_acc" else [Text(fmt(view.accuracy(t)), style=row_style)]
            where = []
            if view.record.info.get("backend") == "ray":
                node, device = t.info.get("node"), t.info.get("device")
                where = [Text(" ".join(str(x) for x in (node, device) if x) or "-", style=row_style)]
            cells = [
                Text(
                    str(ranks.get(t.number, "-")), style="bold green" if best and t.number == best.number else row_style
                ),
                Text(number, style=row_style),
                Text(fmt(t.value), style=row_style),
                *acc,
                Text(f"{t.last_epoch}/{t.budget}", style=row_style),
                Text(state[:28], style=STATE_STYLE.get(t.state.value, "")),
                Text(fmt_duration(trial_duration(t)), style=row_style),
                *where,
                *(Text(fmt(t.config.get(p)), style=row_style) for p in view.searched),
            ]
            self.add_row(*cells, key=str(t.number))
        if keep is not None:
            self.select_number(keep)

    def selected_number(self) -> int | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no rows, or a stale coordinate
            return None
        return int(key.value) if key.value is not None else None

    def select_number(self, number: int) -> None:
        try:
            row = self.get_row_index(str(number))
        except Exception:  # noqa: BLE001 - that trial is not in the table
            return
        self.move_cursor(row=row, animate=False, scroll=True)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.TrialChosen(int(event.row_key.value)))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(self.TrialHighlighted(int(event.row_key.value)))

"""Provides Meter: a labelled progress bar drawn with rich (no clock, so it renders the same every time)."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar as RichBar
from rich.text import Text
from textual.widgets import Static


class Meter(Static):
    """A label line and a bar; ``update_meter(label, done, total)`` redraws it (total None: no bar)."""

    DEFAULT_CSS = """
    Meter { height: 2; width: 100%; }
    """

    label: str = ""  # the label drawn, as plain text

    def update_meter(self, label: str, done: float, total: float | None) -> None:
        self.label = Text.from_markup(label).plain
        if not total:
            self.update(Group(Text.from_markup(label), Text("")))
            return
        self.update(
            Group(
                Text.from_markup(label),
                RichBar(
                    total=total, completed=min(done, total), width=None, complete_style="cyan", finished_style="green"
                ),
            )
        )

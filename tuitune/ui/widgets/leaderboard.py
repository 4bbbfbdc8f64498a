"""Provides the Leaderboard: a session's trials, ranked, sortable and live, drawn a screen at a time.

A session may hold 10,000 trials. The order comes from SQL (``SessionView.order``), and only the rows
on screen are read and drawn (``render_line``), so opening, sorting and moving the cursor cost the
same for 10 trials as for 10,000. Enter on a row posts ``Leaderboard.TrialChosen``; the screen decides
what to open.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tuitune.core.records import LeaderRow, TrialState
from tuitune.ui.format import fmt, fmt_duration
from tuitune.ui.model import SessionView, is_manual

STATE_STYLE = {
    "complete": "green",
    "running": "bold cyan",
    "paused": "yellow",
    "pruned": "dim",
    "failed": "red",
    "interrupted": "dim yellow",
}
STATE_WIDTH = 28  # a failure's reason is cut here; the trial's screen shows all of it
PAD = 1  # the space between columns


@dataclass
class Column:
    key: str
    label: str
    width: int


class Leaderboard(ScrollView, can_focus=True):
    """The session's trials as rows; ``cycle_sort`` steps through rank, trial, time and each parameter."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "choose", "Open trial", show=False),
    ]
    COMPONENT_CLASSES = {
        "leaderboard--header",
        "leaderboard--cursor",
        "leaderboard--odd",
    }
    DEFAULT_CSS = """
    Leaderboard { background: $surface; scrollbar-size-horizontal: 0; }
    Leaderboard > .leaderboard--header { background: $panel; color: $foreground; text-style: bold; }
    Leaderboard > .leaderboard--cursor { background: $block-cursor-blurred-background; }
    Leaderboard:focus > .leaderboard--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    Leaderboard > .leaderboard--odd { background: $surface-lighten-1; }
    """

    class TrialChosen(Message):
        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    class TrialHighlighted(Message):
        def __init__(self, number: int) -> None:
            super().__init__()
            self.number = number

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sort_keys: list[str] = ["rank"]
        self.sort_index = 0
        self.numbers: list[int] = []  # every trial, in the current order
        self.cursor = 0
        self.run_paused = False  # the running trial's row reads "paused" while the run is paused
        self.marked: set[int] = set()  # trials marked (space) for the compare screen
        self.columns: list[Column] = []
        self._columns_for: tuple[str, ...] | None = None
        self._cells: dict[int, list[tuple[str, str]]] = {}  # the rows read and formatted, by trial number
        self._view: SessionView | None = None
        self._best: int | None = None

    # ---- the data --------------------------------------------------------------------------------
    @property
    def sort_by(self) -> str:
        return self.sort_keys[self.sort_index % len(self.sort_keys)]

    @property
    def row_count(self) -> int:
        return len(self.numbers)

    def cycle_sort(self) -> str:
        """Sorts by the next key; returns its name."""
        self.sort_index = (self.sort_index + 1) % len(self.sort_keys)
        if self._view is not None:
            self.update(self._view)
        return self.sort_by.removeprefix("param:")

    def _ensure_columns(self, view: SessionView) -> None:
        acc = ("acc",) if view.shows_acc() else ()
        # What ranks a trial comes first: with many parameters the row still shows value and state at 80 columns.
        # A Ray session's trials run on several machines: where each ran (node and device) gets a column.
        where = ("where",) if _shows_where(view) else ()
        # Several objectives: a column each, after the first (the trial's value).
        more = tuple(view.goal.metrics[1:])
        cols = ("rank", "trial", view.metric, *more, *acc, "epochs", "state", "time", *where, *view.searched)
        if cols == self._columns_for:
            return
        self.columns = [Column(c, c, len(c) + 1) for c in cols]
        self._columns_for = cols
        self.sort_keys = ["rank", "trial", "time", *(f"param:{p}" for p in view.searched)]

    def update(self, view: SessionView) -> None:
        """Re-reads the order (SQL) and forgets the rows read; keeps the cursor on the same trial."""
        keep = self.selected_number()
        self._view = view
        self._ensure_columns(view)
        self.numbers = view.order(self.sort_by)
        best = view.best()
        self._best = best.number if best is not None else None
        self._cells.clear()
        if keep is not None:
            self.select_number(keep, post=False)
        self.cursor = max(0, min(self.cursor, len(self.numbers) - 1))
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        width = sum(c.width + PAD for c in self.columns)
        self.virtual_size = Size(width, len(self.numbers) + 1)

    def _format(self, r: LeaderRow) -> list[tuple[str, str]]:
        t, view = r.trial, self._view
        assert view is not None
        state = t.state.value
        held = t.state == TrialState.RUNNING and bool(t.info.get("held"))  # asked for an array, not started
        if held:
            state = "waiting"
        elif t.state == TrialState.RUNNING:
            state = f"{'paused' if self.run_paused else 'running'} {r.summary.last_epoch}/{t.budget}"
        elif t.state in (TrialState.FAILED, TrialState.PRUNED) and t.reason:
            state = f"{state}: {t.reason}"
        dim = "dim" if t.state in (TrialState.PRUNED, TrialState.FAILED, TrialState.INTERRUPTED) else ""
        state_style = "yellow" if t.state == TrialState.RUNNING and self.run_paused else STATE_STYLE.get(t.state.value, "")
        if held:
            state_style = "dim cyan"
        acc = [(fmt(r.summary.best_acc), dim)] if view.shows_acc() else []
        goal = view.goal
        got = t.info.get("objectives") if isinstance(t.info.get("objectives"), dict) else {}
        values = got.get("values") or {}
        more = [(fmt(values.get(m)), dim) for m in goal.metrics[1:]]
        if goal.constraints and t.state == TrialState.COMPLETE and t.value is not None and not got.get("feasible", False):
            state, state_style = "infeasible", "magenta"  # breaks a constraint: never ranked, best or exported
        seconds = r.summary.train_seconds
        if seconds is None and t.started is not None and t.finished is not None:
            seconds = t.finished - t.started
        return [
            (str(r.rank or "-"), "bold green" if t.number == self._best else dim),
            (f"{'•' if t.number in self.marked else ''}{t.number}{'m' if is_manual(t) else ''}{'*' if t.note else ''}", dim),
            (fmt(t.value), dim),
            *more,
            *acc,
            (f"{r.summary.last_epoch}/{t.budget}", dim),
            (state[:STATE_WIDTH], state_style),
            (fmt_duration(seconds), dim),
            *([(_where(t.info), dim)] if _shows_where(view) else []),
            *((fmt(t.config.get(p)), dim) for p in view.searched),
        ]

    def _load(self, first: int, last: int) -> None:
        """Reads and formats the rows first..last (one query); widens columns that need it."""
        if self._view is None:
            return
        want = [n for n in self.numbers[max(0, first) : last + 1] if n not in self._cells]
        if not want:
            return
        widened = False
        for n, r in self._view.rows(want).items():
            cells = self._format(r)
            self._cells[n] = cells
            for col, (text, _) in zip(self.columns, cells):
                if len(text) + 1 > col.width:
                    col.width = len(text) + 1
                    widened = True
        if widened:
            self._resize()
            self.refresh()

    # ---- drawing ---------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_rich_style("leaderboard--header")
            segs = []
            for c in self.columns:
                mark = "▾" if self.sort_by in (c.key, f"param:{c.key}") else ""
                segs.append(Segment((c.label + mark)[: c.width].ljust(c.width + PAD), style))
            # No scrollbar (a bar above the footer at 80 columns): the header's ends say more columns
            # lie beyond them, which left and right scroll to.
            more_right = scroll_x + width < self.virtual_size.width
            strip = self._crop(segs, scroll_x, width - more_right, style)
            if more_right:
                strip = Strip([*strip, Segment("›", style)])
            if scroll_x > 0:
                strip = Strip([Segment("‹", style), *strip.crop(1, width)])
            return strip
        index = scroll_y + y - 1
        if index >= len(self.numbers):
            return Strip.blank(width, self.rich_style)
        number = self.numbers[index]
        if number not in self._cells:
            top = max(0, scroll_y)
            self._load(min(top, index), max(index, top + self.size.height))
        cells = self._cells.get(number)
        base = self.rich_style
        if index % 2:
            base += self.get_component_rich_style("leaderboard--odd")
        if index == self.cursor:
            base += self.get_component_rich_style("leaderboard--cursor")
        if cells is None:
            return Strip.blank(width, base)
        segs = [
            Segment(text[: c.width].ljust(c.width + PAD), base + Style.parse(st) if st else base)
            for c, (text, st) in zip(self.columns, cells)
        ]
        return self._crop(segs, scroll_x, width, base)

    @staticmethod
    def _crop(segs: list[Segment], scroll_x: int, width: int, fill: Style) -> Strip:
        strip = Strip(segs).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, fill)

    def toggle_mark(self, number: int) -> None:
        self.marked ^= {number}
        self._cells.pop(number, None)
        self.refresh()

    # ---- the cursor ------------------------------------------------------------------------------
    def selected_number(self) -> int | None:
        if not self.numbers:
            return None
        return self.numbers[max(0, min(self.cursor, len(self.numbers) - 1))]

    def select_number(self, number: int, post: bool = True) -> None:
        try:
            index = self.numbers.index(number)
        except ValueError:
            return
        self._move(index, post=post)

    def _move(self, index: int, post: bool = True) -> None:
        if not self.numbers:
            return
        index = max(0, min(index, len(self.numbers) - 1))
        moved = index != self.cursor
        self.cursor = index
        rows = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + rows:
            self.scroll_to(y=index - rows + 1, animate=False, immediate=True)
        self.refresh()
        if post and moved:
            self.post_message(self.TrialHighlighted(self.numbers[index]))

    def move_cursor(self, *, row: int, **_: object) -> None:
        """Puts the cursor on the ``row``-th trial of the current order (DataTable's name for it)."""
        self._move(row)

    def action_cursor(self, step: int) -> None:
        self._move(self.cursor + step)

    def action_page(self, step: int) -> None:
        self._move(self.cursor + step * max(1, self.scrollable_content_region.height - 1))

    def action_jump(self, where: int) -> None:
        self._move(0 if where == 0 else len(self.numbers) - 1)

    def action_choose(self) -> None:
        n = self.selected_number()
        if n is not None:
            self.post_message(self.TrialChosen(n))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = round(self.scroll_y) + event.y - 1
        if index < len(self.numbers):
            self._move(index)
            if event.chain >= 2:
                self.action_choose()


def _shows_where(view: SessionView) -> bool:
    """A column of where each trial ran (Placement's rule: Ray, several workers, fused arrays)."""
    from tuitune.core.run.placement import Placement

    return Placement.from_info(view.record.info).shows_where


def _where(info: dict) -> str:
    from tuitune.core.text import where_words

    return where_words(info)

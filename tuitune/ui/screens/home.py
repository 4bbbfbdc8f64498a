"""Provides the home screen: the sessions in the database, and the way to a new one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static

from tuitune.core.errors import TuituneError
from tuitune.core.records import SessionRecord
from tuitune.ui.format import fmt, fmt_time, plural
from tuitune.ui.model import SessionView
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.widgets.charts import BestChart
from tuitune.ui.widgets.dialogs import ConfirmDialog, PathDialog

if TYPE_CHECKING:
    from tuitune.ui.model import StoreAccess

STATE_STYLE = {
    "finished": "green", "running": "cyan", "stopped": "yellow", "failed": "red", "new": "dim", "interrupted": "yellow",
}


class HomeScreen(TuituneScreen):
    """Every session of the database, most recent first."""

    HELP_TITLE = "home: your sessions"
    BINDINGS = [
        Binding("n", "new", "New session"),
        Binding("enter", "open", "Open", show=True),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export best"),
        Binding("d", "delete", "Delete"),
        Binding("N", "note", "Note on session", show=False),
        Binding("f5", "reload", "Reload", show=False),
    ]

    AUTO_FOCUS = ""  # the table takes focus only when it has rows (enter on an empty home: new session)

    def __init__(self, store: StoreAccess) -> None:
        super().__init__(name="home")
        self.store = store
        self.records: list[SessionRecord] = []
        self._detail_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home-body"):
            yield Static(id="home-empty")
            yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="home-detail"):
                yield Static(id="home-info")
                yield BestChart(id="home-chart")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sessions", DataTable)
        for c in ("session", "preset", "strategy", "trials", "best", "state", "updated"):
            table.add_column(c, key=c)
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        if getattr(self, "_narrow", None) is not None and self._narrow != (self.app.size.width < 100):
            self.reload()

    def reload(self) -> None:
        try:
            self.records = self.store.sessions()
        except TuituneError as e:
            self.notify(str(e), severity="error")
            self.records = []
        table = self.query_one("#sessions", DataTable)
        keep = self.selected()
        table.clear()
        # At 80 columns every column shows (updated too): the best value without its metric's name
        # (the pane below names it) and the date without its year.
        narrow = self.app.size.width < 100
        self._narrow = narrow
        for r in self.records:
            # Manual trials beyond the plan: the count alone (never "5/4").
            budget = "" if r.n_trials is None or r.n_done > r.n_trials else f"/{r.n_trials}"
            best = (fmt(r.best_value) if narrow else f"{fmt(r.best_value)} {r.metric}") if r.best_value is not None else "-"
            table.add_row(
                r.name,
                (r.preset or {}).get("name") or "-",
                r.strategy,
                f"{r.n_done}{budget}",
                best,
                Text(r.state, style=STATE_STYLE.get(r.state, "")),
                fmt_time(r.updated)[5:] if narrow and r.updated else fmt_time(r.updated),
                key=r.name,
            )
        empty = self.query_one("#home-empty", Static)
        if not self.records:
            empty.update(
                "[b]No sessions yet.[/]\n\n"
                "Press [b reverse] n [/] to start one: the [b]digits-mlp[/] preset is picked for you and trains "
                "a trial in about a second on a CPU.\nThen press [b]ctrl+s[/] (or Start) on the next screen.\n\n"
                f"[dim]database: {self.store.path}[/]"
            )
            empty.display = True
            table.display = False
            self.query_one("#home-detail").display = False
            self.set_focus(None)
        else:
            empty.display = False
            table.display = True
            self.query_one("#home-detail").display = True
            if keep is not None and keep in [r.name for r in self.records]:
                table.move_cursor(row=[r.name for r in self.records].index(keep))
            table.focus()

    @on(DataTable.RowHighlighted, "#sessions")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        name = event.row_key.value if event.row_key is not None else None
        if name is not None:  # drawn once the cursor rests (holding a key down stays fast)
            self._detail_timer = self.set_timer(0.15, lambda: self._detail(name))

    def _detail(self, name: str) -> None:
        """The pane under the table: state, liveness, best config, note and the best-so-far chart."""
        if not self.is_current:  # another screen opened meanwhile: not worth its queries
            return
        try:
            view = SessionView(self.store, name)
        except TuituneError as e:
            self.query_one("#home-info", Static).update(f"[red]{escape(str(e))}[/]")
            return
        r = view.record
        best = view.best()
        live = f"[green]● live[/] ({r.owner})" if r.alive else "[dim]○ not running[/]"
        lines = [
            f"[b]{r.name}[/]  [{STATE_STYLE.get(r.state, 'dim')}]{r.state}[/]  {live}",
            f"{r.strategy}, {r.metric} ({r.direction}), {plural(r.n_done, 'trial')} done"
            + (f" of {r.n_trials}" if r.n_trials is not None and r.n_done <= r.n_trials else ""),
        ]
        if r.message:
            lines.append(f"[dim]{escape(r.message)}[/]")
        if best is not None:
            # a parameter inactive in this config (momentum under adam) is left out, not "momentum=-"
            cfg = ", ".join(f"{k}={fmt(best.config[k])}" for k in view.searched if k in best.config)
            lines.append(f"best #{best.number}: {r.metric} {fmt(best.value)}  {cfg}")
        if r.note:
            lines.append(f"[b]note:[/] {escape(r.note)}")
        self.query_one("#home-info", Static).update("\n".join(lines))
        self.query_one("#home-chart", BestChart).update(view)

    def session_changed(self) -> None:
        self.reload()

    def selected(self) -> str | None:
        table = self.query_one("#sessions", DataTable)
        if table.row_count == 0:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001
            return None

    def _need_selected(self) -> str | None:
        name = self.selected()
        if name is None:
            self.notify("no session yet: press n for a new one", severity="warning")
        return name

    # ---- actions -----------------------------------------------------------------------------
    def action_reload(self) -> None:
        self.reload()

    def action_new(self) -> None:
        self.tuitune.open_new_session()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _open(self, resume: bool) -> None:
        name = self._need_selected()
        if name is not None:
            self.tuitune.open_dashboard(name, resume=resume)

    def action_open(self) -> None:
        if not self.records:  # the empty database: enter starts the first session
            self.action_new()
            return
        self._open(resume=False)

    def action_resume(self) -> None:
        if self.tuitune.run_control.running:
            self.notify("a session is already running", severity="warning")
            return
        self._open(resume=True)

    def action_export(self) -> None:
        name = self._need_selected()
        if name is None:
            return

        def done(path: str | None) -> None:
            if path:
                self.tuitune.export_best(name, path)

        self.app.push_screen(PathDialog(f"Export the best config of {name} to", f"{name}-best.json"), done)

    def action_note(self) -> None:
        name = self._need_selected()
        if name is not None:
            self.tuitune.edit_note(name)

    def action_delete(self) -> None:
        name = self._need_selected()
        if name is None:
            return
        if self.tuitune.run_control.is_running(name):
            self.notify(f"session '{name}' is running; stop it before deleting it", severity="error")
            return

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete_session(name)
            except TuituneError as e:
                self.notify(str(e), severity="error")
                return
            self.notify(f"deleted session {name}")
            self.reload()

        self.app.push_screen(
            ConfirmDialog(
                f"Delete session '{name}' with all its trials and epochs? This cannot be undone.",
                yes="Delete",
                no="Keep",
            ),
            done,
        )

"""Provides TuituneApp, the Textual application, and ``run_app`` that the command line calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App
from textual.binding import Binding

from tuitune.core.errors import TuituneError
from tuitune.core.store import Store, default_db_path, resume_command
from tuitune.ui import messages as msg
from tuitune.ui.run_control import RunControl
from tuitune.ui.widgets.dialogs import ConfirmDialog

if TYPE_CHECKING:
    from tuitune.launch import Launch


class TuituneApp(App[int]):
    """The control room: home (sessions), new session, dashboard, manual mode, trial detail.

    Args:
        store: the database.
        launch: a Launch ready to run (``tuitune run`` / ``tuitune resume``): the app opens on its
            dashboard and starts it.
        preset_files: extra preset TOML files offered on the new-session screen.
        bundled_presets: offer the bundled presets too.
        probe_devices: look for GPUs (imports torch in a worker) on the new-session screen.
    """

    TITLE = "tuitune"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        store: Store,
        launch: Launch | None = None,
        *,
        preset_files: list[str] | None = None,
        bundled_presets: bool = True,
        probe_devices: bool = True,
        open_session: str | None = None,
    ) -> None:
        super().__init__()
        self.open_session = open_session
        self.store = store
        self.initial_launch = launch
        self.preset_files = list(preset_files or [])
        self.bundled_presets = bundled_presets
        self.probe_devices = probe_devices
        self.run_control = RunControl(self)
        self._quitting = False

    def on_mount(self) -> None:
        from tuitune.ui.screens.dashboard import DashboardScreen
        from tuitune.ui.screens.home import HomeScreen

        self.sub_title = str(self.store.path)
        self.push_screen(HomeScreen(self.store))
        if self.initial_launch is not None:
            launch, self.initial_launch = self.initial_launch, None
            self.push_screen(DashboardScreen(self.store, launch.name, launch=launch))
        elif self.open_session is not None:
            self.push_screen(DashboardScreen(self.store, self.open_session))

    # ---- run messages: forwarded to the screens showing that session ---------------------------
    @on(msg.RunStarted)
    @on(msg.TrialBegan)
    @on(msg.EpochsProgress)
    @on(msg.TrialEnded)
    @on(msg.RunPaused)
    @on(msg.RunEnded)
    def forward_run_message(self, message: msg.RunMessage) -> None:
        for screen in list(self.screen_stack):
            handler = getattr(screen, "run_message", None)
            if handler is not None and getattr(screen, "session_name", None) == message.session:
                handler(message)
        if isinstance(message, msg.RunEnded):
            if message.state == "error":
                self.notify(message.message, title="the run could not go on", severity="error", timeout=10)
            elif message.state == "failed":
                self.notify(message.message, title=f"session {message.session} stopped", severity="error", timeout=10)
            self.call_after_refresh(self.refresh_bindings)

    # ---- shared actions --------------------------------------------------------------------
    def export_best(self, name: str, path: str) -> Path | None:
        """Writes the best config of ``name`` to ``path``; errors become notifications."""
        from tuitune.core.api import Session

        try:
            out = Session(self.store, name).export(path)
        except (TuituneError, OSError) as e:
            self.notify(str(e), title="export", severity="error", timeout=8)
            return None
        self.notify(f"wrote {out}", title="export")
        return out

    async def action_quit(self) -> None:
        if self._quitting:
            return
        if not self.run_control.owns_run:  # nothing runs here (a followed session goes on in its process)
            self.run_control.stop_and_join(0)
            self.exit(0)
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._stop_and_exit()

        self.push_screen(
            ConfirmDialog(
                f"Session '{self.run_control.session}' is training. Stop after the current epoch and quit? "
                f"Everything is saved; '{resume_command(self.run_control.session or '', self.store.path)}' "
                "continues it.",
                yes="Stop and quit",
                no="Keep training",
            ),
            answer,
        )

    @work(exclusive=True, group="quit")
    async def _stop_and_exit(self) -> None:
        self._quitting = True
        self.notify("stopping after the current epoch…", timeout=30)
        self.run_control.stop("stopped: the TUI was closed")
        await self.run_control.wait()
        self.exit(0)


def run_app(db: str | os.PathLike[str] | None, launch: Any = None, open_session: str | None = None) -> int:
    """Runs the TUI on the database ``db`` (default: ``default_db_path()``); returns the exit code.

    With a ``launch`` (from ``tuitune run`` or ``tuitune resume``) it opens on that session's dashboard
    and starts it. A database that cannot be opened raises its ``StoreError`` before the screen opens.
    """
    store = launch.store if launch is not None else Store(db if db is not None else default_db_path())
    app = TuituneApp(store, launch, open_session=open_session)
    code = app.run()
    # However the app ended, the runner stops after its epoch with everything saved before we return.
    app.run_control.stop_and_join()
    return int(code or 0)

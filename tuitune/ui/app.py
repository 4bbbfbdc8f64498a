"""Provides TuituneApp, the Textual application, and ``run_app`` that the command line calls."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.worker import Worker, WorkerState

from tuitune.core.errors import TuituneError
from tuitune.core.store.store import Store, default_db_path
from tuitune.core.text import resume_command
from tuitune.ui import messages as msg
from tuitune.ui.run_control import RunControl
from tuitune.ui.widgets.dialogs import ConfirmDialog
from tuitune.ui.widgets.help import HelpScreen, screen_keys

if TYPE_CHECKING:
    from tuitune.launch import Launch
    from tuitune.ui.model import SessionView


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
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding("question_mark", "help", "Keys", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        # As the README and headless mode promise: stop after the epoch; a second Ctrl+C quits.
        Binding("ctrl+c", "interrupt", "Stop after the epoch, again: quit", show=False, priority=True),
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
        self._interrupted = False
        # Screens subscribe (TuituneScreen): every run message, and "this session changed" (a name).
        self.run_signal: Signal[msg.RunMessage] = Signal(self, "run")
        self.session_signal: Signal[str] = Signal(self, "session")
        self.ran: list[str] = []  # the sessions run in this app, for the words printed on exit

    def on_mount(self) -> None:
        from tuitune.ui.screens.home import HomeScreen

        self.sub_title = str(self.store.path)
        self.push_screen(HomeScreen(self.store))
        if self.initial_launch is not None:
            launch, self.initial_launch = self.initial_launch, None
            self.open_dashboard(launch.name, launch=launch)
        elif self.open_session is not None:
            self.open_dashboard(self.open_session)

    # ---- navigation: the app owns it, so that screens never import each other ------------------
    def open_dashboard(self, name: str, *, launch: Launch | None = None, resume: bool = False, switch: bool = False) -> None:
        from tuitune.ui.screens.dashboard import DashboardScreen

        try:
            screen = DashboardScreen(self.store, name, launch=launch)
        except TuituneError as e:
            self.notify(str(e), severity="error")
            return
        (self.switch_screen if switch else self.push_screen)(screen)
        if resume:
            screen.call_after_refresh(screen.action_run)

    def open_new_session(self) -> None:
        from tuitune.ui.screens.new_session import NewSessionScreen

        self.push_screen(NewSessionScreen(self.store))

    def open_manual(self, name: str, base: str | int = "best", *, switch: bool = False) -> None:
        from tuitune.ui.screens.manual import ManualScreen

        (self.switch_screen if switch else self.push_screen)(ManualScreen(self.store, name, base=base))

    def open_trial(self, view: SessionView, number: int, *, follow: bool = False) -> None:
        from tuitune.ui.screens.trial_detail import TrialDetailScreen

        self.push_screen(TrialDetailScreen(view, number, follow=follow))

    def open_compare(self, view: SessionView, numbers: list[int]) -> None:
        from tuitune.ui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(view, numbers))

    def open_devices(self, view: SessionView) -> None:
        from tuitune.ui.screens.devices import DevicesScreen

        self.push_screen(DevicesScreen(view))

    def open_importance(self, view: SessionView) -> None:
        from tuitune.ui.screens.importance import ImportanceScreen

        self.push_screen(ImportanceScreen(view))

    def edit_note(self, name: str, trial: int | None = None) -> None:
        """Asks for the note of session ``name`` (or of one of its trials), stores it, tells the screens."""
        from tuitune.ui.widgets.dialogs import NoteDialog

        try:
            current = self.store.trial(name, trial).note if trial is not None else self.store.session(name).note
        except TuituneError as e:
            self.notify(str(e), severity="error")
            return

        def done(text: str | None) -> None:
            if text is None:
                return
            try:
                self.store.set_note(name, text, trial)
            except TuituneError as e:
                self.notify(str(e), severity="error")
                return
            self.notify("note saved" if text else "note cleared", timeout=3)
            self.session_changed(name)

        what = f"trial {trial} of {name}" if trial is not None else f"session {name}"
        self.push_screen(NoteDialog(f"Note on {what}", current or ""), done)

    def session_changed(self, name: str) -> None:
        """Tells the screens showing ``name`` that its trials or notes changed outside a run."""
        self.session_signal.publish(name)

    # ---- keys everywhere: help, the command palette, Ctrl+C --------------------------------------
    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        title = getattr(self.screen, "HELP_TITLE", "") or "this screen"
        self.push_screen(HelpScreen(title, screen_keys(self.screen)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands, then every action the screen's keys reach (typing "export" finds it)."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            b = active.binding
            if not active.enabled or not b.description or b.action in seen or b.action == "command_palette":
                continue
            seen.add(b.action)
            node = active.node
            yield SystemCommand(
                b.description,
                f"key {key.replace('_', ' ')}: {b.tooltip or b.description}",
                partial(self.call_later, self.run_action, b.action, node),
            )

    async def action_interrupt(self) -> None:
        """Ctrl+C: the run stops after its epoch (everything saved); a second Ctrl+C quits at once."""
        # A followed session goes on in its own process: Ctrl+C leaves it running and quits.
        if self.run_control.owns_run and not self._interrupted:
            self._interrupted = True
            self.run_control.stop("Ctrl+C in the TUI")
            self.notify(
                f"stopping '{self.run_control.session}' after this epoch; everything is saved. Ctrl+C again quits",
                title="Ctrl+C",
                timeout=10,
            )
            return
        self.exit(0)

    # ---- run messages: published to the screens that subscribed --------------------------------
    @on(msg.RunStarted)
    @on(msg.TrialBegan)
    @on(msg.EpochsProgress)
    @on(msg.TrialEnded)
    @on(msg.RunPaused)
    @on(msg.RunEnded)
    def forward_run_message(self, message: msg.RunMessage) -> None:
        if isinstance(message, msg.RunStarted) and message.session not in self.ran:
            self.ran.append(message.session)
        self.run_signal.publish(message)
        if isinstance(message, msg.RunEnded):
            self._interrupted = False
            if message.state == "error":
                self.notify(message.message, title="the run could not go on", severity="error", timeout=10)
            elif message.state == "failed":
                self.notify(message.message, title=f"session {message.session} stopped", severity="error", timeout=10)
            self.call_after_refresh(self.refresh_bindings)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The run's thread ends a moment after its last message: only then do p/s/a give way to r.
        if event.worker.group == "runner" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            if not self.screen_stack:
                return  # the app is closing: no screen is left to refresh (raised ScreenStackError)
            self.refresh_bindings()
            self.screen.refresh_bindings()

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

    def on_unmount(self) -> None:
        """However the app ends, its run stops after the epoch (its workers too): a thread is never left
        serving workers of a session nobody watches. ``run_app`` then waits for it."""
        self.run_control.stop_and_join(0)

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
        self.run_control.stop("the TUI was closed")
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
    for line in exit_words(store, app.ran):
        print(line)
    return int(code or 0)


def exit_words(store: Store, names: list[str]) -> list[str]:
    """What headless mode says at the end, for each session run in the app: how to resume or export it."""
    out = []
    for name in names:
        try:
            rec = store.session(name)
        except TuituneError:
            continue
        if rec.alive:
            out.append(f"session {name} goes on in process {rec.owner or '?'}; follow it with: tuitune open {name}")
        elif rec.state == "finished":
            best = f", best {rec.metric} {rec.best_value:.4g}" if rec.best_value is not None else ""
            out.append(f"session {name} finished{best}; export with: tuitune export {name}")
        else:
            out.append(f"session {name} {rec.state}; resume with: {resume_command(name, store.path)}")
    return out

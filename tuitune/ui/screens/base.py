"""Provides TuituneScreen, the base of every screen: the app typed, the session it shows, and the run
messages of that session delivered by subscription to the app's ``run_signal``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from textual.screen import Screen

from tuitune.ui import messages as msg

if TYPE_CHECKING:
    from textual.signal import Signal

    from tuitune.launch import Launch
    from tuitune.ui.model import SessionView
    from tuitune.ui.run_control import RunControl


class AppAccess(Protocol):
    """What a screen asks of the app (``tuitune.ui.app.TuituneApp``): screens are typed against this, not
    the app, so that no screen imports, even for its types, the module that imports every screen."""

    run_control: RunControl
    run_signal: Signal[msg.RunMessage]
    session_signal: Signal[str]

    def open_dashboard(self, name: str, *, launch: Launch | None = None, resume: bool = False, switch: bool = False) -> None: ...
    def open_new_session(self) -> None: ...
    def open_manual(self, name: str, base: str | int = "best", *, switch: bool = False) -> None: ...
    def open_trial(self, view: SessionView, number: int, *, follow: bool = False) -> None: ...
    def open_compare(self, view: SessionView, numbers: list[int]) -> None: ...
    def open_devices(self, view: SessionView) -> None: ...
    def open_importance(self, view: SessionView) -> None: ...
    def edit_note(self, name: str, trial: int | None = None) -> None: ...
    def session_changed(self, name: str) -> None: ...
    def export_best(self, name: str, path: str) -> Path | None: ...


class TuituneScreen(Screen[None]):
    """A screen of the control room.

    Subclasses set ``session_name`` when they show one session, and override ``run_message`` (the
    messages of that session's run) and ``session_changed`` (its trials changed outside a run, e.g.
    a manual trial or a note). Screens never import each other: they open others through the app's
    ``open_*`` methods.
    """

    session_name: str | None = None
    HELP_TITLE = ""  # what the ? screen calls this screen

    @property
    def tuitune(self) -> AppAccess:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.tuitune.run_signal.subscribe(self, self._run_signal, immediate=True)
        self.tuitune.session_signal.subscribe(self, self._session_signal, immediate=True)

    def _run_signal(self, message: msg.RunMessage) -> None:
        if self.session_name is not None and message.session == self.session_name:
            self.run_message(message)

    def _session_signal(self, name: str) -> None:
        if self.session_name is not None and name == self.session_name:
            self.session_changed()

    def run_message(self, message: msg.RunMessage) -> None:
        """Each message of this screen's session's run (override)."""

    def session_changed(self) -> None:
        """This screen's session changed outside a run (override)."""

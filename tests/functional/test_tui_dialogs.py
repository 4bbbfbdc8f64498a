"""Pilot tests of every dialog (note, trial note, export path, delete, confirm quit) on every screen that
opens one: after Enter and after Escape the screen beneath is still there, and Enter's action happened."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input

from tests.support.tui import build_fixed_db, make_preset, run_async, wait_for
from tuitune.core.store.store import Store
from tuitune.ui.app import TuituneApp
from tuitune.ui.run_control import RunControl
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.screens.home import HomeScreen
from tuitune.ui.screens.trial_detail import TrialDetailScreen
from tuitune.ui.widgets.dialogs import ConfirmDialog, NoteDialog, PathDialog

SIZE = (100, 30)


def _fixed(tmp_path):
    preset = make_preset(tmp_path, epochs=6)
    db = tmp_path / "t.db"
    name = build_fixed_db(db, preset)
    return Store(db), name


async def _open(pilot, app: TuituneApp, where: str) -> None:
    """Brings the app to the screen ``where`` (home, dashboard, trial) on the fixed session."""
    await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen if where == "open" else HomeScreen))
    if where in ("dashboard", "trial"):
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
    if where == "trial":
        await pilot.press("enter")  # the leaderboard's first row: trial 3, the best
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDetailScreen), what="trial detail")


async def _answer(pilot, app: TuituneApp, key: str, dialog: type, text: str | None, answer: str) -> None:
    """Presses ``key``, waits for ``dialog``, types ``text`` into its field, presses ``answer``; then the
    screen beneath must be the one that was there before, with the same stack under it."""
    beneath, depth = app.screen, len(app.screen_stack)
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, dialog), what=f"{dialog.__name__} after {key}")
    if text is not None:
        app.screen.query_one(Input).value = text
    await pilot.press(answer)
    await wait_for(pilot, lambda: not isinstance(app.screen, dialog), what="the dialog closed")
    await pilot.pause()
    assert app.screen is beneath, f"{key} then {answer}: {app.screen!r} shows instead of {beneath!r}"
    assert len(app.screen_stack) == depth
    assert beneath.is_attached


def _app(store: Store, open_session: str | None = None) -> TuituneApp:
    return TuituneApp(store, preset_files=[], bundled_presets=False, probe_devices=False, open_session=open_session)


@pytest.mark.parametrize("where", ["home", "dashboard", "trial", "open"])
@run_async
async def test_a_note_saved_or_cancelled_leaves_the_screen_beneath(tmp_path, where):
    store, name = _fixed(tmp_path)
    app = _app(store, open_session=name if where == "open" else None)
    # the key of each note dialog on this screen, and what the note belongs to (None: the session)
    keys = {"home": [("N", None)], "trial": [("n", 3)]}.get(where, [("n", 3), ("N", None)])
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, where)
        for key, trial in keys:

            def note(trial=trial):
                return store.trial(name, trial).note if trial is not None else store.session(name).note

            await _answer(pilot, app, key, NoteDialog, f"typed on {where} by {key}", "enter")
            assert note() == f"typed on {where} by {key}"
            await _answer(pilot, app, key, NoteDialog, "never stored", "escape")
            assert note() == f"typed on {where} by {key}"
        # and the screen still works: an export after the notes is written
        if where != "trial":
            out = tmp_path / f"after-notes-{where}.json"
            await _answer(pilot, app, "e", PathDialog, str(out), "enter")
            await wait_for(pilot, out.exists, what="the export after the notes")


@pytest.mark.parametrize("where", ["home", "dashboard"])
@run_async
async def test_export_written_or_cancelled_leaves_the_screen_beneath(tmp_path, where):
    store, name = _fixed(tmp_path)
    app = _app(store)
    out = tmp_path / "best.json"
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, where)
        await _answer(pilot, app, "e", PathDialog, str(tmp_path / "cancelled.json"), "escape")
        assert not (tmp_path / "cancelled.json").exists()
        await _answer(pilot, app, "e", PathDialog, str(out), "enter")
        await wait_for(pilot, out.exists, what="export file")
        assert json.loads(out.read_text())["trial"] == 3


@run_async
async def test_delete_refused_by_n_escape_and_enter_leaves_home(tmp_path):
    store, name = _fixed(tmp_path)
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "home")
        for answer in ("n", "escape", "enter"):  # enter presses the focused button: No
            await _answer(pilot, app, "d", ConfirmDialog, None, answer)
            assert store.session_exists(name), answer
        await _answer(pilot, app, "d", ConfirmDialog, None, "y")
        await wait_for(pilot, lambda: not store.session_exists(name), what="deleted")


@run_async
async def test_quit_refused_by_escape_or_enter_leaves_the_dashboard(tmp_path, monkeypatch):
    store, name = _fixed(tmp_path)
    monkeypatch.setattr(RunControl, "owns_run", property(lambda self: True))
    monkeypatch.setattr(RunControl, "running", property(lambda self: True))
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app, "dashboard")
        app.run_control.session = name
        for answer in ("escape", "enter", "n"):
            await _answer(pilot, app, "q", ConfirmDialog, None, answer)
            assert app.is_running

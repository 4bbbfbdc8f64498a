"""Pilot tests of the keys: Ctrl+C, the ? screen, the command palette, manual mode's field, and a
10,000-trial leaderboard that sorts and moves a screen at a time."""

from __future__ import annotations

import math
import random
from pathlib import Path

from textual.widgets import DataTable, Input, OptionList

from tests.support.tui import build_fixed_db, make_preset, run_async, wait_for
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.store import Store
from tuitune.core.text import resume_command
from tuitune.launch import new_run
from tuitune.ui.app import TuituneApp, exit_words
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.screens.manual import ManualScreen
from tuitune.ui.widgets.help import HelpScreen
from tuitune.ui.widgets.leaderboard import Leaderboard

SIZE = (120, 40)


def _app(store: Store, launch=None) -> TuituneApp:
    return TuituneApp(store, launch, bundled_presets=False, probe_devices=False)


def fill(store: Store, name: str, n: int) -> None:
    """``n`` complete trials (every tenth pruned) written in one transaction."""
    rnd = random.Random(1)
    recs = []
    for i in range(n):
        lr, units = 10 ** rnd.uniform(-5, -1), rnd.choice([32, 64, 128])
        v = abs(math.log10(lr) + 2.5) / 3 + 6.4 / units + rnd.random() * 0.01
        state = TrialState.PRUNED if i % 10 == 0 else TrialState.COMPLETE
        eps = tuple({"epoch": e, "val_loss": v + 1 / e, "epoch_seconds": 0.1 * (i % 7 + 1)} for e in (1, 2))
        recs.append(
            TrialRecord(
                i, state, {"lr": lr, "units": units}, value=None if state == TrialState.PRUNED else v + 0.5,
                budget=2, epochs=eps, started=1.0, finished=2.0,
            )
        )
    store.add_trials(name, recs)


@run_async
async def test_ctrl_c_stops_after_the_epoch_then_a_second_one_quits(tmp_path):
    """Ctrl+C during a trial stops the run after its epoch (the app stays); a second Ctrl+C quits."""
    hold = tmp_path / "hold"
    Path(f"{hold}-0").touch()  # trial 0 waits after each epoch until the test lets it go: no race with its end
    preset = make_preset(tmp_path, sleep=0.15, epochs=6, hold=hold)
    store = Store(tmp_path / "t.db")
    launch = new_run(str(preset), db=store, trials=5, session="cc")
    app = _app(store, launch)
    async with app.run_test(size=SIZE) as pilot:
        view = app.screen.view
        await wait_for(pilot, lambda: view.current == 0 and view.trials[0].last_epoch >= 1, what="first epoch")
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: any("Ctrl+C again quits" in n.message for n in app._notifications),
                       what="the stop asked for")
        Path(f"{hold}-0").unlink()  # it reaches its next epoch's start, where the stop takes it
        await wait_for(pilot, lambda: not app.run_control.running, timeout=120, what="the run stopped")
        assert app.return_code is None  # still open
        assert store.session("cc").state == "stopped"
        assert store.trial("cc", 0).state == TrialState.INTERRUPTED
        assert any("Ctrl+C again quits" in n.message for n in app._notifications)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: app.return_code is not None, what="exit")
    assert exit_words(store, app.ran) == [f"session cc stopped; resume with: {resume_command('cc', store.path)}"]
    assert "stopped: stopped" not in (store.session("cc").message or "stopped")


@run_async
async def test_help_lists_every_key_and_the_palette_finds_each_action(tmp_path):
    """? lists the dashboard's keys, those it cannot use now too; the palette offers "Export best"."""
    preset = make_preset(tmp_path, epochs=6)
    store = Store(tmp_path / "t.db")
    build_fixed_db(tmp_path / "t.db", preset)
    app = _app(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        dashboard = app.screen
        titles = [c.title for c in app.get_system_commands(dashboard)]
        assert {"Export best", "Sort", "Chart", "Manual", "Run"} <= set(titles)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        keys = {desc: (key, enabled) for key, desc, enabled in app.screen.keys}
        assert keys["Sort"] == ("o", True) and keys["Export best"] == ("e", True)
        assert keys["Pause"] == ("p", False)  # nothing runs: listed, marked
        assert keys["Slice parameter"][0] == "x"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dashboard, what="help closed")
        await pilot.press("question_mark")  # enter closes it too (the focused table's select)
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help again")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is dashboard, what="help closed with enter")


@run_async
async def test_manual_r_applies_the_typed_value_and_runs_it(tmp_path):
    """A value typed but not entered is applied by r, which runs it; the r never lands in the field."""
    preset = make_preset(tmp_path, epochs=2)
    store = Store(tmp_path / "t.db")
    new_run(str(preset), db=store, strategy="manual", session="man").runner().run()
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter", "m")
        await wait_for(pilot, lambda: isinstance(app.screen, ManualScreen), what="manual")
        screen = app.screen
        await pilot.press("enter", "0", ".", "0", "2")  # lr, typed, no enter
        field = screen.query_one("#manual-value", Input)
        assert field.value == "0.02"
        await pilot.press("r")
        await wait_for(pilot, lambda: app.run_control.session == "man", what="manual run started")
        assert "r" not in field.value
        await wait_for(pilot, lambda: not app.run_control.running and screen.running_trial is None, what="end")
        assert store.trial("man", 1).meta == {"base": 0, "change": {"lr": 0.02}}


@run_async
async def test_a_10000_trial_leaderboard_sorts_and_pages_in_sql(tmp_path):
    """10,000 trials: ranks, sort by a parameter and the cursor at the end agree with the data."""
    preset = make_preset(tmp_path, epochs=2)
    store = Store(tmp_path / "t.db")
    new_run(str(preset), db=store, trials=20_000, session="big")
    fill(store, "big", 10_000)
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        board = app.screen.query_one(Leaderboard)
        await wait_for(pilot, lambda: board.row_count == 10_000, what="rows")
        trials = store.trials("big", with_epochs=False)
        best = min((t for t in trials if t.value is not None), key=lambda t: (t.value, t.number))
        assert board.selected_number() == best.number
        assert len(board._cells) < 100  # only what is on screen was read
        await pilot.press("end")
        assert board.selected_number() == max(t.number for t in trials if t.state == TrialState.PRUNED)
        await pilot.press("o", "o", "o")  # trial, time, lr
        assert board.sort_by == "param:lr"
        lrs = {t.number: t.config["lr"] for t in trials}
        await pilot.press("home")
        assert board.selected_number() == min(lrs, key=lrs.get)
        await pilot.press("pagedown", "pagedown")
        index = board.cursor
        assert board.selected_number() == sorted(lrs, key=lambda n: (lrs[n], n))[index]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.name.startswith("trial-"), what="trial detail")


@run_async
async def test_new_session_form_is_reachable_by_tab_at_80x24(tmp_path):
    """At 80x24, tab walks from the preset list through every field to Start, each one in view."""
    from textual.widgets import Button, Select

    preset = make_preset(tmp_path, epochs=2)
    app = TuituneApp(Store(tmp_path / "t.db"), preset_files=[str(preset)], bundled_presets=False, probe_devices=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.name == "new-session", what="new session")
        await pilot.pause()
        seen = []
        for _ in range(20):
            await pilot.press("tab")
            await pilot.pause()
            w = app.focused
            if w is None:
                continue
            seen.append(w.id)
            region = w.region
            assert region.height > 0 and app.screen.region.contains_region(region), w.id  # on screen
            if isinstance(w, Button):
                break
        for wanted in ("strategy", "trials", "max-epochs", "seed", "device", "session-name", "start"):
            assert wanted in seen, (wanted, seen)
        assert isinstance(app.screen.query_one("#strategy"), Select)


def _conditional_preset(tmp_path):
    """make_preset's objective with a choice (optimizer) and a parameter only sgd uses (momentum)."""
    preset = make_preset(tmp_path, epochs=2)
    text = preset.read_text().replace("units = 64\n", 'units = 64\noptimizer = "adam"\nmomentum = 0.9\n', 1)
    text += 'optimizer = { type = "choice", values = ["adam", "rmsprop", "sgd"] }\n'
    text += 'momentum = { type = "float", low = 0.5, high = 0.99, when = { optimizer = ["sgd"] } }\n'
    preset.write_text(text)
    return preset


@run_async
async def test_manual_typing_in_a_choice_list_finds_the_value_and_fires_no_key(tmp_path):
    """Typing "sgd" in the optimizer's list picks sgd; g (curves), d (defaults base) never fire; the
    "new" column shows momentum 0.9, what the trial will run with, not '-'."""
    preset = _conditional_preset(tmp_path)
    store = Store(tmp_path / "t.db")
    new_run(str(preset), db=store, strategy="manual", session="man").runner().run()  # the defaults, once
    app = _app(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter", "m")
        await wait_for(pilot, lambda: isinstance(app.screen, ManualScreen), what="manual")
        screen = app.screen
        assert screen.base_id == 0 and "momentum" not in screen.base_config
        base = screen.base
        params = screen.query_one("#manual-params", DataTable)
        params.move_cursor(row=screen.params.index("optimizer"))
        await pilot.press("enter")
        choices = screen.query_one("#manual-choices", OptionList)
        await wait_for(pilot, lambda: choices.has_focus, what="the choice list")
        await pilot.press("s", "g", "d")
        assert choices.highlighted == 2  # sgd
        assert screen.query_one("#manual-left").current == "manual-params"  # g did not show the curves
        assert screen.base == base  # d did not change the base
        await pilot.press("enter")
        assert screen.differences() == {"optimizer": "sgd"}
        row = [str(c) for c in params.get_row("momentum")]
        assert row[1] == "-" and row[2] == "0.9 (on)", row
        # a new word starts again: "r" finds rmsprop (and does not run)
        params.move_cursor(row=screen.params.index("optimizer"))
        await pilot.press("enter", "r")
        assert choices.highlighted == 1 and not app.run_control.running
        await pilot.press("escape")

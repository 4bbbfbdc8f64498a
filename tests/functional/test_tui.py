"""Pilot tests of the TUI's flows: new session, live leaderboard, manual mode, pause/stop/abort, quit, resume, export."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable, Input, OptionList

from tests.support.tui import build_fixed_db, make_preset, run_async, wait_for
from tuitune.core.records import TrialState
from tuitune.core.store.store import Store
from tuitune.launch import new_run
from tuitune.ui.app import TuituneApp
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.screens.home import HomeScreen
from tuitune.ui.screens.manual import ManualScreen
from tuitune.ui.screens.new_session import NewSessionScreen
from tuitune.ui.screens.trial_detail import TrialDetailScreen
from tuitune.ui.widgets.dialogs import ConfirmDialog, PathDialog
from tuitune.ui.widgets.leaderboard import Leaderboard

SIZE = (120, 40)


def _app(store: Store, preset=None, launch=None) -> TuituneApp:
    return TuituneApp(
        store, launch, preset_files=[str(preset)] if preset else [], bundled_presets=False, probe_devices=False
    )


def _notes(app: TuituneApp) -> list[str]:
    return [n.message for n in app._notifications]


def _board(app: TuituneApp) -> Leaderboard:
    return app.screen.query_one(Leaderboard)


@run_async
async def test_empty_database_new_session_runs_and_fills_the_leaderboard(tmp_path):
    preset = make_preset(tmp_path, epochs=3)
    store = Store(tmp_path / "t.db")
    app = _app(store, preset)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, HomeScreen)
        assert "No sessions yet" in str(app.screen.query_one("#home-empty").render())
        await pilot.press("enter")  # the empty home offers a new session
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen), what="new session screen")
        screen = app.screen
        assert screen.query_one("#preset-list", OptionList).option_count == 1
        screen.query_one("#trials", Input).value = "3"
        screen.query_one("#session-name", Input).value = "first"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        await wait_for(
            pilot, lambda: app.run_control.session == "first" and not app.run_control.running, what="run end"
        )
        await wait_for(pilot, lambda: _board(app).row_count == 3, what="3 leaderboard rows")
        assert [t.state for t in store.trials("first")] == [TrialState.COMPLETE] * 3
        log = app.screen.query_one("#event-log").text
        assert "trial 2 complete" in log and "session finished" in log
        # the header says the session's end, not the word it had while the run's thread was winding down
        await wait_for(pilot, lambda: " finished " in str(app.screen.query_one("#dash-header").render()),
                       what="header: finished")
        assert " running " not in str(app.screen.query_one("#dash-header").render())
        await pilot.press("c", "c", "c", "x", "o")  # every chart and a sort, on a finished session
        await pilot.press("enter")  # the leaderboard's first row
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDetailScreen), what="trial detail")
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        assert app.screen.query_one("#sessions", DataTable).row_count == 1


@run_async
async def test_new_session_refuses_a_bad_name_with_a_notification(tmp_path):
    preset = make_preset(tmp_path)
    app = _app(Store(tmp_path / "t.db"), preset)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        app.screen.query_one("#session-name", Input).value = "bad name!"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, NewSessionScreen)
        assert any("not allowed" in n for n in _notes(app))


@run_async
async def test_new_session_form_offers_the_sampler_for_asha_and_hyperband(tmp_path):
    from textual.widgets import Select

    preset = make_preset(tmp_path)
    app = _app(Store(tmp_path / "t.db"), preset)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        field = screen.query_one("#field-sampler")
        assert not field.display  # random has no sampler
        for strategy in ("asha", "hyperband"):
            screen.query_one("#strategy", Select).value = strategy
            await wait_for(pilot, lambda: field.display, what=f"the sampler field for {strategy}")
            assert "sampler" not in screen.settings()["options"]  # left at default: the strategy's own
            screen.query_one("#sampler", Select).value = "bayes"
            await pilot.pause()
            assert screen.settings()["options"]["sampler"] == "bayes"
            screen.query_one("#sampler", Select).value = "default"
        screen.query_one("#strategy", Select).value = "bayes"
        await wait_for(pilot, lambda: not field.display, what="the sampler field hidden for bayes")
        screen.query_one("#sampler", Select).value = "random"
        assert "sampler" not in screen.settings()["options"]


@run_async
async def test_new_session_form_takes_a_budget_and_the_header_shows_what_is_left(tmp_path):
    from textual.widgets import Select

    preset = make_preset(tmp_path, epochs=2)
    store = Store(tmp_path / "t.db")
    app = _app(store, preset)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        screen.query_one("#strategy", Select).value = "manual"
        await wait_for(pilot, lambda: not screen.query_one("#field-time").display, what="no budget for manual")
        screen.query_one("#strategy", Select).value = "random"
        await wait_for(pilot, lambda: screen.query_one("#field-time").display, what="the budget fields")
        screen.query_one("#time", Input).value = "soon"
        screen.query_one("#session-name", Input).value = "budget"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("--time 'soon' is not a duration" in n for n in _notes(app)), what="error")
        assert isinstance(app.screen, NewSessionScreen) and not store.session_exists("budget")
        screen._starting = False
        screen.query_one("#time", Input).value = "2h"
        screen.query_one("#trials", Input).value = "10"
        screen.query_one("#total-epochs", Input).value = "4"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        await wait_for(pilot, lambda: app.run_control.session == "budget" and not app.run_control.running, what="end")
        assert len(store.trials("budget")) == 2  # 4 epochs: two trials of 2
        assert store.session("budget").info["budget"] == {"timeout": 7200.0, "total_epochs": 4}
        header = lambda: str(app.screen.query_one("#dash-header").render())  # noqa: E731
        await wait_for(pilot, lambda: "4/4 epochs" in header() and "of 2h00m left" in header(), what="budget in header")


@run_async
async def test_new_session_form_offers_the_defaults_as_priors_and_a_warm_start(tmp_path):
    from textual.widgets import Select

    preset = make_preset(tmp_path, epochs=1)
    store = Store(tmp_path / "t.db")
    app = _app(store, preset)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        field = screen.query_one("#field-prior")
        screen.query_one("#strategy", Select).value = "grid"
        await wait_for(pilot, lambda: not field.display, what="no prior for grid")
        screen.query_one("#strategy", Select).value = "bayes"
        await wait_for(pilot, lambda: field.display, what="the prior field for bayes")
        assert screen.settings()["prior"] is None
        screen.query_one("#prior", Select).value = "defaults"
        screen.query_one("#trials", Input).value = "2"
        screen.query_one("#session-name", Input).value = "pri"
        await pilot.pause()
        assert screen.settings()["prior"] == "defaults"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.run_control.session == "pri" and not app.run_control.running, what="end")
        rec = store.session("pri")
        assert {k for k, p in rec.space.items() if "prior" in p} == set(rec.searched)
        assert store.trials("pri")[0].config == rec.defaults
        # A second session warm-started from it: its best config runs first.
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        screen.query_one("#strategy", Select).value = "random"
        await wait_for(pilot, lambda: screen.query_one("#field-warm-start").display, what="the warm-start field")
        screen.query_one("#warm-start", Input).value = "pri"
        screen.query_one("#trials", Input).value = "2"
        screen.query_one("#session-name", Input).value = "warm"
        await pilot.pause()
        assert screen.settings()["warm_start"] == ["pri"]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.run_control.session == "warm" and not app.run_control.running, what="end")
        best = min((t for t in store.trials("pri") if t.value is not None), key=lambda t: t.value)
        assert store.trials("warm")[0].config == best.config


@run_async
async def test_new_session_grid_points_and_largest_grid_reach_the_strategy(tmp_path):
    """Grid from the form at 80x24: its points per float and largest grid reach the stored session
    (2 points for lr x 8 units = 16 configs), and a grid over the limit is one notification."""
    from textual.widgets import Select

    preset = make_preset(tmp_path, epochs=1)
    store = Store(tmp_path / "t.db")
    app = _app(store, preset)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        screen = app.screen
        screen.query_one("#strategy", Select).value = "grid"
        await wait_for(pilot, lambda: screen.query_one("#field-grid-points").display, what="grid points field")
        assert screen.query_one("#field-max-grid").display
        screen.query_one("#session-name", Input).value = "g"
        screen.query_one("#grid-points", Input).value = "2"
        screen.query_one("#max-grid", Input).value = "10"  # under the 16 configs: refused, said
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("16" in n and "10" in n for n in _notes(app)), what="the size refused")
        assert isinstance(app.screen, NewSessionScreen) and not store.session_exists("g")
        screen.query_one("#max-grid", Input).value = "100"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        rec = store.session("g")
        assert rec.strategy == "grid" and rec.options.get("points") == 2 and rec.options.get("max_size") == 100
        await wait_for(pilot, lambda: not app.run_control.running and len(store.trials("g")) == 16, what="the grid run")
        assert sorted({t.config["lr"] for t in store.trials("g")}) == [1e-5, 1e-1]  # 2 points: the ends


@run_async
async def test_new_session_form_asks_for_the_array_size(tmp_path):
    from textual.widgets import Select

    preset = make_preset(tmp_path)
    app = _app(Store(tmp_path / "t.db"), preset)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        assert "fuse" not in screen.settings()["placement"]  # the default: the preset's, else auto
        for word in ("8", "auto", "off"):
            screen.query_one("#fuse", Select).value = word
            await pilot.pause()
            assert screen.settings()["placement"]["fuse"] == word  # new_run parses it as --fuse does
        assert "workers" not in screen.settings()["placement"]  # the default: the preset's, else 1
        for word in ("auto", "2"):
            screen.query_one("#workers", Select).value = word
            await pilot.pause()
            assert screen.settings()["placement"]["workers"] == word  # Placement parses it as --workers does


@run_async
async def test_pause_abort_and_stop_after_trial(tmp_path):
    hold = tmp_path / "hold"
    for n in (0, 1):  # trials 0 and 1 wait after each epoch until the test lets them go
        Path(f"{hold}-{n}").touch()
    preset = make_preset(tmp_path, sleep=0.05, epochs=6, hold=hold)
    store = Store(tmp_path / "t.db")
    launch = new_run(str(preset), db=store, trials=5, session="ctl")
    app = _app(store, launch=launch)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        view = screen.view
        await wait_for(pilot, lambda: view.current == 0 and view.trials[0].last_epoch >= 1, what="first epoch")
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.paused, what="paused")
        await pilot.press("p")
        await wait_for(pilot, lambda: not screen.paused, what="resumed")
        await pilot.press("a")
        runner = app.run_control.runner
        await wait_for(pilot, lambda: runner is not None and 0 in runner._aborts, what="the abort reaching the runner")
        Path(f"{hold}-0").unlink()
        await wait_for(pilot, lambda: 0 in view.trials and view.trials[0].state == TrialState.PRUNED, what="trial 0 aborted")
        assert view.trials[0].reason == "aborted by the user"
        await wait_for(pilot, lambda: view.current == 1, what="trial 1 started")
        await pilot.press("s")
        await wait_for(pilot, lambda: runner.stopping, what="the stop reaching the runner")
        Path(f"{hold}-1").unlink()
        await wait_for(pilot, lambda: not app.run_control.running, timeout=120, what="stopped")
        trials = store.trials("ctl")
        assert len(trials) == 2 and trials[1].state == TrialState.COMPLETE
        assert store.session("ctl").state == "stopped"


@run_async
async def test_pause_holds_the_next_epoch(tmp_path):
    preset = make_preset(tmp_path, sleep=0.05, epochs=50)
    store = Store(tmp_path / "t.db")
    app = _app(store, launch=new_run(str(preset), db=store, trials=1, session="hp"))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        view = screen.view
        await wait_for(pilot, lambda: 0 in view.trials and view.trials[0].last_epoch >= 1, what="epoch 1")
        await pilot.press("p")
        await wait_for(pilot, lambda: screen.paused, what="paused")
        held = store.trial("hp", 0).last_epoch
        await pilot.pause(0.5)  # an upper bound is checked: a slow machine only makes it easier
        assert store.trial("hp", 0).last_epoch <= held + 1  # at most the epoch in flight
        app.run_control.stop()
        await wait_for(pilot, lambda: not app.run_control.running, timeout=120, what="stopped")


@run_async
async def test_quit_during_a_trial_asks_then_stops_and_resume_fills_the_dashboard(tmp_path):
    hold = tmp_path / "hold"
    Path(f"{hold}-1").touch()  # trial 1 waits after its first epoch until the quit reached the runner
    preset = make_preset(tmp_path, sleep=0.05, epochs=6, hold=hold)
    store = Store(tmp_path / "t.db")
    launch = new_run(str(preset), db=store, trials=3, session="q")
    app = _app(store, launch=launch)
    async with app.run_test(size=SIZE) as pilot:
        view = app.screen.view
        await wait_for(pilot, lambda: 1 in view.trials and view.trials[1].last_epoch == 1, what="trial 1 training")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="quit question")
        await pilot.press("y")
        runner = app.run_control.runner
        await wait_for(pilot, lambda: runner is not None and runner.stopping, what="the stop reaching the runner")
        Path(f"{hold}-1").unlink()
        await wait_for(pilot, lambda: app.run_control.done.is_set() and app.return_code is not None, what="exit")
    trials = store.trials("q")
    assert trials[0].state == TrialState.COMPLETE
    assert trials[1].state == TrialState.INTERRUPTED and trials[1].epochs

    # Opened again (not running): the chart and leaderboard come from the database.
    app2 = _app(store)
    async with app2.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app2.screen, DashboardScreen))
        assert _board(app2).row_count == 2
        assert app2.screen.view.trials[1].epochs
        # r resumes: the interrupted trial continues and the session finishes.
        await pilot.press("r")
        await wait_for(pilot, lambda: app2.run_control.session == "q", what="resume started")
        await wait_for(pilot, lambda: not app2.run_control.running, timeout=120, what="resumed run end")
        await wait_for(pilot, lambda: _board(app2).row_count == 3)
    assert [t.state for t in store.trials("q")] == [TrialState.COMPLETE] * 3


@run_async
async def test_manual_mode_one_change_rule_and_history(tmp_path):
    preset = make_preset(tmp_path, epochs=2)
    store = Store(tmp_path / "t.db")
    new_run(str(preset), db=store, strategy="manual", session="man").runner().run()  # the defaults, once
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter", "m")
        await wait_for(pilot, lambda: isinstance(app.screen, ManualScreen), what="manual screen")
        screen = app.screen
        assert screen.base_id == 0  # the best trial: the defaults run
        # lr: typed, checked against the space as it is typed.
        await pilot.press("enter")
        inp = screen.query_one("#manual-value", Input)
        inp.value = "5"
        await pilot.pause()
        assert "outside" in str(screen.query_one("#manual-status").render()) or "must be" in str(
            screen.query_one("#manual-status").render()
        )
        inp.value = "0.01"
        await pilot.press("enter")
        assert screen.differences() == {"lr": 0.01}
        await pilot.press("asterisk")  # x10 on a log scale
        assert screen.differences() == {"lr": 0.1}
        await pilot.press("slash")
        assert screen.differences() == {"lr": 0.01}
        # units: a second change is refused at run time.
        await pilot.press("down", "enter")
        screen.query_one("#manual-value", Input).value = "128"
        await pilot.press("enter")
        assert set(screen.differences()) == {"lr", "units"}
        await pilot.press("r")
        await pilot.pause()
        assert any("one parameter at a time" in n for n in _notes(app))
        assert not app.run_control.running
        await pilot.press("u")  # undoes units (the selected row)
        assert screen.differences() == {"lr": 0.01}
        await pilot.press("r")
        await wait_for(pilot, lambda: app.run_control.session == "man", what="manual run started")
        await wait_for(
            pilot, lambda: not app.run_control.running and screen.running_trial is None, what="manual run end"
        )
        t = store.trial("man", 1)
        assert t.meta == {"base": 0, "change": {"lr": 0.01}} and t.state == TrialState.COMPLETE
        hist = screen.query_one("#manual-history", DataTable)
        assert hist.row_count == 2
        row = [str(c) for c in hist.get_row("1")]
        assert row[2] == "lr=0.01" and row[4].startswith(("+", "-"))
        await pilot.press("b")  # the new trial becomes the base
        assert screen.base_id == 1


@run_async
async def test_export_writes_the_json_and_delete_asks(tmp_path):
    preset = make_preset(tmp_path, epochs=6)
    store = Store(tmp_path / "t.db")
    name = build_fixed_db(tmp_path / "t.db", preset)
    out = tmp_path / "best.json"
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog))
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, lambda: out.exists(), what="export file")
        doc = json.loads(out.read_text())
        assert doc["session"] == name and doc["trial"] == 3 and doc["config"] == {"lr": 0.004, "units": 192}
        # An unwritable path is a notification, not a traceback.
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, PathDialog))
        app.screen.query_one(Input).value = str(tmp_path / "no" / "such" / "dir" / "x.json")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")
        assert store.session_exists(name)
        folders = store.session_folders(name)  # what its runs left beside the database
        for f in folders:
            (f / "0").mkdir(parents=True)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not store.session_exists(name), what="deleted")
        assert not [f for f in folders if f.exists()], "its checkpoint and log folders were left behind"


@run_async
async def test_trial_detail_of_a_failed_trial_shows_reason_and_traceback(tmp_path):
    preset = make_preset(tmp_path, epochs=6)
    store = Store(tmp_path / "t.db")
    build_fixed_db(tmp_path / "t.db", preset)
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        _board(app).select_number(4)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDetailScreen))
        text = str(app.screen.query_one("#trial-failure").render())
        assert "loss became nan" in text and "Traceback" in text


@run_async
async def test_failing_trials_are_logged_with_their_reason(tmp_path):
    preset = make_preset(tmp_path, epochs=2, fail_units=64)
    store = Store(tmp_path / "t.db")
    launch = new_run(str(preset), db=store, strategy="manual", session="bad")  # the defaults: units 64 fails
    app = _app(store, launch=launch)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.run_control.session == "bad" and not app.run_control.running)
        log = app.screen.query_one("#event-log")
        await wait_for(pilot, lambda: "trial 0 failed" in log.text and "always fails" in log.text,
                       what="the failure in the event log")


@run_async
async def test_home_pane_leaves_inactive_parameters_out(tmp_path):
    import tuitune as tt

    space = tt.Space(
        x=tt.Float(0.0, 1.0), opt=tt.Choice(["sgd", "adam"]),
        momentum=tt.Float(0.5, 0.99, when={"opt": ["sgd"]}), beta1=tt.Float(0.5, 0.99, when={"opt": ["adam"]}),
    )
    session = tt.tune(lambda c, t: c["x"], space, trials=4, db=tmp_path / "t.db", session="c", workers=0, quiet=True)
    best = session.best
    inactive = "beta1" if best.config["opt"] == "sgd" else "momentum"
    app = _app(Store(tmp_path / "t.db"))
    async with app.run_test(size=SIZE) as pilot:
        info = app.screen.query_one("#home-info")
        await wait_for(pilot, lambda: "best #" in str(info.render()), what="the pane")
        text = str(info.render())
        assert f"opt={best.config['opt']}" in text and inactive not in text and "=-" not in text, text

"""SVG snapshots of every screen and state at 80x24 and 120x40, from databases of fixed trials,
times and values; grouped by screen. Look at a changed one (``rsvg-convert``) before ``--snapshot-update``."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pytest

from tests.support.tui import add_running_trial, build_fixed_db, build_hyperband_db, make_preset, settled
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.store import Store
from tuitune.ui import messages as msg
from tuitune.ui.app import TuituneApp
from tuitune.ui.run_control import RunControl

SIZES = [(80, 24), (120, 40)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


@pytest.fixture
def fixed(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)  # relative paths: the title shows the same database name on every run
    preset = make_preset(tmp_path, name="mine", epochs=6, module="snapshot_objective")
    db = Path("fixed.db")
    name = build_fixed_db(db, preset)
    monkeypatch.setattr("tuitune.ui.screens.new_session.new_session_name", lambda store: "calm-otter-1")
    yield Store(db), name, preset
    monkeypatch.undo()
    time.tzset()


def _app(store, preset) -> TuituneApp:
    return TuituneApp(store, preset_files=[preset.name], bundled_presets=False, probe_devices=False)


def _pretend_running(monkeypatch) -> None:
    """The dashboard believes a run is going on (its messages are posted by the test)."""
    monkeypatch.setattr(RunControl, "running", property(lambda self: True))
    monkeypatch.setattr(RunControl, "is_running", lambda self, name: True)
    # The resume hint names the database by its absolute path: a temporary folder's, different each run.
    monkeypatch.setattr("tuitune.ui.app.resume_command", lambda name, path: f"tuitune --db fixed.db resume {name}")


async def _live_paused(pilot, store: Store, name: str) -> None:
    """Opens the dashboard and replays what the runner posts: trial 8 began, then the pause."""
    await pilot.press("enter")
    await pilot.pause()
    pilot.app.run_control.session = name
    t = dataclasses.replace(store.trial(name, 8), state=TrialState.RUNNING, reason=None)
    pilot.app.post_message(msg.TrialBegan(name, t, False))
    pilot.app.post_message(msg.EpochsProgress(name, 8, 6, t.epochs))
    pilot.app.post_message(msg.RunPaused(name, True))
    await settled(pilot)  # the throttled redraw


class TestHome:
    @sizes
    def test_home(self, snap_compare, fixed, size):
        """Sessions with the detail pane of the first: state, liveness, best config, chart."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), terminal_size=size, run_before=settled)

    @sizes
    def test_home_empty(self, snap_compare, tmp_path, fixed, size):
        """An empty database says how to start."""
        _, _, preset = fixed
        assert snap_compare(_app(Store("empty.db"), preset), terminal_size=size)

    @sizes
    def test_help(self, snap_compare, fixed, size):
        """? lists the home screen's keys and the app's."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["question_mark"], terminal_size=size)


class TestNewSession:
    @sizes
    def test_new_session(self, snap_compare, fixed, size):
        """Preset list, space preview, strategy options, device and name: all in view at 80x24."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["n"], terminal_size=size)


class TestDashboard:
    @sizes
    def test_dashboard(self, snap_compare, fixed, size):
        """A stopped session: the selected trial's chart, side panel, ranked leaderboard."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter"], terminal_size=size)

    @sizes
    def test_dashboard_curves(self, snap_compare, fixed, size):
        """All learning curves, with the legend."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter", "c"], terminal_size=size)

    @sizes
    def test_paused(self, snap_compare, fixed, monkeypatch, size):
        """A run paused mid-trial: header, progress and the trial's row say paused; its best so far shows."""
        store, name, preset = fixed
        add_running_trial(store.path)
        _pretend_running(monkeypatch)
        app = _app(store, preset)
        assert snap_compare(app, terminal_size=size, run_before=lambda p: _live_paused(p, store, name))

    @sizes
    def test_two_running(self, snap_compare, fixed, monkeypatch, size):
        """Two workers: the header names both running trials (cut to fit 80 columns); the chart and the
        side panel follow the better of them (trial 8), not the latest started (trial 9)."""
        store, name, preset = fixed
        add_running_trial(store.path)
        add_running_trial(store.path)  # trial 9, the same config and epochs; the run has reached epoch 1
        _pretend_running(monkeypatch)

        async def before(pilot):
            await pilot.press("enter")
            await pilot.pause()
            pilot.app.run_control.session = name
            for number, rows in ((8, 3), (9, 1)):
                t = dataclasses.replace(store.trial(name, number), state=TrialState.RUNNING, reason=None)
                pilot.app.post_message(msg.TrialBegan(name, t, False))
                pilot.app.post_message(msg.EpochsProgress(name, number, 6, t.epochs[:rows]))
            await settled(pilot)  # the throttled redraw

        assert snap_compare(_app(store, preset), terminal_size=size, run_before=before)

    @sizes
    def test_confirm_quit(self, snap_compare, fixed, monkeypatch, size):
        """q while a run trains asks before stopping it."""
        store, name, preset = fixed
        add_running_trial(store.path)
        _pretend_running(monkeypatch)

        async def before(pilot):
            await _live_paused(pilot, store, name)
            await pilot.press("q")

        assert snap_compare(_app(store, preset), terminal_size=size, run_before=before)

    @sizes
    def test_hyperband_rungs(self, snap_compare, tmp_path, fixed, size):
        """A Hyperband session's curves: the rung at 2 epochs marked, pruned trials dimmed."""
        _, _, preset = fixed
        store = Store("hb.db")
        build_hyperband_db(Path("hb.db"), preset)
        assert snap_compare(_app(store, preset), press=["enter", "c"], terminal_size=size)

    @sizes
    def test_10000_trials(self, snap_compare, fixed, size):
        """10,000 trials: the leaderboard shows its first screen; the curves chart says what it draws."""
        store, name, preset = fixed
        recs = []
        for i in range(10_000):
            lr, units = 10 ** (-5 + 4 * ((i * 7919) % 10_000) / 10_000), 32 * (1 + i % 8)
            v = round(abs(math.log10(lr) + 2.5) / 3 + 6.4 / units, 4)
            eps = tuple({"epoch": e, "val_loss": round(v + 1 / e, 4), "epoch_seconds": 0.5} for e in (1, 2))
            recs.append(TrialRecord(i, TrialState.COMPLETE, {"lr": lr, "units": units}, v + 0.5, 6, eps))
        store.add_trials(name, recs)

        async def before(pilot):
            await pilot.press("enter")
            dash = pilot.app.screen
            while dash.view.elapsed() is None:  # the training total is summed in a thread
                await pilot.pause(0.05)
            await settled(pilot)

        assert snap_compare(_app(store, preset), terminal_size=size, run_before=before)


class TestTrialDetail:
    @sizes
    def test_failed(self, snap_compare, fixed, size):
        """A failed trial: its reason and traceback."""
        store, _, preset = fixed
        # The leaderboard lists complete trials first; the failed trial 4 is the last row.
        assert snap_compare(_app(store, preset), press=["enter", *["down"] * 7, "enter"], terminal_size=size)

    @sizes
    def test_pruned(self, snap_compare, fixed, size):
        """A pruned trial: why, and its short curve against the best."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter", *["down"] * 6, "enter"], terminal_size=size)


class TestManual:
    @sizes
    def test_manual(self, snap_compare, fixed, size):
        """Manual mode from the best trial: parameters, the side panel, the history."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter", "m"], terminal_size=size)

    @sizes
    def test_invalid_value(self, snap_compare, fixed, size):
        """A value outside the space typed in the field: the reason in red, nothing changed."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter", "m", "enter", "5"], terminal_size=size)

    @sizes
    def test_effect_curves(self, snap_compare, fixed, size):
        """g: the manual change's learning curve over its base's."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter", "m", "g"], terminal_size=size)


class TestCompareAndImportance:
    @sizes
    def test_compare(self, snap_compare, fixed, size):
        """Three marked trials: configs side by side, the differing ones marked, curves overlaid."""
        store, _, preset = fixed
        assert snap_compare(_app(store, preset), press=["enter", "space", "space", "space", "v"], terminal_size=size)

    @sizes
    def test_importance(self, snap_compare, fixed, size):
        """PED-ANOVA shares as bars, and the slice plot of the most important parameter."""
        store, _, preset = fixed

        async def before(pilot):
            await pilot.press("enter", "i")
            while not pilot.app.screen.shares:
                await pilot.pause(0.05)
            await settled(pilot)

        assert snap_compare(_app(store, preset), terminal_size=size, run_before=before)

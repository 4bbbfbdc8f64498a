"""Pilot tests of the dashboard with two workers: the header names every running trial (within 80 columns),
and the chart and the side panel follow the selected running trial, else the best running one."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from tests.support.tui import make_preset, run_async, wait_for
from tuitune.core.store.store import Store
from tuitune.launch import new_run
from tuitune.ui.app import TuituneApp
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.screens.trial_detail import TrialDetailScreen
from tuitune.ui.widgets.charts import TrialChart
from tuitune.ui.widgets.leaderboard import Leaderboard
from tuitune.ui.widgets.meter import Meter


def _plain(widget: Static) -> str:
    content = widget.render()
    return content.plain if hasattr(content, "plain") else str(content)


def _meter_label(screen: DashboardScreen) -> str:
    return screen.query_one("#trial-progress", Meter).label


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
@run_async
async def test_two_running_trials_in_the_header_and_the_followed_one(tmp_path, monkeypatch, size):
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned workers import the objective's module
    hold = tmp_path / "hold"
    for n in (0, 1):  # trials 0 and 1 wait after each epoch until the test lets them go
        Path(f"{hold}-{n}").touch()
    preset = make_preset(tmp_path, epochs=4, hold=hold)
    store = Store(tmp_path / "t.db")
    launch = new_run(str(preset), db=store, trials=3, session="two", placement={"workers": 2, "devices": "cpu"})
    app = TuituneApp(store, launch, preset_files=[], bundled_presets=False, probe_devices=False)
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        view = screen.view
        await wait_for(pilot, lambda: sorted(view.running()) == [0, 1]
                       and all(view.live[n].last_epoch >= 1 for n in (0, 1)), timeout=120,
                       what="trials 0 and 1 running on the two workers")
        header = screen.query_one("#dash-header", Static)
        await wait_for(pilot, lambda: "2 running" in _plain(header), what="the header naming both")
        text = _plain(header)
        shown = text[: size[0] - 2]  # what fits on the line (padding 0 1)
        assert "2 running: #" in shown and "#0" in shown and "#1" in shown, text
        if size[0] >= 120:
            assert "cpu" in shown and "1/4" in shown, text

        # Nothing running is selected: the best running trial is followed (the lower val_loss so far).
        values = {n: min(e["val_loss"] for e in view.live[n].epochs) for n in (0, 1)}
        best = min(values, key=lambda n: values[n])
        other = 1 - best
        assert screen.followed() == best
        # Selecting the other running trial moves the chart and the side panel to it.
        board = screen.query_one(Leaderboard)
        board.select_number(other)
        await wait_for(pilot, lambda: screen.followed() == other and _meter_label(screen).startswith(f"trial {other}:"),
                       what="the side panel following the selected running trial")
        await wait_for(pilot, lambda: screen.query_one(TrialChart).number == other,
                       what="the chart following the selected running trial")
        # a aborts the trial shown, not its sibling.
        await pilot.press("a")
        runner = app.run_control.runner
        assert runner is not None
        await wait_for(pilot, lambda: other in runner._aborts, what="the abort reaching the runner")
        assert None not in runner._aborts and best not in runner._aborts
        # t opens the trial shown, following it; when it ends, the detail moves to its still running sibling.
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TrialDetailScreen), what="the trial detail")
        detail = app.screen
        assert isinstance(detail, TrialDetailScreen) and detail.follow and detail.number == other
        Path(f"{hold}-{other}").unlink()
        await wait_for(pilot, lambda: other not in view.running(), what="the aborted trial to end")
        await wait_for(pilot, lambda: detail.number == best, what="the detail following the sibling")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, what="back on the dashboard")
        board.select_number(best)
        await wait_for(pilot, lambda: _meter_label(screen).startswith(f"trial {best}:"), what="back to the other")

        Path(f"{hold}-{best}").unlink()
        await wait_for(pilot, lambda: not app.run_control.running, timeout=120, what="the run to finish")
        await wait_for(pilot, lambda: "running:" not in _plain(header), what="the header without running trials")
    states = {t.number: (t.state.value, t.reason) for t in store.trials("two")}
    assert states[other] == ("pruned", "aborted by the user")
    assert states[best][0] == states[2][0] == "complete"

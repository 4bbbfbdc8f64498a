"""Pilot tests of the screens at 80x24 and of the charts with a diverging trial: what a user reads
(rendered text, footer keys, regions), not widget internals."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from rich.console import Console
from textual.widgets import DataTable, Label, Static

from tests.support.tui import add_running_trial, build_fixed_db, make_preset, run_async, settled, wait_for
from tuitune.core.records import TrialState
from tuitune.core.store.store import Store
from tuitune.ui import messages as msg
from tuitune.ui.app import TuituneApp
from tuitune.ui.axes import Curve, linear_ticks, value_axis
from tuitune.ui.run_control import RunControl
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.screens.home import HomeScreen
from tuitune.ui.screens.new_session import NewSessionScreen
from tuitune.ui.widgets.charts import CurvesChart, TrialChart
from tuitune.ui.widgets.leaderboard import Leaderboard

SMALL = (80, 24)
TICK = re.compile(r"^\s*(-?[0-9.]+)┤")


def _fixed(tmp_path, diverging: bool = False):
    preset = make_preset(tmp_path, epochs=6)
    db = tmp_path / "t.db"
    name = build_fixed_db(db, preset)
    if diverging:  # trial 8: lr 3.1, train loss 241 at epoch 1, then stuck at ln(10)
        store = Store(db)
        t = store.new_trial(name, config={"lr": 0.09, "units": 32}, budget=6, info={"device": "cpu"})
        for e, (tr, va) in enumerate([(241.0, 180.0), (2.31, 2.30), (2.30, 2.30)], start=1):
            store.add_epoch(name, t.number, e, {"train_loss": tr, "val_loss": va, "val_acc": 0.1})
        store.finish_trial(name, t.number, state="complete", value=2.30)
        store.close()
    return Store(db), name


def _app(store: Store, **kw) -> TuituneApp:
    return TuituneApp(store, preset_files=kw.pop("preset_files", []), bundled_presets=kw.pop("bundled", False),
                      probe_devices=False, **kw)


def _ticks(text: str) -> list[float]:
    return [float(m.group(1)) for line in text.splitlines() if (m := TICK.match(line))]


def _round(ticks: list[float]) -> bool:
    """Evenly spaced by 1, 2, 2.5 or 5 times a power of ten."""
    if len(ticks) < 2:
        return False
    step = round(abs(ticks[1] - ticks[0]), 12)
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    return mantissa in (1, 2, 2.5, 5) and all(abs(round(t / step) * step - t) < step * 1e-6 for t in ticks)


@run_async
async def test_a_diverging_trial_is_left_off_the_curves_axis_and_named(tmp_path):
    store, name = _fixed(tmp_path, diverging=True)
    app = _app(store)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("enter", "c")  # the dashboard, all curves
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        chart = app.screen.query_one(CurvesChart)
        await wait_for(pilot, lambda: "off the chart" in str(chart.render()), what="the note in the title")
        text = str(chart.render())
        assert "#8 off the chart (180)" in text
        ticks = _ticks(text)
        assert _round(ticks) and max(ticks) < 5, ticks  # the axis is the others', with round ticks
        lines = text.splitlines()
        frame = [i for i, line in enumerate(lines) if "└" in line][0]
        legend = "\n".join(lines[frame + 1 :])
        assert "best #3" in legend and "complete" in legend  # under the plot...
        assert not any("best #3" in line for line in lines[1:frame])  # ...never over the curves


@run_async
async def test_the_diverging_trial_itself_goes_on_a_log_axis(tmp_path):
    store, name = _fixed(tmp_path, diverging=True)
    app = _app(store)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        board = app.screen.query_one(Leaderboard)
        board.select_number(8)
        app.open_trial(app.screen.view, 8)
        await settled(pilot)
        chart = app.screen.query_one(TrialChart)
        text = str(chart.render())
        assert "log axis" in text
        assert {0.1, 1.0, 10.0, 100.0} <= set(_ticks(text)) or {1.0, 10.0, 100.0} <= set(_ticks(text)), text


def test_value_axis_ticks_are_round_and_a_lone_value_gets_a_range():
    for lo, hi in [(0.21, 1.07), (0.755, 0.97), (1.28, 1.86), (0.0, 241.0), (0.9, 0.97)]:
        a, b, ticks, labels = linear_ticks(lo, hi, 4)
        assert a <= lo and b >= hi and _round(ticks), (lo, hi, ticks)
        assert all(len(label.rstrip("0").split(".")[-1]) <= 3 for label in labels)
    one = value_axis([Curve(0, [0.5])], rows=8)  # a 1-epoch trial: one value
    assert one.lo < 0.5 < one.hi and one.ticks


def test_a_short_chart_still_gets_two_ticks():
    """A chart of a few rows asks for about 2 ticks; a range that a step of 1 covers with one tick gets the
    finer round step (one label does not tell the scale)."""
    for lo, hi in [(0.4, 1.55), (0.35, 1.6), (2.1, 13.0), (0.2, 1.3)]:
        _, _, ticks, _ = linear_ticks(lo, hi, 2)
        assert len(ticks) >= 2 and _round(ticks), (lo, hi, ticks)
    axis = value_axis([Curve(0, [1.55, 0.9, 0.4])], rows=3)
    assert len(axis.ticks) >= 2, axis.ticks


@run_async
async def test_a_chart_lays_its_ticks_out_again_when_its_height_changes(tmp_path):
    """The value axis's ticks are laid out for the chart's height when it draws; a resized terminal (or a
    draw before the first layout) draws the last update again for the new height."""
    store, name = _fixed(tmp_path)
    app = _app(store)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        chart = app.screen.query_one(TrialChart)
        await wait_for(pilot, lambda: chart._axis_rows is not None and chart._axis_rows == chart._rows(),
                       what="the chart drawn for its height at 80x24")
        small = chart._axis_rows
        few = _ticks(str(chart.render()))
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: chart._rows() > small and chart._axis_rows == chart._rows(),
                       what="the chart drawn again for its height at 120x40")
        many = _ticks(str(chart.render()))
        assert len(many) > len(few) >= 2, (few, many)


@pytest.mark.parametrize("paused", [False, True])
@run_async
async def test_footer_says_resume_while_paused_and_the_header_fits_80_columns(tmp_path, monkeypatch, paused):
    store, name = _fixed(tmp_path)
    add_running_trial(store.path)
    monkeypatch.setattr(RunControl, "running", property(lambda self: True))
    monkeypatch.setattr(RunControl, "is_running", lambda self, name: True)
    app = _app(store)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        app.run_control.session = name
        t = dataclasses.replace(store.trial(name, 8), state=TrialState.RUNNING, reason=None)
        app.post_message(msg.TrialBegan(name, t, False))
        app.post_message(msg.EpochsProgress(name, 8, 6, t.epochs))
        app.post_message(msg.RunPaused(name, paused))
        await settled(pilot)
        screen = app.screen
        p = screen.active_bindings["p"]
        assert p.enabled and p.binding.description == ("Resume" if paused else "Pause")
        keys = [d for k, d, _ in __import__("tuitune.ui.widgets.help", fromlist=["x"]).screen_keys(screen)]
        assert sum("quit" in d.lower() and "epoch" in d for d in keys) == 1  # ctrl+c listed once
        header = screen.query_one("#dash-header", Static)
        plain = str(header.render())
        assert len(plain) <= header.size.width, plain  # nothing cut at the edge...
        assert "best 0.234" in plain and "random" in plain  # ...and the important parts kept


@run_async
async def test_event_log_entries_wrap_with_an_indent_at_80_columns(tmp_path):
    store, name = _fixed(tmp_path)
    app = _app(store)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        log = app.screen.query_one("#event-log")
        log.write("[green]trial 12 complete[/] val_acc=0.9694 [b green](new best)[/]")
        await settled(pilot)
        width = log.scrollable_content_region.width
        lines = str(log.query_one(Static).render()).splitlines()
        assert lines and all(len(line) <= width for line in lines), (width, lines)
        # each entry starts a line; its continuation lines are indented: none reads as an entry of its own
        starts = [line for line in lines if not line.startswith("  ")]
        assert starts == ["session steady-heron-7: 7 trials done, state stopped"[: len(starts[0])],
                          "the TUI was closed", "trial 12 complete val_acc=0.9694"[: len(starts[2])]], lines
        assert "completeval" not in "".join(lines)


@run_async
async def test_home_and_leaderboard_fit_80_columns(tmp_path):
    store, name = _fixed(tmp_path)
    app = _app(store)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen))
        table = app.screen.query_one("#sessions", DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="the sessions listed")
        await settled(pilot)
        assert table.virtual_size.width <= table.scrollable_content_region.width  # updated shows, no scrolling
        assert "01-01" in str(table.get_row(name)[-1])
        assert "momentum" not in str(app.screen.query_one("#home-info", Static).render())
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        board = app.screen.query_one(Leaderboard)
        assert board.styles.scrollbar_size_horizontal == 0
        assert board.render_line(0).text.rstrip().endswith("›")  # more columns to the right
        board.scroll_to(x=10, animate=False, immediate=True)
        await pilot.pause()
        assert board.render_line(0).text.startswith("‹")


@run_async
async def test_new_session_form_at_80x24_shows_every_choice_and_start(tmp_path):
    app = _app(Store(tmp_path / "t.db"), bundled=True)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen))
        await settled(pilot)
        screen = app.screen
        assert screen.entry is not None and screen.entry.preset.name == "digits-mlp"
        start = screen.query_one("#start")
        assert screen.region.contains_region(start.region) and start.region.height >= 1  # no scrolling
        for label in screen.query(".field > Label").results(Label):
            if label.display and label.parent.display:
                assert label.region.height == 1, label.render()  # never "halving / factor" on two rows
        static = screen.query_one("#space-table", Static)
        console = Console(width=static.size.width, record=True, file=io.StringIO())
        console.print(static.content)  # the table as the widget draws it, at its width
        space = console.export_text()
        assert "sgd, adam, adamw, rmsprop" in re.sub(r"\s*\n\s*", " ", space)  # wrapped, never cut
        form = screen.query_one("#new-form")
        assert form.virtual_size.width <= form.size.width  # no horizontal scrollbar

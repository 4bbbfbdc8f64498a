"""Pilot test: a session with two objectives and a constraint on the dashboard's leaderboard (issue 21)."""

from __future__ import annotations

import tuitune as tt
from tests.support.tui import run_async, wait_for
from tuitune.core.api import load
from tuitune.core.store.store import Store
from tuitune.ui.app import TuituneApp
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.widgets.leaderboard import Leaderboard


def size_vs_loss(config, trial):
    x = config["x"]
    trial.report(val_loss=(1 - x) ** 2, params=1e6 * x, latency_ms=10 * x)


@run_async
async def test_leaderboard_ranks_by_pareto_layer_shows_each_metric_and_marks_infeasible(tmp_path):
    db = tmp_path / "t.db"
    tt.tune(size_vs_loss, {"x": tt.Float(0.0, 1.0), "y": tt.Float(0.0, 1.0)}, strategy="random", trials=12,
            metric=["val_loss", "params"], direction=["minimize", "minimize"], constraints=["latency_ms <= 6"],
            db=db, session="mo", workers=0)
    session = load("mo", db)
    want = [t.number for t in session.leaderboard()]
    infeasible = {t.number for t in session.trials if 10 * t.config["x"] > 6}
    assert want and infeasible
    store = Store(db)
    app = TuituneApp(store, None, preset_files=[], bundled_presets=False, probe_devices=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the dashboard")
        board = app.screen.query_one(Leaderboard)
        await wait_for(pilot, lambda: board.row_count == 12, what="12 rows")
        assert [c.key for c in board.columns][:4] == ["rank", "trial", "val_loss", "params"]
        board._load(0, board.row_count)
        rows = [board._cells[n] for n in board.numbers]
        assert [int(r[1][0]) for r in rows[: len(want)]] == want  # the Pareto order, feasible first
        assert [r[0][0] for r in rows[: len(want)]] == [str(i + 1) for i in range(len(want))]
        marked = {int(r[1][0]) for r in rows if r[5][0] == "infeasible"}
        assert marked == infeasible
        assert all(r[0][0] == "-" for r in rows if int(r[1][0]) in infeasible)
        # The best-so-far chart's line follows the feasible trials only.
        _, ys, _, _ = app.screen.view.best_so_far()
        assert ys[-1] == min(t.value for t in session.trials if t.number not in infeasible)
        by_number = {t.number: t for t in session.trials}
        for r in rows:
            assert float(r[3][0]) == float(f"{by_number[int(r[1][0])].config['x'] * 1e6:.4g}")


@run_async
async def test_the_chart_cycle_adds_the_pareto_set(tmp_path):
    from tuitune.ui.widgets.charts import ParetoChart

    db = tmp_path / "t.db"
    tt.tune(size_vs_loss, {"x": tt.Float(0.0, 1.0), "y": tt.Float(0.0, 1.0)}, strategy="random", trials=8,
            metric=["val_loss", "params"], direction=["minimize", "minimize"], constraints=["latency_ms <= 6"],
            db=db, session="mo", workers=0)
    front = {t.number for t in load("mo", db).pareto}
    app = TuituneApp(Store(db), None, preset_files=[], bundled_presets=False, probe_devices=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="the dashboard")
        for _ in range(4):  # trial, curves, best, slice, then the Pareto set
            await pilot.press("c")
        chart = app.screen.query_one(ParetoChart)
        await wait_for(pilot, lambda: chart.display and chart.legend, what="the Pareto chart drawn")
        labels = dict(chart.legend)
        assert f"Pareto set ({len(front)})" in labels and "infeasible" in labels
        await pilot.press("c")  # and round to the first chart again
        assert app.screen.chart_index == 0


@run_async
async def test_new_session_form_shows_the_objectives_and_the_session_keeps_them(tmp_path):
    from textual.widgets import Input, Static

    from tests.support.tui import make_preset
    from tuitune.ui.screens.new_session import NewSessionScreen

    preset = make_preset(tmp_path, epochs=2)
    text = preset.read_text().replace('metric = "val_loss"\ndirection = "minimize"\n',
                                      'metric = ["val_loss", "train_loss"]\ndirection = ["minimize", "minimize"]\n'
                                      'constraints = ["val_loss <= 100"]\n')
    preset.write_text(text)
    store = Store(tmp_path / "t.db")
    app = TuituneApp(store, None, preset_files=[str(preset)], bundled_presets=False, probe_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen), what="new session screen")
        desc = str(app.screen.query_one("#preset-desc", Static).render())
        assert "val_loss (minimize), train_loss (minimize); val_loss <= 100" in desc
        app.screen.query_one("#trials", Input).value = "2"
        app.screen.query_one("#session-name", Input).value = "mo"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        await wait_for(pilot, lambda: app.run_control.session == "mo" and not app.run_control.running, what="run end")
    rec = store.session("mo")
    assert rec.options["objectives"] == [["val_loss", "minimize"], ["train_loss", "minimize"]]
    assert rec.options["constraints"] == ["val_loss <= 100"]
    assert all(t.info["objectives"]["feasible"] for t in store.trials("mo"))

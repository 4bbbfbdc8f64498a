"""The devices panel (`w` on the dashboard): every worker of the run with its device, trial, epoch and memory."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from tests.support.tui import make_preset, run_async, wait_for
from tuitune.core.store.store import Store
from tuitune.launch import new_run
from tuitune.ui.app import TuituneApp


@run_async
async def test_devices_panel_lists_each_worker_with_its_trial_and_memory(tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    for n in (0, 1):
        Path(f"{hold}-{n}").touch()  # both trials wait after their first epoch: two workers busy
    preset = make_preset(tmp_path, epochs=3, hold=hold)
    store = Store(tmp_path / "t.db")
    launch = new_run(str(preset), db=store, trials=2, session="dev", placement={"devices": "cpu", "workers": 2})
    app = TuituneApp(store, launch, bundled_presets=False, probe_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.screen.view
        await wait_for(pilot, lambda: all(n in view.live and view.live[n].last_epoch >= 1 for n in (0, 1)),
                       what="two trials in two workers")
        await pilot.press("w")
        await wait_for(pilot, lambda: app.screen.name == "devices")
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="a row per worker")
        rows = [table.get_row_at(i) for i in range(2)]
        assert sorted(r[0] for r in rows) == ["0", "1"] and {r[1] for r in rows} == {"cpu"}
        assert sorted(r[3] for r in rows) == ["0", "1"] and all(r[4] == "1/3" for r in rows)
        assert all(r[5].endswith("MiB") for r in rows)  # the worker process's resident memory
        assert all(r[6] == "-" for r in rows)  # no GPU here: the GPU columns stay empty
        for n in (0, 1):
            Path(f"{hold}-{n}").unlink()
        await pilot.press("escape")
        await wait_for(pilot, lambda: store.session("dev").state == "finished", what="the session's end")

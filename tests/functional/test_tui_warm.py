"""Warm workers in the TUI (issue 20): the new-session form starts the workers while it is open, Start hands
them to the session's Runner, and a changed choice or leaving the form leaves no worker behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from textual.widgets import Input, Select

from tests.support.tui import run_async, wait_for
from tuitune.core.records import TrialState
from tuitune.core.store.store import Store, files_dir
from tuitune.ui.app import TuituneApp
from tuitune.ui.screens.dashboard import DashboardScreen
from tuitune.ui.screens.home import HomeScreen
from tuitune.ui.screens.new_session import NewSessionScreen

SIZE = (120, 40)


def _app(store: Store) -> TuituneApp:
    return TuituneApp(store, bundled_presets=True, probe_devices=False)  # digits-mlp first, device auto: cpu here


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a closed pool reaps its workers)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _warm_dirs(store: Store) -> list[Path]:
    return sorted((files_dir(store.path) / "logs").glob(".warm-*"))


async def _form(app: TuituneApp, pilot) -> NewSessionScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen), what="new session screen")
    return app.screen  # type: ignore[return-value]


@run_async
async def test_the_form_starts_workers_and_start_hands_them_to_the_session(tmp_path):
    store = Store(tmp_path / "t.db")
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        form = await _form(app, pilot)
        form.query_one("#fuse", Select).value = "off"
        form.query_one("#trials", Input).value = "2"
        form.query_one("#max-epochs", Input).value = "1"
        form.query_one("#session-name", Input).value = "warm"
        await wait_for(pilot, lambda: form.warm._choice is not None and "'off'" in repr(form.warm._choice)
                       and form.warm.pids, what="warm workers for fuse off")
        pool, pids = form.warm._warm.pool, form.warm.pids
        assert all(_alive(p) for p in pids) and len(_warm_dirs(store)) == 1
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
        assert app.run_control.runner is not None and app.run_control.runner.pool is pool  # the very workers
        await wait_for(pilot, lambda: app.run_control.session == "warm" and not app.run_control.running,
                       what="run end")
        assert [t.state for t in store.trials("warm")] == [TrialState.COMPLETE] * 2
        log = (files_dir(store.path) / "logs" / "warm" / "worker-0.log").read_text()
        assert "--- worker ready: " in log and "--- first epoch committed: " in log  # moved, and written on
        assert _warm_dirs(store) == []
        await wait_for(pilot, lambda: not any(_alive(p) for p in pids), what="the session's end closes them")


@run_async
async def test_a_changed_choice_and_leaving_the_form_close_the_warm_workers(tmp_path):
    store = Store(tmp_path / "t.db")
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        form = await _form(app, pilot)
        await wait_for(pilot, lambda: form.warm.pids, what="warm workers")
        first = form.warm.pids
        form.query_one("#seed", Input).value = "7"  # the workers' objective is seeded: another one
        await wait_for(pilot, lambda: form.warm.pids and form.warm.pids != first, what="workers for seed 7")
        assert not any(_alive(p) for p in first)
        second = form.warm.pids
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await wait_for(pilot, lambda: not any(_alive(p) for p in second) and not _warm_dirs(store),
                       what="no warm worker left")
        assert store.sessions() == []


@run_async
async def test_quitting_with_the_form_open_leaves_no_worker(tmp_path):
    store = Store(tmp_path / "t.db")
    app = _app(store)
    async with app.run_test(size=SIZE) as pilot:
        form = await _form(app, pilot)
        await wait_for(pilot, lambda: form.warm.pids, what="warm workers")
        pids = form.warm.pids
        await pilot.press("ctrl+q")
    deadline = time.monotonic() + 60
    while (any(_alive(p) for p in pids) or _warm_dirs(store)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids) and not _warm_dirs(store)


def test_a_process_that_ends_with_warm_workers_closes_them(tmp_path):
    """The interpreter's exit (the app ended any way at all) closes warm workers still open, and removes
    their folder (multiprocessing alone would only terminate them)."""
    code = textwrap.dedent(f"""
        from tuitune.ui.warm import WarmWorkers
        w = WarmWorkers()
        w.want(dict(preset_ref="digits-mlp", db={str(tmp_path / "a.db")!r}, placement={{"devices": "cpu"}}))
        print(*w.pids)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert pids
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)
    assert list((files_dir(tmp_path / "a.db") / "logs").iterdir()) == []


@run_async
async def test_no_warm_workers_while_a_session_runs_in_the_app(tmp_path):
    """A session running in this app keeps its device: the form does not start workers beside it."""
    from tests.support.tui import make_preset
    from tuitune.launch import new_run

    hold = tmp_path / "hold"
    Path(f"{hold}-0").touch()  # trial 0 waits after its first epoch until the test lets it go
    preset = make_preset(tmp_path, epochs=2, hold=hold)
    store = Store(tmp_path / "t.db")
    app = TuituneApp(store, new_run(str(preset), db=store, trials=1, session="busy"), bundled_presets=True,
                     probe_devices=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: store.session_exists("busy") and store.count_epochs("busy") >= 1,
                       what="the running session's first epoch")
        app.open_new_session()
        await wait_for(pilot, lambda: isinstance(app.screen, NewSessionScreen), what="new session screen")
        form = app.screen
        await wait_for(pilot, lambda: form.is_mounted and len(form.query("#preset-list")) == 1, what="the form")
        assert app.run_control.running
        form._warm_now()  # what the form's timer calls once its choice has held
        assert [w for w in app.workers if w.group == "warm"] == [] and form.warm.pids == []
        Path(f"{hold}-0").unlink()
        await wait_for(pilot, lambda: not app.run_control.running, what="the session's end")
        form._warm_now()  # the device is free again
        await wait_for(pilot, lambda: form.warm.pids, what="warm workers once it ended")
        await pilot.press("escape")

"""Regenerates screenshots/*.svg from the real app in the middle of a real session.

    python scripts/make_screenshots.py [--preset digits-mlp] [--out screenshots] [--sizes 120x40,80x24]

It trains a short random-search session of the preset in a temporary database, pauses it mid-trial,
and saves the dashboard (trial chart and all learning curves), a trial's detail, the keys (?), three
trials compared, parameter importance, manual mode after one manual run (and its effect as curves),
the home screen and the new-session screen. The 120x40 files are named
``<screen>.svg``, other sizes ``<screen>-<W>x<H>.svg``. View them as PNG with
``rsvg-convert screenshots/dashboard.svg -o /tmp/dashboard.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


async def _wait(pilot: Any, cond: Any, timeout: float = 300.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"make_screenshots: timed out waiting for {what}")
        await pilot.pause(0.1)


async def shoot(preset: str, out: Path, size: tuple[int, int], trials: int) -> list[Path]:
    from tuitune.core.store.store import Store
    from tuitune.launch import new_run
    from tuitune.ui.app import TuituneApp
    from tuitune.ui.screens.dashboard import DashboardScreen
    from tuitune.ui.screens.home import HomeScreen
    from tuitune.ui.screens.manual import ManualScreen
    from tuitune.ui.screens.new_session import NewSessionScreen
    from tuitune.ui.screens.trial_detail import TrialDetailScreen

    suffix = "" if size == (120, 40) else f"-{size[0]}x{size[1]}"
    written: list[Path] = []
    tmp = Path(tempfile.mkdtemp(prefix="tuitune-shots-"))
    store = Store(tmp / "tuitune.db")
    launch = new_run(preset, db=store, strategy="random", trials=trials, seed=3, session="swift-otter-42")
    app = TuituneApp(store, launch)

    def save(name: str) -> None:
        path = out / f"{name}{suffix}.svg"
        path.write_text(app.export_screenshot(), encoding="utf-8")
        written.append(path)

    async with app.run_test(size=size) as pilot:
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        view = dash.view

        def mid_session() -> bool:
            cur = view.trials.get(view.current) if view.current is not None else None
            return view.n_done() >= min(4, trials - 1) and cur is not None and cur.last_epoch >= max(1, cur.budget // 2)

        await _wait(pilot, mid_session, what="the middle of the session")
        await pilot.press("p")
        await _wait(pilot, lambda: dash.paused, what="the pause")
        await pilot.pause(0.6)
        save("dashboard")
        await pilot.press("c")
        await pilot.pause(0.4)
        save("dashboard-curves")
        await pilot.press("c", "c")
        await pilot.pause(0.4)
        save("dashboard-slice")
        await pilot.press("c")  # back to the trial chart
        dash.query_one("#board").move_cursor(row=0)
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, TrialDetailScreen), what="the trial detail")
        await pilot.pause(0.4)
        save("trial-detail")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause(0.4)
        save("help")
        await pilot.press("escape")
        dash.query_one("#board").move_cursor(row=0)
        await pilot.press("space", "space", "space", "v")
        await _wait(pilot, lambda: app.screen.name == "compare", what="the compare screen")
        await pilot.pause(0.4)
        save("compare")
        await pilot.press("escape", "i")
        await _wait(pilot, lambda: app.screen.name == "importance" and app.screen.shares, what="importance")
        await pilot.pause(0.4)
        save("importance")
        await pilot.press("escape")

        # Stop the session (the trial is interrupted, resumable), then one manual change from the best.
        app.run_control.stop("stopped for the screenshots")
        await _wait(pilot, lambda: not app.run_control.running, what="the stop")
        dash.query_one("#board").move_cursor(row=0)
        await pilot.press("m")
        await _wait(pilot, lambda: isinstance(app.screen, ManualScreen), what="manual mode")
        manual = app.screen
        lr_row = manual.params.index("lr") if "lr" in manual.params else 0
        manual.query_one("#manual-params").move_cursor(row=lr_row)
        await pilot.press("asterisk")  # lr x10
        before = len(store.trials("swift-otter-42", with_epochs=False))
        await pilot.press("r")

        def manual_done() -> bool:  # a run this short may start and end between two polls
            trials = store.trials("swift-otter-42", with_epochs=False)
            return (
                len(trials) > before
                and trials[-1].state.is_finished()
                and not app.run_control.running
                and manual.running_trial is None
            )

        await _wait(pilot, manual_done, what="the manual run and its end")
        await pilot.press("b")  # the new trial becomes the base
        await pilot.press("slash")  # and the next change (lr /10) waits to be run
        await pilot.pause(0.4)
        save("manual")
        await pilot.press("g")
        await pilot.pause(0.4)
        save("manual-curves")
        await pilot.press("g")
        await pilot.press("escape", "escape")
        await _wait(pilot, lambda: isinstance(app.screen, HomeScreen), what="home")
        await pilot.pause(0.3)
        save("home")
        await pilot.press("n")
        await _wait(pilot, lambda: isinstance(app.screen, NewSessionScreen), what="the new-session screen")
        await pilot.pause(1.0)
        save("new-session")
        await pilot.press("escape")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="digits-mlp")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "screenshots"))
    p.add_argument("--sizes", default="120x40,80x24")
    p.add_argument("--trials", type=int, default=8)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for s in args.sizes.split(","):
        w, h = (int(x) for x in s.lower().split("x"))
        for path in asyncio.run(shoot(args.preset, out, (w, h), args.trials)):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

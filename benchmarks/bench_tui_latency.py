"""How fast the TUI answers keys while a trial trains (the issue's bar: within 100 ms).

Runs the real app headless (Textual's Pilot, 120x40) on a live ``digits-mlp`` session and times two
keys while epochs stream in, from the key press until its action has finished on the UI thread:
``p`` (pause/resume the runner) and ``o`` (re-sort the leaderboard, rebuilding its rows). The runner
trains on its own thread throughout; its epoch messages flow to the UI at the same time.

    python benchmarks/bench_tui_latency.py --presses 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from tuitune.launch import new_run
from tuitune.ui.app import TuituneApp
from tuitune.ui.widgets.leaderboard import Leaderboard


async def measure(presses: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        launch = new_run("digits-mlp", strategy="random", trials=200, db=Path(tmp) / "lat.db", session="lat")
        app = TuituneApp(launch.store, launch, probe_devices=False)
        out: dict[str, list[float]] = {"p: key -> pause/resume done": [], "o: key -> leaderboard re-sorted": []}
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 120
            while len(launch.store.trials("lat", with_epochs=False)) < 3:  # trials finished, epochs flowing
                await asyncio.sleep(0.05)
                assert time.monotonic() < deadline, "the session did not start"
            runner = app.run_control.runner
            assert runner is not None
            done: list[float] = []

            def timed(fn):  # when the key's action has finished, on the UI thread
                def wrapper(*a, **k):
                    r = fn(*a, **k)
                    done.append(time.perf_counter())
                    return r

                return wrapper

            app.run_control.toggle_pause = timed(app.run_control.toggle_pause)
            board = app.screen.query_one(Leaderboard)
            board.cycle_sort = timed(board.cycle_sort)
            for _ in range(presses):
                for key, name in (("p", "p: key -> pause/resume done"), ("o", "o: key -> leaderboard re-sorted")):
                    n = len(done)
                    t0 = time.perf_counter()
                    await pilot.press(key)  # posts the key; returns when the app has processed it
                    while len(done) == n:
                        await asyncio.sleep(0.0005)
                    out[name].append(done[-1] - t0)
                    if runner.paused:  # keep training between measurements
                        runner.resume()
                    await asyncio.sleep(0.25)
            runner.stop("benchmark over")
            await pilot.pause()
        app.run_control.stop_and_join()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presses", type=int, default=20)
    args = ap.parse_args(argv)
    res = asyncio.run(measure(args.presses))
    print("bench_tui_latency: key to effect while a digits-mlp session trains (Textual Pilot, 120x40)")
    print(f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.presses} presses of each key")
    print()
    print("| key | median ms | p90 ms | max ms | within 100 ms |")
    print("|---|---:|---:|---:|---:|")
    for k, v in res.items():
        v = sorted(v)
        p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
        ok = sum(x <= 0.1 for x in v)
        print(f"| {k} | {1000 * statistics.median(v):.1f} | {1000 * p90:.1f} | {1000 * v[-1]:.1f} | {ok}/{len(v)} |")


if __name__ == "__main__":
    main()

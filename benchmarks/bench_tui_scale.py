"""How the dashboard scales: a 10-trial and a 10,000-trial session, side by side.

For each size it writes a session of finished trials straight into a fresh database
(``Store.add_trials``: 4 epochs each, a few pruned and failed), then runs the real app headless
(Textual's Pilot, 120x40) and times:

* **open**: from enter on the home screen until the dashboard's first frame draws its leaderboard
  rows (the rows are read from ``render_line``, as the frame is composed);
* **background read**: until the in-memory sort keys and training times are read (a thread, started
  after the first frame);
* **sort**: each press of ``o`` until the leaderboard has re-sorted (its order read, its rows
  forgotten: the visible ones are read as they are drawn), through every key;
* **keys while training**: the session is resumed with the bundled ``digits-mlp`` preset, and while
  its trial trains, ``o``, ``down`` and ``pagedown`` are timed from the press until their action has
  finished on the UI thread (as ``bench_tui_latency.py`` does).

It prints both sizes and the ratio 10,000 / 10. The issue's bar: open within 2x (and under 1 s), every
key within 100 ms.

    python benchmarks/bench_tui_scale.py [--presses 10] [--big 10000] [--repeats 3]

A first, unmeasured open pays the one-time costs (imports, CSS); the opens of both sizes then
alternate, so that a load spike on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.store import Store
from tuitune.ui.app import TuituneApp
from tuitune.ui.widgets.leaderboard import Leaderboard

SIZE = (120, 40)


def fill(store: Store, name: str, n: int, epochs: int = 4) -> None:
    """``n`` finished trials of the digits-mlp space's shape, written in one transaction."""
    rnd = random.Random(0)
    t0 = time.time() - 2 * n
    recs = []
    for i in range(n):
        lr = 10 ** rnd.uniform(-5, -1)
        hidden = rnd.choice([32, 64, 128, 256])
        state = TrialState.COMPLETE if i % 10 else (TrialState.PRUNED if i % 20 else TrialState.FAILED)
        k = epochs if state == TrialState.COMPLETE else 2
        eps = tuple(
            {
                "epoch": e,
                "train_loss": 1 / e,
                "val_loss": abs(math.log10(lr) + 2.5) / 3 + 6.4 / hidden + 1 / e + rnd.random() * 0.05,
                "val_acc": 0.9 + rnd.random() * 0.05,
                "epoch_seconds": 0.5,
                "time": t0 + 2 * i + 0.5 * e,
            }
            for e in range(1, k + 1)
        )
        recs.append(
            TrialRecord(
                number=i,
                state=state,
                config={"lr": lr, "hidden": hidden},
                value=min(e["val_loss"] for e in eps) if state == TrialState.COMPLETE else None,
                budget=epochs,
                epochs=eps,
                reason=None if state == TrialState.COMPLETE else "a benchmark trial",
                started=t0 + 2 * i,
                finished=t0 + 2 * i + 2,
            )
        )
    store.add_trials(name, recs)


async def until(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.0005)


async def open_and_sort(db: Path, name: str, presses: int) -> tuple[float, float, list[float]]:
    app = TuituneApp(Store(db), probe_devices=False, bundled_presets=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        drawn: list[float] = []
        load = Leaderboard._load

        def noted(self: Leaderboard, first: int, last: int) -> None:
            # The rows are read and formatted from render_line, while the first frame is composed.
            load(self, first, last)
            if self._cells and not drawn:
                drawn.append(time.perf_counter())

        Leaderboard._load = noted  # type: ignore[method-assign]
        try:
            t0 = time.perf_counter()
            await pilot.press("enter")
            await until(lambda: bool(drawn))
        finally:
            Leaderboard._load = load  # type: ignore[method-assign]
        opened = drawn[0] - t0
        board = app.screen.query_one(Leaderboard)
        await until(lambda: app.screen.view.arrays is not None)  # sort keys and training times read
        loaded = time.perf_counter() - t0
        done = timed(board)
        sorts = []
        for _ in range(presses):
            sorts.append(await press(pilot, "o", done))
        assert board.row_count > 0
    return opened, loaded, sorts


def timed(board: Leaderboard) -> list[float]:
    """Wraps the leaderboard's sort and cursor moves to note when each has finished on the UI thread."""
    done: list[float] = []

    def wrap(fn):
        def wrapper(*a, **k):
            r = fn(*a, **k)
            done.append(time.perf_counter())
            return r

        return wrapper

    board.cycle_sort = wrap(board.cycle_sort)
    board._move = wrap(board._move)
    return done


async def press(pilot, key: str, done: list[float]) -> float:
    """Seconds from the key press (Pilot posts the key event) until its action has finished."""
    n = len(done)
    t0 = time.perf_counter()
    await pilot.press(key)
    await until(lambda: len(done) > n)
    return done[n] - t0


async def keys_while_training(db: Path, name: str, presses: int) -> dict[str, list[float]]:
    from tuitune.launch import resume_run

    launch = resume_run(name, db=db)
    app = TuituneApp(launch.store, launch, probe_devices=False, bundled_presets=False)
    out: dict[str, list[float]] = {"o": [], "down": [], "pagedown": []}
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await until(lambda: screen.view.current is not None, timeout=120)
        done = timed(screen.query_one(Leaderboard))
        for _ in range(presses):
            for key in out:
                out[key].append(await press(pilot, key, done))
                await asyncio.sleep(0.1)
        app.run_control.stop("benchmark over")
        await pilot.pause()
    app.run_control.stop_and_join()
    return out


def build(folder: Path, n: int) -> tuple[Path, str]:
    from tuitune.launch import new_run

    db = folder / f"s{n}.db"
    # A real session of the bundled preset (so it can be resumed), its trials written directly.
    launch = new_run("digits-mlp", strategy="random", trials=n + 50, db=db, session=f"s{n}")
    fill(launch.store, f"s{n}", n)
    launch.store.update_session(f"s{n}", state="stopped")
    launch.store.close()
    return db, f"s{n}"


def ms(v: list[float]) -> str:
    v = sorted(v)
    return f"{statistics.median(v) * 1000:.0f} / {v[-1] * 1000:.0f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presses", type=int, default=10)
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--big", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3, help="opens of each size (the median is shown)")
    args = ap.parse_args(argv)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {}
        for n in (args.small, args.big):
            t0 = time.perf_counter()
            dbs[n] = build(Path(tmp), n)
            res[n] = [time.perf_counter() - t0, [], [], {}, []]  # built, opens, sorts, keys while training, loads
        asyncio.run(open_and_sort(*dbs[args.small], 1))  # warm-up: imports and CSS are paid once, by nobody
        for _ in range(args.repeats):  # interleaved, so that a load spike hits both sizes alike
            for n in (args.small, args.big):
                opened, loaded, sorts = asyncio.run(open_and_sort(*dbs[n], args.presses))
                res[n][1].append(opened)
                res[n][2].extend(sorts)
                res[n][4].append(loaded)
        for n in (args.small, args.big):
            res[n][3] = asyncio.run(keys_while_training(*dbs[n], args.presses))
        for n in res:
            res[n][1] = statistics.median(res[n][1])
            res[n][4] = statistics.median(res[n][4])
    small, big = res[args.small], res[args.big]
    print(f"bench_tui_scale: the dashboard of a {args.small}- and a {args.big:,}-trial session (Textual Pilot, 120x40)")
    print(f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.presses} presses of each key")
    print()
    print(f"| measure | {args.small} trials | {args.big:,} trials | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| database written (s) | {small[0]:.2f} | {big[0]:.2f} | |")
    print(f"| open: enter to the first frame's rows, median of {args.repeats} (ms) | {small[1] * 1000:.0f} | {big[1] * 1000:.0f} | {big[1] / small[1]:.2f} |")
    print(
        f"| background read of sort keys and training times done, from enter (ms) | {small[4] * 1000:.0f} | "
        f"{big[4] * 1000:.0f} | {big[4] / small[4]:.2f} |"
    )
    ratio = statistics.median(big[2]) / statistics.median(small[2])
    print(f"| o (sort), idle: median / max ms | {ms(small[2])} | {ms(big[2])} | {ratio:.2f} |")
    for key in small[3]:
        ratio = statistics.median(big[3][key]) / statistics.median(small[3][key])
        print(f"| {key} while a trial trains: median / max ms | {ms(small[3][key])} | {ms(big[3][key])} | {ratio:.2f} |")
    within = sum(x <= 0.1 for v in (big[2], *big[3].values()) for x in v)
    total = sum(len(v) for v in (big[2], *big[3].values()))
    print()
    print(f"{args.big:,} trials: {within}/{total} key presses answered within 100 ms")


if __name__ == "__main__":
    main()

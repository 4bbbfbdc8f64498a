"""Training speed in the TUI against headless: the same trials, interleaved, summed epoch times side by side.

Each repetition runs the same session (a preset, the random strategy, the same seed, so the very same
trials and steps) three ways, in turn:

- ``headless``: ``tuitune run --headless``'s path (the Runner on the main thread, a progress display), the
  objective in one worker process;
- ``TUI``: the Textual app driving the same launch under Pilot (the app renders its dashboard, charts and
  leaderboard all along), the objective in one worker process;
- ``TUI, in-process``: the TUI with ``--in-process`` (the objective in the app's own process, as before
  worker processes existed), for the before/after.

What is compared is the trainer's own time per epoch (``epoch_seconds``, summed over the session):
what the user waits for, without the start-up. The medians over repetitions and their ratios are printed.

    python benchmarks/bench_tui_training.py --preset digits-mlp --trials 4 --reps 3
    python benchmarks/bench_tui_training.py --device cuda      # on a GPU server (gpu_suite.sh runs this)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuitune.launch import new_run  # noqa: E402


def _launch(args: argparse.Namespace, workers: int, tag: str) -> Any:
    db = Path(tempfile.mkdtemp(prefix=f"tt-{tag}-")) / "b.db"
    return new_run(args.preset, strategy="random", trials=args.trials, max_epochs=args.epochs, seed=0,
                   session="bench", db=db, placement={"devices": args.device, "workers": workers})


def _epoch_seconds(launch: Any) -> tuple[float, int]:
    trials = launch.store.trials("bench")
    secs = [float(e.get("epoch_seconds", 0.0)) for t in trials for e in t.epochs]
    return sum(secs), len(secs)


def headless(args: argparse.Namespace) -> tuple[float, float]:
    from rich.console import Console

    from tuitune.headless import HeadlessDisplay

    launch = _launch(args, 1, "h")
    display = HeadlessDisplay(launch.record, console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    t0 = time.perf_counter()
    launch.runner([display]).run()
    wall = time.perf_counter() - t0
    display.stop()
    return _epoch_seconds(launch)[0], wall


def tui(args: argparse.Namespace, workers: int) -> tuple[float, float]:
    from tuitune.ui.app import TuituneApp

    launch = _launch(args, workers, "t")
    app = TuituneApp(launch.store, launch, bundled_presets=False, probe_devices=False)

    async def go() -> float:
        async with app.run_test(size=(120, 40)) as pilot:
            t0 = time.perf_counter()
            while launch.store.session("bench").state not in ("finished", "failed", "stopped"):
                await pilot.pause(0.1)
            return time.perf_counter() - t0

    wall = asyncio.run(go())
    return _epoch_seconds(launch)[0], wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ways", default="", help="a subset of headless,tui,in-process (default: all three)")
    ap.add_argument("--device", default="cpu", help="where the trials train: cpu (default), cuda, cuda:1, ...")
    args = ap.parse_args(argv)
    os.environ.setdefault("TUITUNE_DB", str(Path(tempfile.mkdtemp()) / "unused.db"))
    ways = {
        "headless": lambda: headless(args),
        "TUI": lambda: tui(args, 1),
        "TUI, in-process": lambda: tui(args, 0),
    }
    if args.ways:
        chosen = {{"headless": "headless", "tui": "TUI", "in-process": "TUI, in-process"}[w] for w in args.ways.split(",")}
        ways = {k: v for k, v in ways.items() if k in chosen}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in ways}
    for rep in range(args.reps):
        for name, fn in ways.items():
            results[name].append(fn())
            print(f"rep {rep + 1} {name}: training {results[name][-1][0]:.2f} s, wall {results[name][-1][1]:.2f} s",
                  file=sys.stderr)
    print(f"## Training time in the TUI against headless ({args.preset}, {args.trials} trials x {args.epochs} epochs, "
          f"{args.reps} interleaved repetitions, device {args.device})\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the end; Python {platform.python_version()}.\n")
    print("| path | training s (median of summed epoch_seconds) | wall s (median) | training vs headless |")
    print("|---|---|---|---|")
    base = statistics.median(r[0] for r in results["headless"])
    for name, rows in results.items():
        train = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        print(f"| {name} | {train:.2f} | {wall:.2f} | {train / base:.3f}x |")
    print()


if __name__ == "__main__":
    main()

"""Several workers against one: the same sleep-bound trials, side by side, wall time and its ratio.

A sleep-bound objective (each epoch sleeps, as an epoch waiting on a GPU or on I/O would) is run by the
random strategy with 1 worker, then with 2 (and 4), interleaved over repetitions. Reported per run:
the trials' span (the first trial's start to the last one's end, from the trials' stored times) and the
whole wall time including the workers' start-up. The goal of the worker issue: 2 workers finish the
trials in at most 0.6x the time of 1, on this 2-core machine.

    python benchmarks/bench_parallel.py --trials 8 --epochs 5 --sleep 0.2 --reps 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _sleepy import sleepy  # noqa: E402  (importable by the workers: benchmarks/ is on their sys.path)

import tuitune as tt  # noqa: E402


def run(workers: int, args: argparse.Namespace) -> tuple[float, float]:
    os.environ["TT_SLEEP"] = str(args.sleep)
    db = Path(tempfile.mkdtemp(prefix="tt-par-")) / "p.db"
    t0 = time.perf_counter()
    s = tt.tune(sleepy, tt.Space(x=tt.Float(0.0, 1.0)), trials=args.trials, max_epochs=args.epochs, db=db,
                session="p", devices="cpu", workers=workers)
    wall = time.perf_counter() - t0
    trials = s.trials
    assert all(t.state.value == "complete" for t in trials), [t.state for t in trials]
    span = max(t.finished or 0 for t in trials) - min(t.started or 0 for t in trials)
    return span, wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--sleep", type=float, default=0.2, help="seconds per epoch")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",")]
    rows: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    for _ in range(args.reps):
        for n in counts:
            rows[n].append(run(n, args))
    print(f"## Sleep-bound trials on several workers ({args.trials} trials x {args.epochs} epochs x {args.sleep} s, "
          f"{args.reps} interleaved repetitions, medians)\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end.\n")
    print("| workers | trials' span s | vs 1 worker | wall s with start-up | vs 1 worker |")
    print("|---|---|---|---|---|")
    base_span = statistics.median(r[0] for r in rows[counts[0]])
    base_wall = statistics.median(r[1] for r in rows[counts[0]])
    for n in counts:
        span = statistics.median(r[0] for r in rows[n])
        wall = statistics.median(r[1] for r in rows[n])
        print(f"| {n} | {span:.2f} | {span / base_span:.2f}x | {wall:.2f} | {wall / base_wall:.2f}x |")
    print()


if __name__ == "__main__":
    main()

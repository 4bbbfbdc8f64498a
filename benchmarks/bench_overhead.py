"""What tuitune adds around training: a real session against the bare objective, side by side.

Three ways of running the same trainer trial (a preset's default config, its full epoch budget):

- ``bare``: the objective with an in-memory trial that stores nothing (no SQLite, no events, no checkpoint);
- ``bare + checkpoints``: the same, writing each epoch's checkpoint to disk as the engine does
  (torch.save to a temp file, fsync, rename);
- ``session``: a real session through the Runner: an SQLite commit per epoch row (WAL, synchronous=FULL),
  events to a listener, checkpoints, trial rows, provenance.

The three are interleaved, repetition by repetition, so load on a shared machine hits them alike;
the medians and their ratio are printed.

    python benchmarks/bench_overhead.py --preset digits-mlp --reps 7
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from tuitune.core.run.runner import Runner
from tuitune.core.run.trial import save_checkpoint
from tuitune.core.search.strategies import make_strategy
from tuitune.core.store.store import Store
from tuitune.training.loop import make_objective
from tuitune.training.presets import load_preset


class BareTrial:
    """The Trial contract with nothing stored (optionally checkpoints written like the engine's)."""

    def __init__(self, number: int, config: dict[str, Any], budget: int, ckpt: Path | None = None) -> None:
        # The session's trial i is seeded from (seed, i): the bare runs take the same numbers, so all
        # three train the very same steps (early stopping included).
        self.number, self.config, self.budget, self.info = number, dict(config), budget, {}
        self._ckpt, self._epoch = ckpt, 0

    def epochs(self) -> Iterator[int]:
        for e in range(1, self.budget + 1):
            self._epoch = e
            yield e

    def report(self, **metrics: Any) -> None:
        pass

    def checkpoint(self, state: dict[str, Any]) -> None:
        if self._ckpt is not None:
            save_checkpoint(self._ckpt, self._epoch, state)

    def restore(self) -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits-mlp")
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions of each block")
    ap.add_argument("--trials", type=int, default=4, help="trials per block (one Runner.run for the session)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    preset = load_preset(args.preset)
    objective = make_objective(preset, device=args.device, seed=0)
    config, epochs = dict(preset.defaults), preset.max_epochs
    objective(config, BareTrial(0, config, 1))  # the dataset is loaded once per process: not timed
    events = []
    times: dict[str, list[float]] = {"bare": [], "bare + checkpoints": [], "session": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = Store(db)
        space = preset.space
        store.create_session(
            "bench", strategy="manual", options={"base": "defaults"}, space=space.to_dict(), metric=preset.metric,
            direction=preset.direction, seed=0, max_epochs=epochs, n_trials=None, defaults=config,
        )
        k = args.trials
        for r in range(args.reps):
            numbers = range(r * k, (r + 1) * k)  # the numbers the session's trials of this block get
            t0 = time.perf_counter()
            for i in numbers:
                objective(config, BareTrial(i, config, epochs))
            times["bare"].append((time.perf_counter() - t0) / k)

            t0 = time.perf_counter()
            for i in numbers:
                objective(config, BareTrial(i, config, epochs, Path(tmp) / "ckpt" / "0.pt"))
            times["bare + checkpoints"].append((time.perf_counter() - t0) / k)

            strat = make_strategy(
                "manual", space, max_epochs=epochs, metric=preset.metric, direction=preset.direction,
                defaults=config, changes=[{}] * k,
            )
            t0 = time.perf_counter()
            Runner(store, "bench", objective, strat, listeners=[events.append]).run()
            times["session"].append((time.perf_counter() - t0) / k)
        trials = store.trials("bench")
        assert len(trials) == args.reps * k and all(t.last_epoch >= 1 for t in trials)
        n_epochs = [t.last_epoch for t in trials]
    med = {k: statistics.median(v) for k, v in times.items()}
    ep = statistics.median(n_epochs)
    print("bench_overhead: what a real session adds around the same training")
    print(
        f"  preset {preset.name} (default config, up to {epochs} epochs; early stopping may end sooner: median "
        f"{ep:g} epochs), device {args.device}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{args.reps} interleaved repetitions of blocks of {args.trials} trials (the session's block is one "
        "Runner.run, its start-up included); median time per trial"
    )
    print()
    print("| run | trial (s) | vs bare |")
    print("|---|---:|---:|")
    for k, v in med.items():
        print(f"| {k} | {v:.3f} | {100 * (v / med['bare'] - 1):+.1f}% |")
    store_events = med["session"] - med["bare + checkpoints"]
    print()
    print(
        f"SQLite rows, commits and events: {1000 * store_events / ep:+.1f} ms per epoch "
        f"({100 * store_events / med['session']:+.1f}% of the session's trial time); "
        f"checkpoints: {1000 * (med['bare + checkpoints'] - med['bare']) / ep:+.1f} ms per epoch; "
        f"everything: {100 * (med['session'] / med['bare'] - 1):+.1f}% (goal: <= 5%)"
    )


if __name__ == "__main__":
    main()

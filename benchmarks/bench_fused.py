"""Benchmarks fused trial arrays against the same trials one after another, in one process, side by side.

The same N ``digits-mlp`` configs that share an architecture (the preset's defaults: 1 x 128 units,
batch 32, dropout on) and differ in optimizer, learning rate, momentum / beta1, weight decay, dropout
rate, schedule and init, each with its own seed. Each round times both ways in alternating order
(fused then solo, solo then fused, ...) so a change in the machine's load hits both; trials run to
their budget through ``tuitune.testing.FakeTrial`` (no store: only the training is timed; each epoch's
checkpoint serialised once, as the engine does), with the built-in trainer's usual thread choice for each
path, and the long-lived heap frozen (``gc.freeze``) as ``Runner.run`` does. Prints trials/hour of each way per round, the
median ratio, the same ratio for the time inside epochs only (training and validation, without each
trial's set-up: building, seeding, freeing memory), and the load average before and after.

    python benchmarks/bench_fused.py                 # 16 configs, 10 epochs, 3 rounds, CPU
    python benchmarks/bench_fused.py --members 8 --epochs 5 --rounds 2
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuitune.testing import FakeTrial  # noqa: E402
from tuitune.training.fusing import fuse_key  # noqa: E402
from tuitune.training.loop import make_objective  # noqa: E402
from tuitune.training.presets import load_preset  # noqa: E402


def configs(preset: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """N configs of one architecture: the searched per-member hyperparameters drawn at random."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        opt = str(rng.choice(["sgd", "adam", "adamw", "rmsprop"]))
        lr = float(np.exp(rng.uniform(np.log(1e-3 if opt != "sgd" else 1e-2), np.log(3e-2 if opt == "sgd" else 3e-3))))
        c = {
            **preset.defaults,
            "optimizer": opt,
            "lr": lr,
            "momentum": float(rng.uniform(0.5, 0.95)),
            "beta1": float(rng.uniform(0.8, 0.95)),
            "weight_decay": float(np.exp(rng.uniform(np.log(1e-6), np.log(1e-3)))),
            "dropout": float(rng.uniform(0.05, 0.4)),
            "schedule": str(rng.choice(["constant", "step", "exponential", "cosine"])),
            "init": str(rng.choice(["default", "xavier_uniform", "kaiming_normal", "orthogonal"])),
            "patience": 0,
        }
        out.append(c)
    assert len({fuse_key(preset, c) for c in out}) == 1
    return out


class BenchTrial(FakeTrial):
    """FakeTrial whose checkpoint costs what the engine's does (one ``torch.save``), without FakeTrial's
    check that reads each one back."""

    def checkpoint(self, state: dict[str, Any]) -> None:
        buf = io.BytesIO()
        torch.save({"epoch": self._epoch, "state": state}, buf)
        self.saved = buf.getvalue()
        self.saved_epoch = self._epoch
        self.checkpoints += 1


def run_solo(obj: Any, cfgs: list[dict[str, Any]], epochs: int) -> tuple[float, int, float]:
    """Wall seconds, epoch rows, and the seconds inside epochs (training + validation, set-up excluded)."""
    t0 = time.perf_counter()
    rows, inside = 0, 0.0
    for n, c in enumerate(cfgs):
        t = BenchTrial(n, c, epochs)
        obj(c, t)
        rows += len(t.rows)
        inside += sum(r["epoch_seconds"] for r in t.rows)
    return time.perf_counter() - t0, rows, inside


def run_fused(obj: Any, cfgs: list[dict[str, Any]], epochs: int) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    trials = [BenchTrial(n, c, epochs) for n, c in enumerate(cfgs)]
    results = obj.train_array(cfgs, trials)
    bad = [r for r in results if r is not None]
    if bad:
        raise SystemExit(f"a member failed: {bad[0]!r}")
    # every member reports the array's epoch time: count each array epoch once
    inside = sum(r["epoch_seconds"] for r in trials[0].rows)
    return time.perf_counter() - t0, sum(len(t.rows) for t in trials), inside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    preset = load_preset("digits-mlp")
    obj = make_objective(preset, device=args.device, seed=args.seed)
    cfgs = configs(preset, args.members, args.seed)
    run_fused(obj, cfgs[:2], 1)  # warm-up: the dataset loaded, the kernels touched
    run_solo(obj, cfgs[:1], 1)
    gc.freeze()  # as Runner.run does: the per-trial gc.collect then skips the long-lived heap
    load0 = os.getloadavg()
    print(
        f"digits-mlp, {args.members} configs x {args.epochs} epochs, device {args.device}, torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load0[0]:.2f}"
    )
    print(
        f"{'round':>5} {'order':>12} {'fused s':>8} {'solo s':>8} {'fused trials/h':>15} {'solo trials/h':>14} "
        f"{'ratio':>6} {'in epochs: fused s':>19} {'solo s':>7} {'ratio':>6}"
    )
    ratios, inner = [], []
    for r in range(args.rounds):
        order = ("fused", "solo") if r % 2 == 0 else ("solo", "fused")
        got: dict[str, float] = {}
        ins: dict[str, float] = {}
        for way in order:
            secs, rows, inside = (run_fused if way == "fused" else run_solo)(obj, cfgs, args.epochs)
            assert rows == args.members * args.epochs, rows
            got[way], ins[way] = secs, inside
        ratio = got["solo"] / got["fused"]
        ratios.append(ratio)
        inner.append(ins["solo"] / ins["fused"])
        print(
            f"{r + 1:>5} {'-'.join(order):>12} {got['fused']:>8.2f} {got['solo']:>8.2f} "
            f"{args.members * 3600 / got['fused']:>15.0f} {args.members * 3600 / got['solo']:>14.0f} {ratio:>5.2f}x "
            f"{ins['fused']:>19.2f} {ins['solo']:>7.2f} {inner[-1]:>5.2f}x"
        )
    load1 = os.getloadavg()
    print(
        f"median ratio {statistics.median(ratios):.2f}x wall, {statistics.median(inner):.2f}x inside epochs "
        f"(fused over solo); load average {load0[0]:.2f} -> {load1[0]:.2f}"
    )


if __name__ == "__main__":
    main()

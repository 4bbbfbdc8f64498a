"""Benchmarks the trainer's step modes (TUITUNE_STEP, issue 20 item 4) side by side in one process.

For each preset, each mode (eager, compile, and graph on CUDA) and each shape (one trial; a fused array of
``--fuse`` members), the built-in objective trains the same configs (one seed, the architecture at the
preset's defaults) for ``--epochs`` epochs. It prints the first epoch's seconds (a compiled mode compiles
then; inductor's on-disk cache, warm after the first run of this script, shortens it) and the steady cost:
the median of the later epochs' seconds (training and validation, as the trial reports them) divided by the
epoch's training steps, in ms per step and per member-step. The modes run one after another in this process
(the order eager, compile, graph) on one warm device.

    python benchmarks/bench_step.py --device cpu                    # digits-mlp, ~2 min on a busy CPU
    python benchmarks/bench_step.py --device cuda --presets digits-mlp,mnist-mlp
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_fused_arrays import configs, generated  # noqa: E402

from tuitune.testing import FakeTrial  # noqa: E402
from tuitune.training import data as D  # noqa: E402
from tuitune.training.loop import make_objective  # noqa: E402
from tuitune.training.presets import load_preset  # noqa: E402


def _load(preset: Any, tmp: Path, device: torch.device, images: int) -> Any:
    if preset.data["dataset"] == "digits":
        return D.load_data(preset.data, device=device)
    x, y = generated(preset.data["dataset"], images)
    real = D._load_torchvision
    D._load_torchvision = lambda n, root, download: (x, y)  # generated data of the real shapes
    try:
        return D.load_data(preset.data, data_dir=tmp / preset.name, device=device)
    finally:
        D._load_torchvision = real


def measure(name: str, mode: str, fuse: int, args: argparse.Namespace, device: torch.device, tmp: Path) -> dict[str, Any]:
    os.environ["TUITUNE_STEP"] = mode
    preset = load_preset(name)
    data = _load(preset, tmp, device, args.images)
    cfgs = configs(preset, fuse, args.seed)
    obj = make_objective(preset, device=str(device), data_dir=str(tmp / name), seed=0)
    trials = [FakeTrial(n, c, args.epochs) for n, c in enumerate(cfgs)]
    t0 = time.perf_counter()
    if fuse == 1:
        obj(cfgs[0], trials[0])
    else:
        obj.train_array(cfgs, trials)
    wall = time.perf_counter() - t0
    secs = [r["epoch_seconds"] for r in trials[0].rows]
    steps = math.ceil(data.n_train(float(cfgs[0]["train_fraction"])) / int(cfgs[0]["batch_size"]))
    steady = statistics.median(secs[1:]) if len(secs) > 1 else secs[0]
    return {
        "preset": name, "mode": mode, "members": fuse, "first_s": secs[0], "steady_epoch_s": steady,
        "ms_step": 1000 * steady / steps, "ms_member_step": 1000 * steady / steps / fuse, "wall_s": wall,
        "steps": steps, "val_acc": trials[0].rows[-1]["val_acc"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", default="digits-mlp")
    ap.add_argument("--modes", default=None, help="default: eager,compile (and graph on CUDA)")
    ap.add_argument("--fuse", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--images", type=int, default=20000, help="generated images for the torchvision presets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    modes = (args.modes or ("eager,compile,graph" if device.type == "cuda" else "eager,compile")).split(",")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# step modes on {device} ({name}); torch {torch.__version__}; {os.cpu_count()} cpus; epochs {args.epochs}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            for members in (1, args.fuse):
                for rep in range(args.reps):  # the order turns from rep to rep: a load change hits every mode
                    order = modes[rep % len(modes):] + modes[: rep % len(modes)]
                    for mode in order:
                        r = measure(preset, mode, members, args, device, Path(tmp))
                        r["rep"] = rep
                        runs.append(r)
                        print(f"  {preset} x{members} {mode} rep {rep}: {r['ms_step']:.2f} ms/step, "
                              f"first epoch {r['first_s']:.1f} s", flush=True)
    print()
    print(f"## Step modes (ms per step: median over {args.reps} reps of each run's median epoch 2..{args.epochs}; "
          "the first epoch of the first rep includes compiling)")
    print()
    print("| preset | members | mode | first epoch s (rep 0) | ms/step (median) | ms/step per rep | ms/member-step | vs eager | val_acc |")
    print("|---|---:|---|---:|---:|---|---:|---:|---:|")
    med: dict[tuple[str, int, str], float] = {}
    for preset in args.presets.split(","):
        for members in (1, args.fuse):
            for mode in modes:
                rs = [r for r in runs if (r["preset"], r["members"], r["mode"]) == (preset, members, mode)]
                med[preset, members, mode] = statistics.median(r["ms_step"] for r in rs)
    for (preset, members, mode), ms in med.items():
        rs = [r for r in runs if (r["preset"], r["members"], r["mode"]) == (preset, members, mode)]
        first = next(r for r in rs if r["rep"] == 0)
        per = ", ".join(f"{r['ms_step']:.2f}" for r in rs)
        print(f"| {preset} | {members} | {mode} | {first['first_s']:.2f} | {ms:.2f} | {per} | {ms / members:.3f} | "
              f"{med[preset, members, 'eager'] / ms:.2f}x | {rs[-1]['val_acc']:.3f} |")
    print()
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

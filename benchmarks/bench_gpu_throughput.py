"""Benchmarks trials per hour on one device: tuitune's fused arrays, tuitune one trial at a time, and a
textbook loop, side by side on the same configs (issue 20's benchmark; needs a GPU for its figures).

For each preset (``mnist-mlp``, ``fashion-mnist-cnn``, ``cifar10-cnn``) the data is generated with the
real shapes (uint8 images whose label is written in their brightness, so training learns something),
put where the trainer's loader reads it, and the same ``--configs`` configs are drawn from the preset's
space with one seed, the architecture held at the preset's defaults so that they can share arrays (the
per-member hyperparameters vary: optimizer, lr, momentum / beta1, weight decay, dropout rate, schedule,
init). Each way first runs two configs for one epoch untimed (lazy imports, kernel choice, caches); then
each is timed to the last epoch of the last trial:

- ``fused``: ``objective.train_array`` on arrays of ``--fuse`` members;
- ``solo``: the same built-in objective, one trial after another in this process;
- ``textbook``: Optuna's example style, one trial at a time: the same model and optimizer, a
  ``DataLoader(TensorDataset(...), shuffle=True)`` over CPU tensors (already normalised: a little kinder
  than per-image transforms), each batch copied to the device, a validation pass per epoch.

Ray Tune (0.25 GPU per trial) is not run here: it is not installed on the GPU image; its row waits.
Prints, per preset, seconds, trials/hour, the ratio to the textbook loop and the mean GPU utilisation
(NVML through ``torch.cuda.utilization``, where available).

    python benchmarks/bench_gpu_throughput.py --device cuda                  # 64 configs x 3 epochs
    python benchmarks/bench_gpu_throughput.py --device cpu --tiny            # a smoke test on a CPU (~1 min)
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuitune.testing import FakeTrial  # noqa: E402
from tuitune.training import data as D  # noqa: E402
from tuitune.training.fusing import MEMBER_PARAMS, fuse_key  # noqa: E402
from tuitune.training.loop import make_objective, make_optimizer, make_scheduler, trial_seed  # noqa: E402
from tuitune.training.models import build_model  # noqa: E402
from tuitune.training.presets import load_preset  # noqa: E402

PRESETS = ("mnist-mlp", "fashion-mnist-cnn", "cifar10-cnn")
SHAPES = {"mnist": (1, 28, 60000), "fashion-mnist": (1, 28, 60000), "cifar10": (3, 32, 50000)}


def generated(name: str, n: int | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    c, s, full = SHAPES[name]
    n = n or full
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = (torch.randint(0, 100, (n, c, s, s), generator=g) + y.view(-1, 1, 1, 1) * 15).to(torch.uint8)
    return x, y


# --tiny: a small architecture, so that a CPU smoke test of the three presets takes a minute, not ten
TINY_ARCH = {"mlp": {"units": 64}, "cnn": {"filters": 8, "units": 64, "conv_blocks": 2}}


def configs(preset: Any, n: int, seed: int, tiny: bool = False) -> list[dict[str, Any]]:
    """``n`` configs from the preset's space; the architecture (what fuse_key reads) at the defaults."""
    rng = np.random.default_rng(seed)
    arch = TINY_ARCH.get(preset.model["kind"], {}) if tiny else {}
    out = []
    for _ in range(n):
        c = {**preset.defaults, **arch, **{k: v for k, v in preset.space.sample(rng).items() if k in MEMBER_PARAMS}}
        if float(preset.defaults.get("dropout", 0)) > 0:
            c["dropout"] = max(float(c.get("dropout", 0.0)), 0.05)  # dropout stays on: one architecture
        else:
            c["dropout"] = 0.0
        c["patience"] = 0
        out.append(c)
    assert len({fuse_key(preset, c) for c in out}) == 1
    return out


class Utilisation:
    """Mean GPU utilisation (percent) while it runs, sampled every 0.2 s; None where NVML is missing."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.samples, self._stop = device, [], threading.Event()
        self.ok = device.type == "cuda"
        if self.ok:
            try:
                torch.cuda.utilization(device)
            except Exception:  # noqa: BLE001 - pynvml missing or NVML unusable
                self.ok = False

    def __enter__(self) -> Utilisation:
        if self.ok:
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.samples.append(torch.cuda.utilization(self.device))

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_fused(obj: Any, cfgs: list[dict[str, Any]], epochs: int, fuse: int) -> int:
    rows = 0
    for i in range(0, len(cfgs), fuse):
        chunk = cfgs[i : i + fuse]
        trials = [FakeTrial(i + k, c, epochs) for k, c in enumerate(chunk)]
        obj.train_array(chunk, trials)
        rows += sum(len(t.rows) for t in trials)
    return rows


def run_solo(obj: Any, cfgs: list[dict[str, Any]], epochs: int) -> int:
    rows = 0
    for n, c in enumerate(cfgs):
        t = FakeTrial(n, c, epochs)
        obj(c, t)
        rows += len(t.rows)
    return rows


def run_textbook(preset: Any, data: Any, cfgs: list[dict[str, Any]], epochs: int, device: torch.device) -> int:
    from torch.utils.data import DataLoader, TensorDataset

    x_train = data.normalise(data.x_train.cpu()).contiguous()
    x_val = data.normalise(data.x_val.cpu()).contiguous()
    train = TensorDataset(x_train, data.y_train.cpu())
    val = TensorDataset(x_val, data.y_val.cpu())
    rows = 0
    for n, cfg in enumerate(cfgs):
        torch.manual_seed(trial_seed(0, n))
        model = build_model(preset.model["kind"], cfg, channels=data.channels, classes=data.num_classes, options=preset.model)
        model = model.to(device)
        opt = make_optimizer(cfg, model.parameters(), device)
        sched = make_scheduler(cfg["schedule"], opt, preset.max_epochs)
        bs = int(cfg["batch_size"])
        for _ in range(epochs):
            model.train()
            for xb, yb in DataLoader(train, batch_size=bs, shuffle=True):
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                for xb, yb in DataLoader(val, batch_size=1024):
                    correct += int((model(xb.to(device)).argmax(1) == yb.to(device)).sum())
            if sched is not None:
                sched.step()
            rows += 1
    return rows


def bench_preset(name: str, args: argparse.Namespace, device: torch.device, tmp: Path) -> list[dict[str, Any]]:
    preset = load_preset(name)
    dataset = preset.data["dataset"]
    x, y = generated(dataset, args.images)
    real = D._load_torchvision
    D._load_torchvision = lambda n, root, download: (x, y)  # generated data of the real shapes
    try:
        data = D.load_data(preset.data, data_dir=tmp / name, device=device)
    finally:
        D._load_torchvision = real
    cfgs = configs(preset, args.configs, args.seed, args.tiny)
    obj = make_objective(preset, device=str(device), data_dir=str(tmp / name), seed=0)
    ways = {
        "fused": lambda c, e: run_fused(obj, c, e, args.fuse),
        "solo": lambda c, e: run_solo(obj, c, e),
        "textbook": lambda c, e: run_textbook(preset, data, c, e, device),
    }
    for way in args.ways.split(","):  # warm-up: lazy imports, kernels chosen and compiled, allocator caches
        ways[way](cfgs[:2], 1)
    gc.freeze()  # as Runner.run does: the per-trial gc.collect then skips the long-lived heap
    out = []
    for way in args.ways.split(","):
        _sync(device)
        with Utilisation(device) as util:
            t0 = time.perf_counter()
            rows = ways[way](cfgs, args.epochs)
            _sync(device)
            secs = time.perf_counter() - t0
        assert rows == len(cfgs) * args.epochs, (way, rows)
        out.append({"preset": name, "way": way, "seconds": secs, "trials_h": len(cfgs) * 3600 / secs, "util": util.mean})
        print(f"  {name:18} {way:9} {secs:8.2f} s {out[-1]['trials_h']:10.0f} trials/h", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--ways", default="fused,solo,textbook")
    ap.add_argument("--configs", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--fuse", type=int, default=16)
    ap.add_argument("--images", type=int, default=0, help="generated images per dataset (0: the real size)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--tiny", action="store_true", help="a smoke test: 600 images, 4 configs, 1 epoch, fuse 2, small models"
    )
    args = ap.parse_args()
    if args.tiny:
        args.images, args.configs, args.epochs, args.fuse = 600, 4, 1, 2
        if args.device == "cpu":  # two threads on a busy 2-core machine spin-wait (loop.cpu_threads)
            os.environ.setdefault("TUITUNE_CPU_THREADS", "1")
            torch.set_num_threads(1)  # the textbook loop too
    device = torch.device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    print(
        f"bench_gpu_throughput: device {device} ({gpu}), torch {torch.__version__}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; {args.configs} configs x {args.epochs} epochs, fuse {args.fuse}, "
        f"{args.images or 'real-size'} generated images"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets.split(","):
            results += bench_preset(name, args, device, Path(tmp))
    print("\n| preset | way | seconds | trials/hour | vs textbook | GPU util |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        base = next((b for b in results if b["preset"] == r["preset"] and b["way"] == "textbook"), None)
        ratio = f"{r['trials_h'] / base['trials_h']:.2f}x" if base else "-"
        util = f"{r['util']:.0f}%" if r["util"] is not None and not math.isnan(r["util"]) else "-"
        print(f"| {r['preset']} | {r['way']} | {r['seconds']:.2f} | {r['trials_h']:.0f} | {ratio} | {util} |")
    print("| (all) | Ray Tune, 0.25 GPU per trial | - | - | - | not run: ray is not on the GPU image |")


if __name__ == "__main__":
    main()

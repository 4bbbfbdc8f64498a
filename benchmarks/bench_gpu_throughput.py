"""Benchmarks trials per hour: tuitune against a textbook loop and Ray Tune, the same configs side by side.

For each preset (``mnist-mlp``, ``fashion-mnist-cnn``, ``cifar10-cnn`` by default) the script writes generated
data of the real shapes in torchvision's own on-disk format (60,000 28x28 images for the MNISTs, 50,000
32x32x3 for CIFAR-10: the real files cannot be had offline; training speed does not depend on the pixels),
then times, one after the other on the same device:

- ``tuitune``: the command line's defaults (``tuitune run PRESET --strategy random --trials N --seed S
  --headless``, with ``--fuse auto`` where the command line has it), timed from the command's start to its
  end (worker start-up, data loading and every commit counted);
- ``tuitune in-process``: the same with ``--in-process`` (one trial at a time in the command's process);
- ``textbook``: Optuna's example style, one trial after another in this process: a torchvision dataset with
  ``ToTensor``/``Normalize`` (plus ``RandomCrop``/``RandomHorizontalFlip`` where the preset augments), a
  ``DataLoader`` with 2 loader processes (pinned memory on a GPU), the same model (tuitune's ``build_model``),
  the same optimizer and schedule, a validation pass each epoch;
- ``ray-tune``: the textbook trainable under Ray Tune, 0.25 GPU per trial (1 CPU per trial on a CPU), when
  Ray is installed.

Every side runs the very configs of the ``tuitune`` run (read back with ``tuitune show --json``): 64 from one
seed by default. ``--space`` picks the configs: ``full`` samples the preset's whole space (architectures
differ, so arrays rarely form), ``fixed-arch`` fixes the architecture at the preset's defaults and samples the
optimizer's parameters (the case fused arrays are for). A side that passes ``--limit`` seconds is stopped, and
its trials per hour come from the trials it completed in that time (the table says how many).

    python benchmarks/bench_gpu_throughput.py --device cuda                     # on a GPU (the GPU suite)
    python benchmarks/bench_gpu_throughput.py --device cpu --presets mnist-mlp --size tiny --configs 4 --epochs 1

Prints a markdown table per preset and space: trials/hour, the ratio to the textbook loop, and the GPU's mean
utilisation (NVML) during each side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {  # training images per dataset: the real count, or a tiny one for a smoke run on a CPU
    "full": {"mnist": 60000, "fashion-mnist": 60000, "cifar10": 50000},
    "tiny": {"mnist": 1200, "fashion-mnist": 1200, "cifar10": 1000},
}
ARCH_KEYS = ("hidden_layers", "units", "activation", "batch_size", "conv_blocks", "filters", "kernel_size",
             "image_size", "init", "train_fraction")


# ---------------------------------------------------------------------------------------------- the data
def _idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    path.write_bytes(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def write_dataset(name: str, root: Path, n: int, seed: int = 0) -> None:
    """``n`` random training images (and 1,000 test images) of ``name``'s real shape, in torchvision's format."""
    rng = np.random.default_rng(seed)
    if name in ("mnist", "fashion-mnist"):
        raw = root / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for split, m in (("train", n), ("t10k", 1000)):
            y = rng.integers(0, 10, m, dtype=np.uint8)
            x = (rng.integers(0, 100, (m, 28, 28)) + y[:, None, None] * 15).astype(np.uint8)  # learnable
            _idx(raw / f"{split}-images-idx3-ubyte", x)
            _idx(raw / f"{split}-labels-idx1-ubyte", y)
    elif name == "cifar10":
        import pickle

        d = root / "cifar-10-batches-py"
        d.mkdir(parents=True, exist_ok=True)
        per = n // 5
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for i, b in enumerate(names):
            m = 1000 if b == "test_batch" else per
            y = rng.integers(0, 10, m)
            x = (rng.integers(0, 120, (m, 3072)) + y[:, None] * 12).astype(np.uint8)
            with open(d / b, "wb") as f:
                pickle.dump({"batch_label": b, "data": x, "labels": [int(v) for v in y],
                             "filenames": [f"{i}_{j}.png" for j in range(m)]}, f, protocol=2)
        with open(d / "batches.meta", "wb") as f:
            pickle.dump({"label_names": [str(i) for i in range(10)], "num_cases_per_batch": per}, f, protocol=2)
    else:
        raise SystemExit(f"bench_gpu_throughput: no generator for dataset {name!r}")


# ------------------------------------------------------------------------------------- GPU utilisation
class GpuSampler:
    """Samples the GPU's utilisation (NVML) every 100 ms while a side runs; nothing on a CPU."""

    def __init__(self, device: str) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._handle = None
        if device.startswith("cuda"):
            try:
                import pynvml

                pynvml.nvmlInit()
                index = int(device.split(":")[1]) if ":" in device else 0
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                self._nvml = pynvml
            except Exception:  # noqa: BLE001 - no NVML: no utilisation column
                self._handle = None

    def __enter__(self) -> GpuSampler:
        if self._handle is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append(int(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu))

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()

    @property
    def mean(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.0f}%" if self.samples else "-"


# ------------------------------------------------------------------------------------------ tuitune sides
def _tuitune(args: list[str], env: dict[str, str], limit: float) -> tuple[float, bool]:
    t0 = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "tuitune", *args], env=env, check=False, timeout=limit,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.perf_counter() - t0, False
    except subprocess.TimeoutExpired:
        return time.perf_counter() - t0, True


def _show(db: Path, session: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "tuitune", "show", session, "--json", "--db", str(db)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _has_fuse(env: dict[str, str]) -> bool:
    out = subprocess.run([sys.executable, "-m", "tuitune", "run", "--help"], env=env, capture_output=True,
                         text=True).stdout
    return "--fuse" in out


# ---------------------------------------------------------------------------------------- the textbook side
def textbook_trial(preset_name: str, config: dict[str, Any], data_dir: str, device: str, epochs: int) -> float:
    """One trial the textbook way; returns the last validation accuracy."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from tuitune.training.loop import make_optimizer, make_scheduler
    from tuitune.training.models import build_model
    from tuitune.training.presets import load_preset

    preset = load_preset(preset_name)
    cfg = {**preset.defaults, **config}
    name = preset.data["dataset"]
    size = int(cfg.get("image_size", 32 if name == "cifar10" else 28))
    if name == "cifar10":
        mean, std, channels, cls = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), 3, datasets.CIFAR10
    else:
        mean, std, channels = (0.29,), (0.32,), 1
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    plain = [transforms.Resize(size)] if size != (32 if name == "cifar10" else 28) else []
    plain += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    train_tf = plain
    if preset.data.get("augment"):
        train_tf = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), *plain]
    train_full = cls(data_dir, train=True, download=False, transform=transforms.Compose(train_tf))
    val_full = cls(data_dir, train=True, download=False, transform=transforms.Compose(plain))
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train_full), generator=g).tolist()
    n_val = int(len(order) * float(preset.data.get("val_fraction", 0.1)))
    train_idx = order[n_val:][: max(1, int(len(order[n_val:]) * float(cfg.get("train_fraction", 1.0))))]
    dev = torch.device(device)
    pin = dev.type == "cuda"
    train = DataLoader(Subset(train_full, train_idx), batch_size=int(cfg["batch_size"]), shuffle=True,
                       num_workers=2, pin_memory=pin, persistent_workers=True)
    val = DataLoader(Subset(val_full, order[:n_val]), batch_size=512, num_workers=2, pin_memory=pin,
                     persistent_workers=True)
    torch.manual_seed(0)
    model = build_model(preset.model["kind"], {**cfg, "image_size": size}, channels=channels, classes=10,
                        options=preset.model).to(dev)
    opt = make_optimizer(cfg, model.parameters(), dev)
    sched = make_scheduler(cfg.get("schedule", "constant"), opt, epochs)
    acc = 0.0
    for _ in range(epochs):
        model.train()
        for x, y in train:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        if sched is not None:
            sched.step()
        model.eval()
        right = total = 0
        with torch.no_grad():
            for x, y in val:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                right += int((model(x).argmax(1) == y).sum())
                total += len(y)
        acc = right / max(1, total)
    return acc


def textbook(preset: str, configs: list[dict[str, Any]], data_dir: str, device: str, epochs: int,
             limit: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    done = 0
    for cfg in configs:
        if time.perf_counter() - t0 > limit:
            break
        textbook_trial(preset, cfg, data_dir, device, epochs)
        done += 1
    return time.perf_counter() - t0, done


def ray_tune(preset: str, configs: list[dict[str, Any]], data_dir: str, device: str, epochs: int,
             limit: float) -> tuple[float, int] | None:
    try:
        import ray
        from ray import tune
    except ImportError:
        return None
    tmp = tempfile.mkdtemp(prefix="bench-ray-")

    def trainable(params: dict[str, Any]) -> None:
        sys.path.insert(0, str(ROOT))
        acc = textbook_trial(preset, configs[params["i"]], data_dir, device, epochs)
        tune.report({"val_acc": acc})

    gpu = device.startswith("cuda")
    ray.init(include_dashboard=False, num_gpus=1 if gpu else 0, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        resources = {"cpu": 1, "gpu": 0.25} if gpu else {"cpu": 1}
        tuner = tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space={"i": tune.grid_search(list(range(len(configs))))},
            tune_config=tune.TuneConfig(time_budget_s=limit),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0),
        )
        t0 = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - t0
        done = sum(1 for r in results if r.error is None and r.metrics and "val_acc" in r.metrics)
        return wall, done
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- the run
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="mnist-mlp,fashion-mnist-cnn,cifar10-cnn")
    ap.add_argument("--space", default="fixed-arch,full", help="fixed-arch, full, or both (comma-separated)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--configs", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--limit", type=float, default=60.0, help="seconds each side may run (then it is stopped)")
    ap.add_argument("--sides", default="tuitune,in-process,textbook,ray-tune")
    ap.add_argument("--out", help="also write the tables to this markdown file")
    a = ap.parse_args()
    sides = a.sides.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    fuse = _has_fuse(env)
    lines = [f"## Trials per hour, {a.device}, {a.configs} configs x {a.epochs} epochs, {a.size} data "
             f"(python {platform.python_version()}, {os.cpu_count()} cpus; tuitune fuse flag: "
             f"{'--fuse auto' if fuse else 'absent'})", ""]
    try:
        from tuitune.training.presets import load_preset

        for preset in a.presets.split(","):
            p = load_preset(preset)
            data_dir = work / "data"
            write_dataset(p.data["dataset"], data_dir, SIZES[a.size][p.data["dataset"]])
            for space in a.space.split(","):
                sets: list[str] = []
                if space == "fixed-arch":
                    for k in ARCH_KEYS:
                        if k in p.space and k in p.defaults:
                            sets += ["--set", f"{k}={p.defaults[k]}"]
                db = work / f"{preset}-{space}.db"
                base = ["run", preset, "--strategy", "random", "--trials", str(a.configs), "--seed", str(a.seed),
                        "--max-epochs", str(a.epochs), "--headless", "--db", str(db), "--data-dir", str(data_dir),
                        "--devices", a.device, *sets]
                rows: list[tuple[str, float, int, str]] = []
                with GpuSampler(a.device) as gs:
                    wall, _ = _tuitune([*base, "--session", "default", *(["--fuse", "auto"] if fuse else [])],
                                       env, a.limit)
                shown = _show(db, "default", env)
                configs = [t["config"] for t in shown["trials"]][: a.configs]
                n_done = sum(1 for t in shown["trials"] if t["state"] in ("complete", "pruned"))
                if "tuitune" in sides:
                    rows.append(("tuitune (default)", wall, n_done, gs.mean))
                if "in-process" in sides:
                    with GpuSampler(a.device) as gs:
                        wall, _ = _tuitune([*base, "--session", "inproc", "--in-process"], env, a.limit)
                    n = sum(1 for t in _show(db, "inproc", env)["trials"] if t["state"] in ("complete", "pruned"))
                    rows.append(("tuitune in-process, one at a time", wall, n, gs.mean))
                if "textbook" in sides:
                    with GpuSampler(a.device) as gs:
                        wall, n = textbook(preset, configs, str(data_dir), a.device, a.epochs, a.limit)
                    rows.append(("textbook loop (DataLoader, one at a time)", wall, n, gs.mean))
                if "ray-tune" in sides:
                    with GpuSampler(a.device) as gs:
                        got = ray_tune(preset, configs, str(data_dir), a.device, a.epochs, a.limit)
                    if got is not None:
                        rows.append(("Ray Tune (textbook trainable, 0.25 GPU/trial)", got[0], got[1], gs.mean))
                    else:
                        lines.append(f"(Ray Tune not installed: no ray-tune row for {preset})")
                ref = next((n / w for name, w, n, _ in rows if name.startswith("textbook") and w > 0), None)
                lines += [f"### {preset}, space {space}", "",
                          "| side | trials done | wall s | trials/hour | x textbook | GPU util |",
                          "|---|---|---|---|---|---|"]
                for name, w, n, util in rows:
                    rate = n / w * 3600 if w > 0 else 0.0
                    ratio = f"{(n / w) / ref:.2f}" if ref else "-"
                    lines.append(f"| {name} | {n}/{len(configs)} | {w:.1f} | {rate:.0f} | {ratio} | {util} |")
                lines.append("")
                print("\n".join(lines[-(len(rows) + 5):]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines)
    print("\n" + text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

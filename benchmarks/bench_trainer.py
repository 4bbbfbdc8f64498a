"""Benchmarks the trainer's device-resident data path against a torchvision DataLoader baseline.

Both sides train the same model with the same optimizer and batch size on the same MNIST-format files
(random 28x28 uint8 images written in torchvision's raw idx format, so both read them through
torchvision). The trainer keeps the images on the device as uint8 and draws batches by index there;
the baseline is the textbook ``MNIST(transform=Compose([ToTensor(), Normalize(...)]))`` + ``DataLoader``
with 0 workers and with 2, 4 and 8 workers (the best of those is reported too). One table, side by side,
with the ratio to the trainer.

    python benchmarks/bench_trainer.py                       # CPU here: MLP, 60000 images
    python benchmarks/bench_trainer.py --device cuda --model cnn

What tuitune adds around training (a SQLite commit and events per epoch) is measured by bench_overhead.py;
beside this script.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuitune.training import data as D  # noqa: E402
from tuitune.training.loop import _autocast, _train_epoch, make_optimizer  # noqa: E402
from tuitune.training.models import build_model  # noqa: E402
from tuitune.training.presets import load_preset  # noqa: E402


def write_mnist_like(root: Path, n: int, seed: int = 0) -> None:
    """``n`` random 28x28 uint8 images and labels in torchvision's raw MNIST idx files under ``root``."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, m in (("train", n), ("t10k", 16)):
        x = rng.integers(0, 256, (m, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, m, dtype=np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
            (raw / f"{split}-{kind}-ubyte").write_bytes(header + arr.tobytes())


def _config(model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    preset = load_preset("mnist-mlp" if model == "mlp" else "fashion-mnist-cnn")
    cfg = dict(preset.defaults)
    cfg.update(train_fraction=1.0, image_size=28)
    return cfg, preset.model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_and_optimizer(model_kind: str, cfg: dict[str, Any], opts: dict[str, Any], device: torch.device):
    """The same seeded model and optimizer for both paths (channels-last for CNNs on CUDA)."""
    torch.manual_seed(0)
    channels_last = device.type == "cuda" and model_kind != "mlp"
    model = build_model(model_kind, cfg, channels=1, classes=10, options=opts).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, make_optimizer(cfg, model.parameters(), device), channels_last


def time_trainer(root: Path, device: torch.device, model_kind: str, batch_size: int, epochs: int) -> list[float]:
    """Epoch times of the trainer's own path: device-resident uint8 tensors, batches by index."""
    D.clear_cache()
    t0 = time.perf_counter()
    data = D.load_data({"dataset": "mnist", "val_fraction": 0.1, "download": False}, data_dir=root, device=device)
    _sync(device)
    print(f"  trainer: loaded {len(data.x_train)} train images onto {device} in {time.perf_counter() - t0:.2f} s")
    cfg, opts = _config(model_kind)
    cfg["batch_size"] = batch_size
    model, opt, channels_last = _model_and_optimizer(model_kind, cfg, opts, device)
    gen = data.make_generator(0)
    times = []
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        _train_epoch(model, opt, data, cfg, gen, device, channels_last)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def time_dataloader(
    root: Path, device: torch.device, model_kind: str, batch_size: int, epochs: int, workers: int
) -> list[float]:
    """Epoch times of the textbook path: torchvision MNIST + ToTensor/Normalize transforms + DataLoader."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    ds = datasets.MNIST(
        str(root),
        train=True,
        download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.29,))]),
    )
    n = len(ds)
    n_val = round(n * 0.1)
    train_idx = torch.randperm(n, generator=torch.Generator().manual_seed(0))[n_val:].tolist()
    loader = DataLoader(
        Subset(ds, train_idx),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        drop_last=False,
    )
    cfg, opts = _config(model_kind)
    model, opt, channels_last = _model_and_optimizer(model_kind, cfg, opts, device)
    times = []
    for _ in range(epochs):
        model.train()
        total = torch.zeros((), device=device)
        _sync(device)
        t0 = time.perf_counter()
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().float() * len(y)
        float(total.item())
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: the best available)")
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("-n", "--images", type=int, default=60000, help="training images generated (MNIST has 60000)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per path; the first is warm-up")
    ap.add_argument("--workers", default="2,4,8", help="DataLoader worker counts besides 0")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    args = ap.parse_args(argv)
    # torch warns when workers outnumber cores; measuring exactly that is the point here
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = D.resolve_device(args.device)
    epochs = max(2, args.epochs)
    print("bench_trainer: epoch time of the trainer's device-resident path vs a torchvision DataLoader")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    print(
        f"  device {device} ({gpu}); torch {torch.__version__}; python {platform.python_version()}; "
        f"{torch.get_num_threads()} torch threads; model {args.model}; batch {args.batch_size}; "
        f"{args.images} generated 28x28 images, {round(args.images * 0.9)} trained on per epoch; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_mnist_like(root, args.images)
        t = time_trainer(root, device, args.model, args.batch_size, epochs)
        rows.append(("tuitune trainer (device-resident)", min(t[1:])))
        for w in [0, *[int(x) for x in args.workers.split(",") if x.strip()]]:
            t = time_dataloader(root, device, args.model, args.batch_size, epochs, w)
            rows.append((f"DataLoader + transforms, num_workers={w}", min(t[1:])))
    base = rows[0][1]
    n = round(args.images * 0.9)
    best_loader = min(rows[2:], key=lambda r: r[1]) if len(rows) > 2 else None
    print()
    print("| path | epoch (s) | images/s | time vs trainer |")
    print("|---|---:|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {n / s:,.0f} | {s / base:.2f}x |")
    if best_loader is not None:
        print(
            f"| best DataLoader with workers ({best_loader[0].split(',')[1].strip()}) | {best_loader[1]:.2f} | "
            f"{n / best_loader[1]:,.0f} | {best_loader[1] / base:.2f}x |"
        )
    print("\n(epoch = one pass of training steps over the train split, best of the timed epochs after a warm-up)")


if __name__ == "__main__":
    main()

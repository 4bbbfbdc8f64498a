"""Provides writers of tiny datasets in torchvision's own on-disk formats, for the loader tests.

MNIST / Fashion-MNIST: the raw idx files (big-endian magic 0x0000 08 <ndim>, then the dims) under
``<root>/<Class>/raw/``, all four of them, as ``torchvision.datasets.MNIST._check_exists`` requires.
CIFAR-10: the pickled batches of ``<root>/cifar-10-batches-py/`` (``data`` as N x 3072 uint8 rows,
``labels``), plus ``batches.meta``; ``md5s`` returns their checksums for the integrity tables.
ImageFolder: ``<root>/<class>/<n>.png``.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(header + arr.tobytes())


def write_mnist(
    root: Path, cls: str = "MNIST", n_train: int = 60, n_test: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random 28x28 images whose label is written in their mean brightness (learnable)."""
    rng = np.random.default_rng(seed)
    raw = root / cls / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = None
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = (rng.integers(0, 40, (n, 28, 28)) + y[:, None, None] * 20).astype(np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte", x)
        write_idx(raw / f"{split}-labels-idx1-ubyte", y)
        if split == "train":
            out = (x, y)
    assert out is not None
    return out


CIFAR_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]


def write_cifar10(root: Path, per_batch: int = 8, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for name in CIFAR_FILES:
        x = rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(d / name, "wb") as f:
            pickle.dump(
                {"batch_label": name, "data": x, "labels": y, "filenames": [f"{i}.png" for i in range(per_batch)]},
                f,
                protocol=2,
            )
        if name != "test_batch":
            xs.append(x)
            ys += y
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f, protocol=2)
    return np.vstack(xs), ys


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_imagefolder(root: Path, classes: int = 3, per_class: int = 6, size: int = 12) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"class_{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, 3), np.uint8)
            base[..., c % 3] = 200  # each class has its own colour
            noise = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
            Image.fromarray(base + noise).save(d / f"{i}.png")

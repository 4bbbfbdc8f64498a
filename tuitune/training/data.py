"""Provides the built-in trainer's datasets: device-resident tensors, or a DataLoader for image folders.

Datasets that fit (digits, MNIST, Fashion-MNIST, CIFAR-10) are read once per process and kept on the
training device as uint8 tensors; batches are drawn by index on the device, normalised there, and CIFAR's
augmentation (random crop with padding 4, horizontal flip) is done there too, a whole batch at a time.
Image folders, which may not fit, stream through a DataLoader with workers and pinned memory.

The validation split is held out of the *training* set with a fixed seed, the same for every trial; the
test split is never read for tuning. Missing files are downloaded through torchvision where that is
possible; offline, a ``DataError`` says which files to put where.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torch.nn.functional as F

from tuitune.core.errors import SetupError, reason_of
from tuitune.training.catalog import DATASETS, default_data_dir  # noqa: F401 - re-exported
from tuitune.training.devices import DeviceError, resolve_device  # noqa: F401 - re-exported

# How long a download may wait on the network before we call the machine offline.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(SetupError):
    """A dataset that is missing, cannot be downloaded, or cannot be read."""




# --------------------------------------------------------------------------------------------- tensors


@dataclass
class TensorData:
    """A dataset held on the device: uint8 images (N, C, H, W) and int64 labels, split into train and val."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    augment: bool = False

    def __post_init__(self) -> None:
        dev = self.x_train.device
        mean = torch.tensor(self.mean, device=dev).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=dev).view(1, -1, 1, 1)
        # (x / 255 - mean) / std as one multiply-subtract on the batch
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def size(self) -> int:
        return int(self.x_train.shape[-1])

    def n_train(self, fraction: float = 1.0) -> int:
        return max(1, round(len(self.x_train) * fraction))

    def make_generator(self, seed: int) -> torch.Generator:
        """The generator of batch order and augmentation; its state goes into checkpoints."""
        return torch.Generator(device=self.device).manual_seed(seed)

    def normalise(self, x: torch.Tensor, image_size: int | None = None) -> torch.Tensor:
        x = x.float().mul_(self._scale).sub_(self._shift)
        if image_size and image_size != x.shape[-1]:
            x = F.interpolate(
                x,
                size=(image_size, image_size),
                mode="bilinear",
                align_corners=False,
                antialias=image_size < x.shape[-1],
            )
        return x

    def train_batches(
        self, batch_size: int, generator: torch.Generator, fraction: float = 1.0, image_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled batches from the first ``fraction`` of the (already shuffled) train split."""
        n = self.n_train(fraction)
        perm = torch.randperm(n, generator=generator, device=self.device)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            if len(idx) < 2 and i > 0:  # a last batch of one breaks batch norm and says nothing
                break
            x = self.x_train.index_select(0, idx)
            if self.augment:
                x = crop_flip(x, generator)
            yield self.normalise(x, image_size), self.y_train.index_select(0, idx)

    def val_batches(
        self, batch_size: int, image_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        bs = max(batch_size, 1024) if (image_size or self.size) <= 64 else batch_size
        for i in range(0, len(self.x_val), bs):
            yield self.normalise(self.x_val[i : i + bs], image_size), self.y_val[i : i + bs]


def crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding ``pad`` and random horizontal flip of a uint8 batch, on its device.

    The same as torchvision's ``RandomCrop(size, padding=pad)`` + ``RandomHorizontalFlip()`` per image,
    done as one gather for the whole batch.
    """
    b, _, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev)
    flip = torch.rand(b, generator=generator, device=dev) < 0.5
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = dy[:, None] + ar_h  # (b, h)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)  # (b, w), reversed when flipped
    bi = torch.arange(b, device=dev)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (b, h, w, c)
    return out.permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------- image folders


class StreamData:
    """An ImageFolder tree streamed through a DataLoader (workers, pinned memory), normalised on the device."""

    augment = True

    def __init__(self, root: Path, device: torch.device, val_fraction: float, split_seed: int, num_workers: int):
        from torchvision.datasets import ImageFolder

        self.root = root
        if not root.is_dir():
            raise DataError(
                f"image folder {root} does not exist; put your images in {root}/<class name>/*.jpg|png "
                "(one folder per class), or set [data] root in a copy of the preset"
            )
        try:
            self.base = ImageFolder(str(root))
        except (FileNotFoundError, RuntimeError) as e:
            raise DataError(f"image folder {root}: {e}; it needs one sub-folder per class with images in it") from None
        n = len(self.base)
        if n < 2 or len(self.base.classes) < 2:
            raise DataError(
                f"image folder {root}: found {n} images in {len(self.base.classes)} class(es); need >= 2 of each"
            )
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed)).tolist()
        n_val = min(n - 1, max(1, round(n * val_fraction)))
        self.val_idx, self.train_idx = perm[:n_val], perm[n_val:]
        self.num_classes = len(self.base.classes)
        self.channels = 3
        self.size = DATASETS["imagefolder"].size
        self.device = device
        self.num_workers = num_workers
        self.name = "imagefolder"
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, -1, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, -1, 1, 1)
        self._scale, self._shift = 1.0 / (255.0 * std), mean / std

    def n_train(self, fraction: float = 1.0) -> int:
        return max(1, round(len(self.train_idx) * fraction))

    def make_generator(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def _loader(self, indices: list[int], transform: Any, batch_size: int, generator: torch.Generator | None):
        from torch.utils.data import DataLoader, Subset

        ds = copy.copy(self.base)  # the scanned file list is shared; only the transform differs
        ds.transform = transform
        return DataLoader(
            Subset(ds, indices),
            batch_size=batch_size,
            shuffle=generator is not None,
            generator=generator,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True).float().mul_(self._scale).sub_(self._shift)
        return x, y.to(self.device, non_blocking=True)

    def train_batches(
        self, batch_size: int, generator: torch.Generator, fraction: float = 1.0, image_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torchvision import transforms as T

        size = image_size or self.size
        tf = T.Compose([T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip(), T.PILToTensor()])
        # A fresh loader each epoch draws its worker seeds from the generator, so a resumed run repeats them.
        for x, y in self._loader(self.train_idx[: self.n_train(fraction)], tf, batch_size, generator):
            if len(y) < 2:
                break
            yield self._to_device(x, y)

    def val_batches(
        self, batch_size: int, image_size: int | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torchvision import transforms as T

        size = image_size or self.size
        tf = T.Compose([T.Resize(round(size * 256 / 224), antialias=True), T.CenterCrop(size), T.PILToTensor()])
        for x, y in self._loader(self.val_idx, tf, batch_size, None):
            yield self._to_device(x, y)


# --------------------------------------------------------------------------------------------- loading

_CACHE: dict[tuple[Any, ...], TensorData | StreamData] = {}
_CACHE_LOCK = threading.Lock()

# torchvision class name, the files it reads, and where they come from
_TORCHVISION: dict[str, tuple[str, str]] = {
    "mnist": ("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion-mnist": ("FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    "cifar10": ("CIFAR10", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
}


def load_data(
    data: dict[str, Any], *, data_dir: str | os.PathLike[str] | None = None, device: torch.device | str | None = None,
    before_device: Callable[[], None] | None = None,
) -> TensorData | StreamData:
    """The dataset of a preset's ``[data]`` table on a device, loaded once per process and then cached.

    ``before_device`` is called once the dataset is read and split on the CPU, just before it goes to the device
    (``preload`` waits there for the device's initialisation, which ran beside the reading).
    """
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    name = data["dataset"]
    if name not in DATASETS:
        raise DataError(f"dataset {name!r} does not exist; use one of {', '.join(DATASETS)}")
    val_fraction = float(data.get("val_fraction", 0.1))
    split_seed = int(data.get("split_seed", 0))
    if name == "imagefolder":
        root = Path(data.get("root", "images")).expanduser().resolve()
        key: tuple[Any, ...] = (name, str(root), str(dev), val_fraction, split_seed, data.get("num_workers"))
    else:
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        key = (name, str(root.resolve()), str(dev), val_fraction, split_seed, bool(data.get("augment", False)))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        if name == "imagefolder":
            out: TensorData | StreamData = StreamData(
                root, dev, val_fraction, split_seed, int(data.get("num_workers", min(8, os.cpu_count() or 1)))
            )
        else:
            if name == "digits":
                x, y = _load_digits()
            else:
                x, y = _load_torchvision(name, root, bool(data.get("download", True)))
            out = _split(name, x, y, dev, val_fraction, split_seed, bool(data.get("augment", False)), before_device)
        _CACHE[key] = out
        return out


def init_device(dev: torch.device) -> None:
    """Creates the device's context now (CUDA: the driver's context and the caching allocator, seconds on a
    big GPU), with one tiny allocation; the CPU has nothing to initialise."""
    if dev.type == "cuda":
        torch.cuda.init()
        torch.empty(1, device=dev)
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.empty(1, device=dev)


def preload(
    data: dict[str, Any], *, data_dir: str | os.PathLike[str] | None = None, device: torch.device | str | None = None
) -> dict[str, float]:
    """Puts a preset's dataset on ``device`` before the first trial asks for it (a worker's start).

    The device initialises in a thread (``init_device``) while the dataset is read, decoded and split on the
    CPU; the copy to the device waits for it. Returns the seconds of each, which overlap: ``device`` (its
    initialisation) and ``data`` (reading the dataset and putting it on the device, waits included). A dataset
    this process holds already costs nothing. An error (a dataset missing offline) is raised as ``load_data``'s.
    """
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    took: dict[str, float] = {}
    failed: list[BaseException] = []

    def init() -> None:
        t = time.perf_counter()
        try:
            init_device(dev)
        except BaseException as e:  # noqa: BLE001 - the copy to the device raises it in the caller's thread
            failed.append(e)
        took["device"] = time.perf_counter() - t

    thread = threading.Thread(target=init, name="tuitune-device-init", daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        load_data(data, data_dir=data_dir, device=dev, before_device=thread.join)
    finally:
        thread.join()
    took["data"] = time.perf_counter() - t0
    return {"device": took.get("device", 0.0), "data": took["data"]}


def clear_cache() -> None:
    """Forgets the loaded datasets (and frees their device memory once nothing else holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _split(
    name: str, x: torch.Tensor, y: torch.Tensor, dev: torch.device, val_fraction: float, split_seed: int, augment: bool,
    before_device: Callable[[], None] | None = None,
) -> TensorData:
    n = len(x)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    val, train = perm[:n_val], perm[n_val:]
    x_train = x[train]
    mean, std = _channel_stats(x_train)
    if before_device is not None:
        before_device()
    return TensorData(
        name=name,
        x_train=x_train.to(dev),
        y_train=y[train].to(dev),
        x_val=x[val].to(dev),
        y_val=y[val].to(dev),
        mean=mean,
        std=std,
        num_classes=int(y.max()) + 1 if DATASETS[name].classes is None else DATASETS[name].classes,
        augment=augment,
    )


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the 0..1 scale, from a histogram of the 256 byte values.

    Exact (integer counts) and about 6x faster than summing floats (2.5 s for MNIST's 54,000 training
    images on a busy CPU core; a worker pays it once, when it loads the dataset).
    """
    c = x.shape[1]
    counts = torch.zeros(c, 256, dtype=torch.int64)
    for i in range(0, len(x), 8192):
        chunk = x[i : i + 8192]
        for k in range(c):
            counts[k] += torch.bincount(chunk[:, k].reshape(-1), minlength=256)
    v = torch.arange(256, dtype=torch.float64) / 255.0
    freq = counts.to(torch.float64) / counts.sum(dim=1, keepdim=True).to(torch.float64)
    mean = (freq * v).sum(dim=1)
    std = ((freq * v * v).sum(dim=1) - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(float(m) for m in mean), tuple(max(float(sd), 1e-3) for sd in std)


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).mul(255.0 / 16.0).round_().clamp_(0, 255).to(torch.uint8).unsqueeze(1)
    return x, torch.from_numpy(d.target).long()


def _missing_message(name: str, root: Path, reason: str) -> str:
    cls, url = _TORCHVISION[name]
    if name == "cifar10":
        where = (
            f"download {url} and extract it in {root} (it makes {root / 'cifar-10-batches-py'} with data_batch_1..5, "
            f"test_batch and batches.meta), or just put the .tar.gz in {root}"
        )
    else:
        raw = root / cls / "raw"
        files = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
        where = f"put {files} (from {url}; the .gz files work too) in {raw}"
    return (
        f"dataset {name!r} is not in {root} and could not be downloaded ({reason}). To use it offline, {where}; "
        "or set TUITUNE_DATA to a folder that has it, or run once with internet access"
    )


def _archives_present(name: str, root: Path) -> bool:
    """True when the downloaded archives are already there (torchvision then extracts them offline)."""
    if name == "cifar10":
        return (root / "cifar-10-python.tar.gz").is_file()
    raw = root / _TORCHVISION[name][0] / "raw"
    return raw.is_dir() and any(raw.glob("*.gz"))


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the URL's host opens within the timeout, else why not."""
    u = urlparse(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "", port), timeout=timeout):
            return None
    except OSError as e:
        return f"{u.hostname} is unreachable: {e.strerror or e}"


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # torchvision's urlopen has no timeout: without this a stalled connection hangs the trial forever.
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _load_torchvision(name: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets as tvd

    cls_name, url = _TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    try:
        ds = cls(str(root), train=True, download=False)
    except RuntimeError as first:
        if not download:
            raise DataError(
                _missing_message(name, root, f"downloads are off in [data]; torchvision: {first}")
            ) from None
        reason = None if _archives_present(name, root) else _reachable(url)
        if reason is not None:
            raise DataError(_missing_message(name, root, reason)) from None
        try:
            root.mkdir(parents=True, exist_ok=True)
            with _socket_timeout(READ_TIMEOUT_S):
                ds = cls(str(root), train=True, download=True)
        except (URLError, OSError, RuntimeError, ValueError) as e:
            raise DataError(
                _missing_message(name, root, reason_of(e))
            ) from None
    if name == "cifar10":
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    else:
        x = ds.data.unsqueeze(1).contiguous()
    return x.to(torch.uint8), torch.as_tensor(ds.targets, dtype=torch.long)

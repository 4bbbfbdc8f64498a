"""Provides the built-in trainer's catalog: its datasets, model kinds, optimizers, activations,
initialisations, schedules, metrics and the parameters it takes, each with its type, default and range.

Preset validation (presets.py), the data loaders (data.py), the models (models.py) and the training
loop (loop.py) all read these tables; nothing here imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.records import DIRECTIONS  # noqa: F401 - the catalog names every choice a preset makes

METRICS_BUILTIN = ("val_acc", "val_loss", "train_loss")
MODEL_KINDS = ("mlp", "cnn", "resnet18")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
# name -> the torch.nn module class (models.py builds them by these names)
ACTIVATIONS: dict[str, str] = {
    "relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU", "gelu": "GELU",
}
INITS = ("default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal")
SCHEDULES = ("constant", "step", "exponential", "cosine")


@dataclass(frozen=True)
class DatasetInfo:
    """What validation needs to know about a dataset, without loading it."""

    channels: int
    size: int
    classes: int | None
    source: str


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(1, 8, 10, "scikit-learn's 8x8 handwritten digits (bundled, no download)"),
    "mnist": DatasetInfo(1, 28, 10, "torchvision MNIST"),
    "fashion-mnist": DatasetInfo(1, 28, 10, "torchvision FashionMNIST"),
    "cifar10": DatasetInfo(3, 32, 10, "torchvision CIFAR10"),
    "imagefolder": DatasetInfo(3, 224, None, "your own images in class folders (torchvision ImageFolder)"),
}

# [data] keys: name -> (python types, check, what it means); dataset-specific ones listed after.
_DATA_KEYS: dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]] = {
    "dataset": ((str,), lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "val_fraction": ((float,), lambda v: 0 < v < 1, "a fraction of the training set, 0 < x < 1"),
    "split_seed": ((int,), lambda v: v >= 0, "a whole number >= 0"),
    "augment": ((bool,), lambda v: True, "true or false"),
    "download": ((bool,), lambda v: True, "true or false"),
    "root": ((str,), lambda v: bool(v), "a folder path"),
    "num_workers": ((int,), lambda v: v >= 0, "a whole number >= 0"),
}
_DATA_ONLY = {
    "root": ("imagefolder",),
    "num_workers": ("imagefolder",),
    "download": ("mnist", "fashion-mnist", "cifar10"),
}
_MODEL_KEYS: dict[str, dict[str, tuple[tuple[type, ...], Callable[[Any], bool], str]]] = {
    "mlp": {},
    "cnn": {"batchnorm": ((bool,), lambda v: True, "true or false")},
    "resnet18": {
        "stem": (
            (str,),
            lambda v: v in ("auto", "small", "standard"),
            "auto, small (3x3 conv, no max-pool: 32x32 images) or standard (7x7 conv and max-pool)",
        )
    },
}


@dataclass(frozen=True)
class TrainerParam:
    """A hyperparameter the built-in trainer understands: its type, default and valid values."""

    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    models: tuple[str, ...] = MODEL_KINDS
    help: str = ""

    def domain(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.type is bool:
            return "true or false"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        return f"a {'whole number' if self.type is int else 'number'} in {lo}{self.low:g}, {self.high:g}{hi}"

    def valid(self, v: Any) -> bool:
        if self.type is bool:
            return isinstance(v, bool)
        if self.type is str:
            return isinstance(v, str) and (self.choices is None or v in self.choices)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if self.type is int and not (isinstance(v, int) or float(v).is_integer()):
            return False
        if not math.isfinite(v):
            return False
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return False
        return not (self.high is not None and (v > self.high or (self.high_open and v == self.high)))


_ALL = MODEL_KINDS
TRAINER_PARAMS: dict[str, TrainerParam] = {
    "lr": TrainerParam(float, 1e-3, 0, 10, low_open=True, help="learning rate"),
    "optimizer": TrainerParam(str, "adam", choices=OPTIMIZERS),
    "momentum": TrainerParam(float, 0.9, 0, 1, high_open=True, help="SGD / RMSprop momentum"),
    "nesterov": TrainerParam(bool, False, help="Nesterov momentum (SGD)"),
    "beta1": TrainerParam(float, 0.9, 0, 1, high_open=True, help="Adam / AdamW beta1"),
    "beta2": TrainerParam(float, 0.999, 0, 1, high_open=True, help="Adam / AdamW beta2"),
    "weight_decay": TrainerParam(float, 0.0, 0, 1),
    "batch_size": TrainerParam(int, 64, 1, 65536),
    "schedule": TrainerParam(str, "constant", choices=SCHEDULES, help="learning-rate schedule over max_epochs"),
    "patience": TrainerParam(int, 0, 0, 100000, help="early stopping: epochs without improvement; 0 = off"),
    "train_fraction": TrainerParam(float, 1.0, 0, 1, low_open=True, help="fraction of the training split used"),
    "image_size": TrainerParam(int, 0, 4, 1024, help="images are resized to this (default: the dataset's size)"),
    "dropout": TrainerParam(float, 0.0, 0, 1, high_open=True),
    "activation": TrainerParam(str, "relu", choices=ACTIVATIONS, models=("mlp", "cnn")),
    "init": TrainerParam(str, "default", choices=INITS, models=("mlp", "cnn"), help="weight initialisation"),
    "hidden_layers": TrainerParam(int, 1, 0, 16, models=("mlp",)),
    "units": TrainerParam(int, 128, 1, 65536, models=("mlp", "cnn"), help="hidden units (cnn: the dense head)"),
    "conv_blocks": TrainerParam(int, 2, 1, 8, models=("cnn",)),
    "filters": TrainerParam(int, 32, 1, 4096, models=("cnn",), help="filters of the first block; doubled per block"),
    "kernel_size": TrainerParam(int, 3, 1, 15, models=("cnn",), help="kernel width"),
}

_TOP_KEYS = (
    "name",
    "description",
    "metric",
    "direction",
    "constraints",
    "max_epochs",
    "data",
    "model",
    "defaults",
    "space",
    "objective",
    "backend",
    "workers",
    "fuse",
    "strategy",
    "time",
    "total_epochs",
    "target",
)


def trainer_params(kind: str) -> dict[str, TrainerParam]:
    """The hyperparameters the built-in trainer reads for a model kind."""
    return {k: p for k, p in TRAINER_PARAMS.items() if kind in p.models}


# ------------------------------------------------------------------------------------------ where the data is


def default_data_dir() -> Path:
    """``$TUITUNE_DATA``, else the user cache directory's ``data`` folder."""
    env = os.environ.get("TUITUNE_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tuitune")) / "data"


def on_disk(data: Mapping[str, Any], data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether a preset's ``[data]`` can be read without a download (what the files ``data.load_data`` reads
    look like, not read): the bundled digits, an image folder that exists, a torchvision dataset's files or
    archives in its folder."""
    name = data.get("dataset")
    if name == "digits":
        return True
    if name == "imagefolder":
        return Path(str(data.get("root", "images"))).expanduser().is_dir()
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if name == "cifar10":
        return (root / "cifar-10-batches-py").is_dir() or (root / "cifar-10-python.tar.gz").is_file()
    folder = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}.get(str(name))
    raw = root / folder / "raw" if folder else None
    return raw is not None and raw.is_dir() and any(raw.iterdir())

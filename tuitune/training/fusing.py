"""Provides which built-in-trainer configs can train together as one fused array, without torch.

``fuse_key(preset, config)`` is equal for two configs exactly when they build the same graph on the same
data stream shapes (model kind and its options, layers, units, filters, kernel, activation, batch size,
image size, train fraction, whether dropout is on, the dataset table), so the coordinator can group
pending configs by it. The hyperparameters an array holds per member (``MEMBER_PARAMS``: learning rate,
optimizer and its settings, weight decay, dropout rate, schedule, patience, initialisation) do not enter it.

``parse_fuse(value)`` validates the ``--fuse N|auto|off`` option value; ``auto_members(step_seconds)``
turns a measured step time into an array size.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

# Per-member hyperparameters: each array member has its own value (fused.py keeps them as tensors).
MEMBER_PARAMS = frozenset(
    {"lr", "optimizer", "momentum", "nesterov", "beta1", "beta2", "weight_decay", "dropout", "schedule", "patience", "init"}
)
# Model kinds the fused trainer builds layer by layer (resnet18's residual graph is not fused).
FUSABLE_KINDS = ("mlp", "cnn")
# Datasets held on the device as tensors (an image folder streams through a DataLoader: not fused).
FUSABLE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
MAX_MEMBERS = 64


def _frozen(v: Any) -> Hashable:
    if isinstance(v, Mapping):
        return tuple(sorted((str(k), _frozen(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_frozen(x) for x in v)
    if isinstance(v, float) and v.is_integer():
        return int(v)  # 32 and 32.0 build the same layer
    return v if isinstance(v, Hashable) else repr(v)


def fuse_key(preset: Any, config: Mapping[str, Any]) -> Hashable | None:
    """The architecture key of ``config`` under ``preset`` (a ``Preset``), or None when it cannot be fused.

    None for a preset that runs the user's own objective, a model kind outside ``FUSABLE_KINDS`` and data
    that streams from an image folder.
    """
    if getattr(preset, "objective", None) is not None:
        return None
    model = dict(getattr(preset, "model", None) or {})
    data = dict(getattr(preset, "data", None) or {})
    if model.get("kind") not in FUSABLE_KINDS or data.get("dataset") not in FUSABLE_DATASETS:
        return None
    cfg = {**dict(getattr(preset, "defaults", None) or {}), **dict(config)}
    shape = {k: v for k, v in cfg.items() if k not in MEMBER_PARAMS}
    try:
        dropout_on = float(cfg.get("dropout", 0.0)) > 0
    except (TypeError, ValueError):
        return None
    return (
        str(getattr(preset, "name", "")),
        _frozen(model),
        _frozen(data),
        int(getattr(preset, "max_epochs", 0)),
        _frozen(shape),
        dropout_on,
    )


def parse_fuse(value: Any, *, where: str = "--fuse") -> int | str:
    """The value of the fuse option: an array size 1..MAX_MEMBERS (1 = off), or ``"auto"``.

    Accepts ``N`` (int or digit string), ``"auto"`` and ``"off"`` (-> 1); raises ValueError with one line
    naming ``where`` and what to write otherwise.
    """
    if isinstance(value, str):
        s = value.strip().lower()
        if s == "auto":
            return "auto"
        if s in ("off", "no", "false"):
            return 1
        if s.isdigit():
            value = int(s)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {value!r} is not an array size; use a whole number 1..{MAX_MEMBERS}, auto or off")
    if not 1 <= value <= MAX_MEMBERS:
        raise ValueError(f"{where}: {value} is out of range; use a whole number 1..{MAX_MEMBERS}, auto or off")
    return value


# A step shorter than this is launch- or interpreter-bound: fusing more members costs little extra time.
AUTO_TARGET_S = 0.02


def auto_members(step_seconds: float, *, cap: int = 16) -> int:
    """Array size for ``--fuse auto`` from one solo step's measured time on the device.

    Members are added while an array step (about ``members`` x the arithmetic, plus the fixed launch
    cost) stays near ``AUTO_TARGET_S``: a 1 ms step gives ``cap`` (16), 5 ms gives 4, 20 ms or more 1.
    """
    if not step_seconds > 0:
        return 1
    n = int(AUTO_TARGET_S / step_seconds)
    return max(1, min(cap, MAX_MEMBERS, n))

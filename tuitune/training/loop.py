"""Provides the built-in trainer: the objective behind presets with ``[data]`` and ``[model]``.

One trial: seed, build the model, optimizer and schedule from the config, restore the trial's last
checkpoint if it has one, then per epoch train, validate, report and checkpoint, stopping early when
the monitored metric stops improving. On CUDA it trains in bf16 autocast with channels-last convolutions.
A checkpoint holds every state the next epoch depends on (weights, optimizer, schedule, RNGs, early
stopping), so a resumed or promoted trial continues exactly where a straight run would be.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tuitune.core.errors import PresetError
from tuitune.core.records import Direction
from tuitune.core.run.memory import release_memory
from tuitune.training.catalog import METRICS_BUILTIN
from tuitune.training.data import StreamData, TensorData, load_data
from tuitune.training.devices import device_name, resolve_device
from tuitune.training.models import build_model
from tuitune.training.presets import Preset
from tuitune.training.step import compiled, step_mode

CHECKPOINT_VERSION = 1
# Below this many parameter-samples per step (parameters x batch size), a CPU step is too small for
# intra-op threads to pay: their start-up and spin-waits cost more than they save, and on a busy machine
# they make a tiny model 10x slower (measured: digits-mlp 1.1 s on one thread, 10-20 s on two).
SMALL_STEP = 5_000_000


def trial_seed(session_seed: int, number: int) -> int:
    """The seed of trial ``number`` in a session: independent streams per (session seed, trial)."""
    return int(np.random.SeedSequence([int(session_seed) & 0xFFFFFFFF, int(number)]).generate_state(1)[0])


def make_objective(
    preset: Preset,
    *,
    device: str | torch.device | None = None,
    data_dir: str | None = None,
    seed: int = 0,
) -> Callable[[dict[str, Any], Any], float | None]:
    """The objective ``objective(config, trial)`` that trains a preset's model on its data.

    Args:
        preset: a built-in-trainer preset (with ``[data]`` and ``[model]``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or None for the best available.
        data_dir: where torchvision datasets live (default ``$TUITUNE_DATA`` or the user cache).
        seed: the session seed; trial n is seeded from (seed, n).
    """
    if preset.objective is not None:
        raise PresetError(f"{preset.path}: preset {preset.name!r} runs {preset.objective}; use load_objective()")
    dev = resolve_device(device)  # an unavailable device fails now, not in the first trial
    step_mode(dev)  # so does a bad TUITUNE_STEP

    def objective(config: dict[str, Any], trial: Any) -> float | None:
        info = getattr(trial, "info", None)
        if isinstance(info, dict):  # provenance stored with the trial
            info.update(device=str(dev), device_name=device_name(dev), seed=seed, trial_seed=trial_seed(seed, trial.number))
        return train(preset, config, trial, device=dev, data_dir=data_dir, seed=seed)

    objective.preset = preset  # type: ignore[attr-defined]
    objective.device = dev  # type: ignore[attr-defined]
    from tuitune.training.fused import attach  # fused.py builds on this module's pieces

    attach(objective, preset, dev, data_dir, seed)  # objective.train_array(configs, trials), objective.fuse_key(config)
    return objective


# ------------------------------------------------------------------------------------------ pieces


def make_optimizer(cfg: dict[str, Any], params: Any, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer of a config. A parameter the config lacks (a conditional one inactive for this optimizer,
    or a config written by hand) takes torch's default."""
    name, lr, wd = cfg["optimizer"], float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    if name == "sgd":
        momentum = float(cfg.get("momentum", 0.0))
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=momentum,
            weight_decay=wd,
            nesterov=bool(cfg.get("nesterov", False)) and momentum > 0,
        )
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        extra = {"fused": True} if device.type == "cuda" else {}
        betas = (float(cfg.get("beta1", 0.9)), float(cfg.get("beta2", 0.999)))
        return cls(params, lr=lr, betas=betas, weight_decay=wd, **extra)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=float(cfg.get("momentum", 0.0)), weight_decay=wd)
    raise ValueError(f"optimizer {name!r} is unknown; use sgd, adam, adamw or rmsprop")


def make_scheduler(name: str, optimizer: torch.optim.Optimizer, horizon: int) -> Any | None:
    """An epoch-wise schedule over ``horizon`` epochs (the preset's max_epochs, whatever a trial's budget).

    step: x0.1 every third of the horizon; exponential: down to 1% at the horizon; cosine: to 0 at the horizon.
    """
    s = torch.optim.lr_scheduler
    if name == "constant":
        return None
    if name == "step":
        return s.StepLR(optimizer, step_size=max(1, round(horizon / 3)), gamma=0.1)
    if name == "exponential":
        return s.ExponentialLR(optimizer, gamma=0.01 ** (1.0 / max(1, horizon)))
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=max(1, horizon))
    raise ValueError(f"schedule {name!r} is unknown; use constant, step, exponential or cosine")


class EarlyStopping:
    """Stops after ``patience`` epochs without improvement of the monitored metric (patience 0: never)."""

    def __init__(self, patience: int, direction: str) -> None:
        self.patience = int(patience)
        self.sign = Direction(direction).sign
        self.best = math.inf
        self.bad = 0
        self.stopped = False

    def update(self, value: float) -> bool:
        v = self.sign * value
        if v < self.best:
            self.best, self.bad = v, 0
        else:
            self.bad += 1
        self.stopped = self.patience > 0 and self.bad >= self.patience
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        return {"best": float(self.best), "bad": self.bad, "stopped": self.stopped}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.best, self.bad, self.stopped = float(d["best"]), int(d["bad"]), bool(d["stopped"])


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------ one trial


def train(
    preset: Preset,
    config: dict[str, Any],
    trial: Any,
    *,
    device: torch.device,
    data_dir: str | None = None,
    seed: int = 0,
) -> float | None:
    """Runs (or continues) one trial; returns None (the runner takes the metric at the best epoch)."""
    cfg = {**preset.defaults, **config}
    data = load_data(preset.data, data_dir=data_dir, device=device)
    s = trial_seed(seed, trial.number)
    torch.manual_seed(s)  # weights and dropout; restored from the checkpoint when resuming
    gen = data.make_generator(s ^ 0x5EED)  # batch order and augmentation
    kind = preset.model["kind"]
    channels_last = device.type == "cuda" and kind in ("cnn", "resnet18")
    model: nn.Module | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    threads = torch.get_num_threads()
    try:
        model = build_model(kind, cfg, channels=data.channels, classes=data.num_classes, options=preset.model)
        model = model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
        if device.type == "cpu":
            torch.set_num_threads(cpu_threads(model, int(cfg["batch_size"]), threads))
        optimizer = make_optimizer(cfg, model.parameters(), device)
        scheduler = make_scheduler(cfg["schedule"], optimizer, max(preset.max_epochs, int(trial.budget)))
        monitor = preset.metric if preset.metric in METRICS_BUILTIN else "val_loss"
        direction = preset.direction if monitor == preset.metric else "minimize"
        stopper = EarlyStopping(cfg["patience"], direction)
        step = compiled(step_loss, step_mode(device))

        state = trial.restore()
        if state is not None:
            _load_checkpoint(state, _Parts(model, optimizer, scheduler, stopper, gen, device))
            if stopper.stopped:  # it had stopped early: a promotion adds no epochs
                return None
        for epoch in trial.epochs():
            t0 = time.perf_counter()
            lr = float(optimizer.param_groups[0]["lr"])
            train_loss = _train_epoch(model, optimizer, data, cfg, gen, device, channels_last, step)
            val_loss, val_acc = evaluate(model, data, cfg, device, channels_last)
            if scheduler is not None:
                scheduler.step()
            metrics = {"train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc}
            trial.report(**metrics, lr=lr, epoch_seconds=time.perf_counter() - t0)
            stopper.update(metrics[monitor])
            trial.checkpoint(_checkpoint(epoch, _Parts(model, optimizer, scheduler, stopper, gen, device)))
            if stopper.stopped:
                break
        return None
    except torch.cuda.OutOfMemoryError as e:
        raise without_frames(e) from None
    finally:
        del model, optimizer, scheduler
        torch.set_num_threads(threads)
        release_memory()  # the trial's model and optimizer, and the CUDA / MPS cache


def cpu_threads(model: nn.Module, batch_size: int, current: int) -> int:
    """Intra-op threads for a CPU trial: ``$TUITUNE_CPU_THREADS``, else 1 for small steps, else ``current``."""
    env = os.environ.get("TUITUNE_CPU_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    params = sum(p.numel() for p in model.parameters())
    return 1 if params * batch_size < SMALL_STEP else current


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorData | StreamData,
    cfg: dict[str, Any],
    gen: torch.Generator,
    device: torch.device,
    channels_last: bool,
    step: Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.device], torch.Tensor] | None = None,
) -> float:
    step = step or step_loss
    model.train()
    total = torch.zeros((), device=device)  # summed on the device: one sync per epoch, not per batch
    count = 0
    for x, y in data.train_batches(int(cfg["batch_size"]), gen, float(cfg["train_fraction"]), int(cfg["image_size"])):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = step(model, x, y, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().float() * len(y)
        count += len(y)
    return float(total.item()) / max(1, count)


def step_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A training batch's loss: what ``TUITUNE_STEP=compile|graph`` compiles (step.py)."""
    with _autocast(device):
        return F.cross_entropy(model(x), y)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: TensorData | StreamData,
    cfg: dict[str, Any],
    device: torch.device,
    channels_last: bool = False,
) -> tuple[float, float]:
    """Validation loss and accuracy on the held-out part of the training set."""
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n = 0
    for x, y in data.val_batches(int(cfg["batch_size"]), int(cfg["image_size"])):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
        n += len(y)
    return float(loss_sum.item()) / max(1, n), float(correct.item()) / max(1, n)


# ------------------------------------------------------------------------------------------ checkpoints


@dataclass
class _Parts:
    """What a trial's checkpoint holds besides its epoch: saved by ``_checkpoint``, restored by
    ``_load_checkpoint``."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    stopper: EarlyStopping
    gen: torch.Generator
    device: torch.device


def _checkpoint(epoch: int, parts: _Parts) -> dict[str, Any]:
    """Everything the next epoch depends on; only tensors, dicts, lists, numbers and strings (weights_only).

    The state dicts alias the live tensors: ``trial.checkpoint`` serialises before training goes on.
    """
    rng: dict[str, Any] = {"torch": torch.get_rng_state(), "data": parts.gen.get_state()}
    if parts.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(parts.device)
    return {
        "version": CHECKPOINT_VERSION,
        "epoch": int(epoch),
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict() if parts.scheduler is not None else {},
        "early_stopping": parts.stopper.state_dict(),
        "rng": rng,
    }


def _load_checkpoint(state: dict[str, Any], parts: _Parts) -> None:
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    if parts.scheduler is not None and state.get("scheduler"):
        parts.scheduler.load_state_dict(state["scheduler"])
    parts.stopper.load_state_dict(state["early_stopping"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"].cpu())
    parts.gen.set_state(rng["data"].cpu())
    if parts.device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"].cpu(), parts.device)


def without_frames(e: BaseException) -> BaseException:
    """``e`` with its traceback dropped and kept as text in a note: the frames of an out-of-memory error hold
    the activations, which cannot be freed while the error is alive."""
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    e = e.with_traceback(None)
    if hasattr(e, "add_note"):
        e.add_note(text)
    return e

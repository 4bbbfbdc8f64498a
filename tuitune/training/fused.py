"""Provides fused trial arrays: several built-in-trainer trials that share an architecture train as one model.

Each member is built exactly as its solo trial would be (``torch.manual_seed(trial seed)`` then
``build_model``, so the same initial weights), then the members' parameters are stacked
(``torch.func.stack_module_state``) and the array runs one forward and backward pass for all of them:
dense layers as one batched matmul, convolutions, batch norm and pooling as grouped channels (member m's
channels are block m of ``M x C``), so no member ever sees another's numbers. Everything a solo trial
draws at random is drawn per member from its own generators in the solo order: the batch order and
augmentation from the member's data generator, dropout masks from a generator holding the state the global
RNG would have in the solo run. A member's learning curve therefore equals its solo run's within float
rounding (tests/unit/test_fused.py holds them together for each optimizer, with dropout and a schedule).

Per-member hyperparameters (learning rate and schedule, weight decay, momentum / nesterov, betas, dropout
rate, patience, init, even the optimizer) live in a "ghost" torch optimizer and scheduler per member, built
by loop.py's own ``make_optimizer`` / ``make_scheduler`` on a one-element parameter: they hold the lr
schedule and the param groups exactly as the solo trial's, and give the checkpoint its solo format. The
update itself is fusedopt.py's functional SGD / Adam / AdamW / RMSprop over the stacked tensors.

Each member is its own trial: its own ``restore()``, ``epochs()``, ``report()`` and ``checkpoint()``
(loadable by the solo trainer, and a solo checkpoint resumes here), its own early stopping; it leaves the
array when its ``epochs()`` ends (budget reached, stopped, aborted) or raises, when early stopping ends it,
or when its ``report()`` raises (a NaN metric fails that member alone).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tuitune.core.run.memory import release_memory
from tuitune.training.catalog import METRICS_BUILTIN
from tuitune.training.data import TensorData, crop_flip, load_data
from tuitune.training.fusedopt import FusedOptimizer
from tuitune.training.fusing import auto_members, fuse_key, parse_fuse
from tuitune.training.loop import (
    CHECKPOINT_VERSION,
    EarlyStopping,
    _autocast,
    cpu_threads,
    make_optimizer,
    make_scheduler,
    trial_seed,
    without_frames,
)
from tuitune.training.models import build_model
from tuitune.training.presets import Preset
from tuitune.training.step import compiled, step_mode


@dataclass
class Member:
    """One trial of an array: its trial handle and everything the solo loop keeps per trial."""

    trial: Any
    cfg: dict[str, Any]
    ghost: torch.optim.Optimizer  # the solo optimizer's param groups (lr, betas, ...) on a one-element parameter
    scheduler: Any
    stopper: EarlyStopping
    data_gen: torch.Generator  # batch order and augmentation (the solo data generator)
    drop_gen: torch.Generator  # dropout masks (the solo run's global RNG after building the model)
    cpu_rng: torch.Tensor | None = None  # on a GPU: the CPU RNG state the solo checkpoint also holds
    epochs: Any = None  # the trial's epochs() iterator
    epoch: int = 0
    steps: int = 0  # optimizer steps taken (Adam's and RMSprop's "step")
    result: Any = None  # what the solo objective returns, or the exception it would raise
    done: bool = False
    ready: bool = False  # asked for its next epoch, which the array trains next
    state: dict[str, Any] | None = None  # a restored checkpoint, until the array is stacked

    @property
    def lr(self) -> float:
        return float(self.ghost.param_groups[0]["lr"])


def can_fuse(preset: Preset, configs: list[dict[str, Any]]) -> bool:
    """Whether ``configs`` form one array under ``preset`` (one fuse key, and not None)."""
    keys = {fuse_key(preset, c) for c in configs}
    return len(keys) == 1 and None not in keys


def train_array(
    preset: Preset,
    configs: list[dict[str, Any]],
    trials: list[Any],
    *,
    device: torch.device,
    data_dir: str | None = None,
    seed: int = 0,
    refill: Callable[[int], list[tuple[dict[str, Any], Any]]] | None = None,
    capacity: int | None = None,
    on_leave: Callable[[Any, Any], None] | None = None,
) -> list[Any]:
    """Trains ``trials`` (with ``configs``) as one fused array; one result per trial, in order.

    ``on_leave(trial, result)``, when given, is called as each member leaves the array (its last epoch
    reported and checkpointed), with the result it will have in the returned list: a worker reports the
    member's end then, not when the whole array returns.

    A result is what the solo objective returns (None: the runner takes the metric at the best epoch), or
    the exception instance the solo objective would have raised for that trial (its ``report()`` of a NaN,
    its ``epochs()`` raising); the others train on. An error of the array as a whole (out of memory, a bad
    preset) is raised, as the solo trainer raises it.

    ``refill(free)``, when given, is asked between epochs while fewer than ``capacity`` (default: the
    number of trials) members train, with the number of free places; it returns ``(config, trial)`` pairs
    of the same architecture that join the array at their next epoch (a promoted trial from its
    checkpoint), or ``[]``. Their results follow the first trials', in the order they joined.
    """
    if len(configs) != len(trials):
        raise ValueError(f"train_array: {len(configs)} configs for {len(trials)} trials")
    if not trials:
        return []
    if not can_fuse(preset, configs):
        raise ValueError("train_array: these configs do not share an architecture (fuse_key differs or is None)")
    key = fuse_key(preset, configs[0])
    cap = max(len(trials), int(capacity or 0))
    data = load_data(preset.data, data_dir=data_dir, device=device)
    assert isinstance(data, TensorData)
    monitor = preset.metric if preset.metric in METRICS_BUILTIN else "val_loss"
    direction = preset.direction if monitor == preset.metric else "minimize"
    members: list[Member] = []
    threads = torch.get_num_threads()
    array: Array | None = None

    def build(pairs: list[tuple[dict[str, Any], Any]]) -> tuple[list[nn.Module], list[Member]]:
        modules, live = [], []
        for config, trial in pairs:
            if fuse_key(preset, config) != key:
                raise ValueError(f"train_array: trial {trial.number} does not share the array's architecture")
            model, member = _new_member(preset, {**preset.defaults, **config}, trial, data, device, seed, direction)
            members.append(member)
            if not member.done:
                modules.append(model)
                live.append(member)
            else:
                leave(member)
        return modules, live

    def leave(member: Member) -> None:
        if on_leave is not None:
            on_leave(member.trial, member.result)

    def grow(arr: Array | None, pairs: list[tuple[dict[str, Any], Any]] | None = None) -> Array | None:
        if pairs is None:
            free = cap - (len(arr) if arr is not None else 0)
            pairs = list(refill(free))[:free] if refill is not None and free > 0 else []
        modules, live = build(pairs)
        if not live:
            return arr
        if arr is None:
            if device.type == "cpu":
                torch.set_num_threads(cpu_threads(modules[0], int(live[0].cfg["batch_size"]) * cap, threads))
            return Array(modules[0], modules, live, device)
        arr.add(modules, live)
        return arr

    try:
        array = grow(None, list(zip(configs, trials)))
        _run(array, data, monitor, grow, leave)
        return [m.result for m in members]
    except torch.cuda.OutOfMemoryError as e:
        raise without_frames(e) from None
    finally:
        del array
        torch.set_num_threads(threads)
        release_memory()


def _new_member(
    preset: Preset, cfg: dict[str, Any], trial: Any, data: TensorData, device: torch.device, seed: int, direction: str
) -> tuple[nn.Module, Member]:
    """A member built as the solo trial builds itself: the same seeds, model, optimizer, schedule and restore."""
    s = trial_seed(seed, trial.number)
    with torch.random.fork_rng(devices=[]):  # the solo run seeds the global RNG; the array leaves it alone
        torch.manual_seed(s)
        model = build_model(preset.model["kind"], cfg, channels=data.channels, classes=data.num_classes, options=preset.model)
        drop_gen = torch.Generator()
        drop_gen.set_state(torch.get_rng_state())
    cpu_rng = None
    if device.type != "cpu":  # the solo run's dropout draws on the device's RNG: statistically the same
        cpu_rng = drop_gen.get_state()
        drop_gen = torch.Generator(device=device).manual_seed(s)
    model = model.to(device)
    ghost_param = torch.zeros(1, device=device, requires_grad=True)
    ghost = make_optimizer(cfg, [ghost_param], device)
    scheduler = make_scheduler(cfg["schedule"], ghost, max(preset.max_epochs, int(trial.budget)))
    ghost.step()  # no gradient: changes nothing; tells the scheduler that the optimizer steps
    member = Member(
        trial=trial,
        cfg=cfg,
        ghost=ghost,
        scheduler=scheduler,
        stopper=EarlyStopping(cfg["patience"], direction),
        data_gen=data.make_generator(s ^ 0x5EED),
        drop_gen=drop_gen,
        cpu_rng=cpu_rng,
    )
    try:
        state = trial.restore()
        if state is not None:
            _load_member(member, model, state, device)
            if member.stopper.stopped:  # it had stopped early: a promotion adds no epochs
                member.done = True
        if not member.done:
            member.epochs = iter(trial.epochs())
    except Exception as e:  # noqa: BLE001 - this member fails alone, as its solo run would
        member.result, member.done = e, True
    return model, member


def _load_member(member: Member, model: nn.Module, state: dict[str, Any], device: torch.device) -> None:
    """A checkpoint (the solo trainer's format) into the member's model, ghost optimizer and generators."""
    model.load_state_dict(state["model"])
    opt = state["optimizer"]
    member.ghost.load_state_dict({"state": {}, "param_groups": [{**opt["param_groups"][0], "params": [0]}]})
    if member.scheduler is not None and state.get("scheduler"):
        member.scheduler.load_state_dict(state["scheduler"])
    member.stopper.load_state_dict(state["early_stopping"])
    member.epoch = int(state.get("epoch", 0))
    rng = state["rng"]
    member.data_gen.set_state(rng["data"].cpu())
    if member.drop_gen.device.type == "cpu":
        member.drop_gen.set_state(rng["torch"].cpu())
    else:
        member.cpu_rng = rng["torch"].cpu()
        if "cuda" in rng:
            member.drop_gen.set_state(rng["cuda"].cpu())
    steps = [v.get("step") for v in opt.get("state", {}).values() if isinstance(v, dict) and "step" in v]
    member.steps = int(float(steps[0])) if steps else 0
    member.state = opt  # the per-parameter state, stacked by Array
    if member.steps == 0 and opt.get("state"):  # SGD keeps no step count: it has stepped if it has buffers
        member.steps = 1


class Array:
    """The stacked parameters, buffers and optimizer state of the live members, and the fused step."""

    def __init__(self, template: nn.Module, modules: list[nn.Module], members: list[Member], device: torch.device):
        self.template = template
        self.device = device
        self.members = list(members)
        self.layers = list(template.named_children())
        params, buffers = torch.func.stack_module_state(modules)
        self.names = [n for n, _ in template.named_parameters()]
        # All of a member's parameters in one row of a (M, N) leaf: the optimizer updates each optimizer's
        # members with a handful of whole-array operations, not a handful per parameter tensor.
        self.shapes = [tuple(params[n].shape[1:]) for n in self.names]
        self.sizes = [math.prod(sh) for sh in self.shapes]
        self.flat = torch.cat([params[n].detach().reshape(len(members), -1) for n in self.names], 1).requires_grad_(True)
        self.buffers = {n: b.detach().clone() for n, b in buffers.items()}
        self.keys = list(template.state_dict().keys())
        self.step = compiled(array_losses, step_mode(device))
        self.opt = FusedOptimizer([self.flat], [m.ghost.param_groups[0] for m in members], [m.cfg["optimizer"] for m in members])
        self._load_restored()
        self._sort()

    def _load_restored(self) -> None:
        for i, m in enumerate(self.members):
            if m.state is not None:
                self.opt.load_member(i, self._flat_state(m.state))
                m.state = None

    def _sort(self) -> None:
        """Orders the members by optimizer: each optimizer then updates one contiguous block in place."""
        self.keep(sorted(range(len(self.members)), key=lambda i: self.members[i].cfg["optimizer"]))

    def add(self, modules: list[nn.Module], members: list[Member]) -> None:
        """New members (built and restored as solo trials are) join the stack."""
        params, buffers = torch.func.stack_module_state(modules)
        rows = torch.cat([params[n].detach().reshape(len(members), -1) for n in self.names], 1)
        self.flat = torch.cat([self.flat.detach(), rows]).requires_grad_(True)
        self.buffers = {n: torch.cat([b, buffers[n].detach()]) for n, b in self.buffers.items()}
        self.members += members
        self.opt.add([m.ghost.param_groups[0] for m in members], [m.cfg["optimizer"] for m in members])
        self._load_restored()
        self._sort()

    def _split(self, row: torch.Tensor) -> list[torch.Tensor]:
        """A (..., N) tensor as the per-parameter views (..., *shape)."""
        lead = row.shape[:-1]
        return [t.view(*lead, *sh) for t, sh in zip(row.split(self.sizes, -1), self.shapes)]

    def params(self) -> list[torch.Tensor]:
        """The stacked parameters (M, *shape), as differentiable views of the flat leaf."""
        return self._split(self.flat)

    def _flat_state(self, opt: dict[str, Any]) -> dict[str, Any]:
        """A torch optimizer state dict's per-parameter state as one flat row per state name."""
        per = opt.get("state") or {}
        names = {k for d in per.values() if isinstance(d, dict) for k, v in d.items() if isinstance(v, torch.Tensor) and v.dim()}
        flat: dict[str, Any] = {}
        for name in names:
            parts = []
            for j, size in enumerate(self.sizes):
                t = (per.get(j) or {}).get(name)
                parts.append(t.reshape(-1).to(self.flat.device) if t is not None else torch.zeros(size, device=self.flat.device))
            flat[name] = torch.cat(parts)
        return {"state": {0: flat}}

    def __len__(self) -> int:
        return len(self.members)

    # ---- who stays ------------------------------------------------------------------------------
    def keep(self, keep: list[int]) -> None:
        """Keeps members ``keep`` (indices into the current members, in the order given) in every stacked tensor."""
        if keep == list(range(len(self.members))):
            return
        idx = torch.tensor(keep, device=self.device, dtype=torch.long)
        self.members = [self.members[i] for i in keep]
        self.flat = self.flat.detach().index_select(0, idx).requires_grad_(True)
        self.buffers = {n: b.index_select(0, idx) for n, b in self.buffers.items()}
        self.opt.keep(keep, [self.flat])

    # ---- the model ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """Logits (M, B, classes) of the members for inputs x (M, B, C, H, W), each with its own weights."""
        P = dict(zip(self.names, self.params()))
        M, B = x.shape[0], x.shape[1]
        h = x
        conv = not isinstance(self.layers[0][1], nn.Flatten)
        if conv:  # member m's channels are block m of the M x C channels: grouped convolutions keep them apart
            h = x.transpose(0, 1).reshape(B, M * x.shape[2], *x.shape[3:])
        for name, layer in self.layers:
            if isinstance(layer, nn.Conv2d):
                w = P[f"{name}.weight"]
                b = P.get(f"{name}.bias")
                h = F.conv2d(h, w.flatten(0, 1), None if b is None else b.flatten(), layer.stride, layer.padding, groups=M)
            elif isinstance(layer, nn.BatchNorm2d):
                rm, rv = self.buffers[f"{name}.running_mean"], self.buffers[f"{name}.running_var"]
                h = F.batch_norm(
                    h,
                    rm.view(-1),
                    rv.view(-1),
                    P[f"{name}.weight"].flatten(),
                    P[f"{name}.bias"].flatten(),
                    training=train,
                    momentum=layer.momentum if layer.momentum is not None else 0.1,
                    eps=layer.eps,
                )
                if train:
                    self.buffers[f"{name}.num_batches_tracked"].add_(1)
            elif isinstance(layer, nn.Flatten):
                h = h.reshape(B, M, -1).transpose(0, 1) if conv else h.flatten(2)
                conv = False
            elif isinstance(layer, nn.Linear):
                w, b = P[f"{name}.weight"], P.get(f"{name}.bias")
                h = torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            elif isinstance(layer, nn.Dropout):
                if train and layer.p > 0:
                    h = h * self._dropout_masks(h.shape[1:], h.dtype)
            else:  # activations and pooling act per channel / per element
                h = layer(h)
        return h

    @torch.compiler.disable  # per-member generators: eager even in a compiled step
    def _dropout_masks(self, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
        """Each member's dropout mask for this layer, drawn as ``F.dropout`` draws it on the CPU (bernoulli
        of 1-p from the member's RNG, divided by 1-p)."""
        gen_device = self.members[0].drop_gen.device
        masks = torch.empty((len(self.members), *shape), device=gen_device, dtype=dtype)
        for k, m in enumerate(self.members):  # each row in place: the draws of a fresh tensor of that shape
            masks[k].bernoulli_(1.0 - float(m.cfg["dropout"]), generator=m.drop_gen)
        keep = torch.tensor([1.0 - float(m.cfg["dropout"]) for m in self.members], device=gen_device, dtype=dtype)
        return masks.div_(keep.view(-1, *([1] * len(shape)))).to(self.device)

    # ---- one epoch ------------------------------------------------------------------------------
    def train_epoch(self, data: TensorData) -> list[float]:
        """One epoch for every member, each on its own batch order; the members' mean training losses."""
        cfg = self.members[0].cfg
        bs, image_size = int(cfg["batch_size"]), int(cfg["image_size"])
        n = data.n_train(float(cfg["train_fraction"]))
        M = len(self.members)
        perms = torch.stack([torch.randperm(n, generator=m.data_gen, device=data.device) for m in self.members])
        total = torch.zeros(M, device=self.device)
        count = 0
        lrs = [m.lr for m in self.members]
        for i in range(0, n, bs):
            idx = perms[:, i : i + bs]
            b = idx.shape[1]
            if b < 2 and i > 0:  # as the solo loop: a last batch of one breaks batch norm
                break
            if data.augment:
                xs = torch.cat([crop_flip(data.x_train.index_select(0, idx[k]), m.data_gen) for k, m in enumerate(self.members)])
            else:
                xs = data.x_train.index_select(0, idx.reshape(-1))
            x = data.normalise(xs, image_size)
            x = x.view(M, b, *x.shape[1:])
            y = data.y_train.index_select(0, idx.reshape(-1)).view(M, b)
            losses = self.step(self, x, y)
            grads = torch.autograd.grad(losses.sum(), [self.flat])
            for m in self.members:
                m.steps += 1
            self.opt.step([self.flat], grads, lrs, [m.steps for m in self.members])
            total += losses.detach().float() * b
            count += b
        return [float(t) / max(1, count) for t in total.tolist()]

    @torch.no_grad()
    def evaluate(self, data: TensorData) -> list[tuple[float, float]]:
        """Each member's validation loss and accuracy."""
        cfg = self.members[0].cfg
        M = len(self.members)
        loss_sum = torch.zeros(M, device=self.device, dtype=torch.float64)
        correct = torch.zeros(M, device=self.device, dtype=torch.long)
        n = 0
        for x, y in data.val_batches(int(cfg["batch_size"]), int(cfg["image_size"])):
            with _autocast(self.device):
                logits = self.forward(x.unsqueeze(0).expand(M, *x.shape), train=False)
            for k in range(M):
                loss_sum[k] += F.cross_entropy(logits[k].float(), y, reduction="sum").double()
            correct += (logits.argmax(2) == y).sum(1)
            n += len(y)
        return [(ls / max(1, n), c / max(1, n)) for ls, c in zip(loss_sum.tolist(), correct.tolist())]

    # ---- checkpoints ------------------------------------------------------------------------------
    def checkpoint(self, k: int) -> dict[str, Any]:
        """Member k's state in the solo trainer's checkpoint format (its own copies, not views of the array)."""
        m = self.members[k]
        stacked = {**dict(zip(self.names, self.params())), **self.buffers}
        flat_state = self.opt.member_state(k, m.steps).get(0, {})
        state = {}
        for j, pieces in enumerate(zip(*(self._split(v) if v.dim() else [v] * len(self.names) for v in flat_state.values()))):
            state[j] = {name: t.clone() for name, t in zip(flat_state, pieces)}
        rng: dict[str, Any] = {"data": m.data_gen.get_state()}
        if m.drop_gen.device.type == "cpu":
            rng["torch"] = m.drop_gen.get_state()
        else:
            rng["torch"] = m.cpu_rng if m.cpu_rng is not None else torch.get_rng_state()
            rng["cuda"] = m.drop_gen.get_state()
        return {
            "version": CHECKPOINT_VERSION,
            "epoch": int(m.epoch),
            "model": {key: stacked[key][k].detach().clone() for key in self.keys},
            "optimizer": {
                "state": state,
                "param_groups": [{**m.ghost.param_groups[0], "params": list(range(len(self.names)))}],
            },
            "scheduler": m.scheduler.state_dict() if m.scheduler is not None else {},
            "early_stopping": m.stopper.state_dict(),
            "rng": rng,
        }


def _fill(
    array: Array | None, grow: Callable[[Array | None], Array | None], leave: Callable[[Member], None]
) -> Array | None:
    """Asks every member not yet asked for its next epoch (those whose ``epochs()`` ends or raises leave),
    and lets new members fill the free places, until a round brings none."""
    while True:
        n0 = len(array) if array is not None else 0
        array = grow(array)
        if array is None:
            return None
        grew = len(array) > n0
        keep = []
        for k, m in enumerate(array.members):
            if m.ready:
                keep.append(k)
                continue
            try:
                m.epoch = next(m.epochs)
                m.ready = True
                keep.append(k)
            except StopIteration:
                m.done = True
                leave(m)
            except Exception as e:  # noqa: BLE001 - this member fails alone
                m.result, m.done = e, True
                leave(m)
        array.keep(keep)
        if not grew and len(keep) == n0:  # nobody joined and nobody left: the array is set for this epoch
            return array


def _run(
    array: Array | None, data: TensorData, monitor: str, grow: Callable[[Array | None], Array | None],
    leave: Callable[[Member], None],
) -> None:
    """Epochs until every member has left and none joins: ask each member its next epoch (and fill free
    places), train them all, report each."""
    while True:
        array = _fill(array, grow, leave)
        if array is None or not len(array):
            return
        lrs = [m.lr for m in array.members]
        t_train = time.perf_counter()
        train_losses = array.train_epoch(data)
        evals = array.evaluate(data)
        elapsed = time.perf_counter() - t_train
        keep = []
        for k, m in enumerate(array.members):
            if m.scheduler is not None:
                m.scheduler.step()
            val_loss, val_acc = evals[k]
            metrics = {"train_loss": train_losses[k], "val_loss": val_loss, "val_acc": val_acc}
            try:
                m.trial.report(**metrics, lr=lrs[k], epoch_seconds=elapsed)
                m.stopper.update(metrics[monitor])
                m.trial.checkpoint(array.checkpoint(k))
            except Exception as e:  # noqa: BLE001 - a NaN metric (or a failing store) ends this member alone
                m.result, m.done = e, True
                leave(m)
                continue
            if m.stopper.stopped:
                m.done = True
                leave(m)
                continue
            m.ready = False
            keep.append(k)
        array.keep(keep)


def attach(objective: Callable[..., Any], preset: Preset, device: torch.device, data_dir: str | None, seed: int) -> None:
    """Gives a built-in-trainer objective its ``train_array(configs, trials, *, refill=None, capacity=None,
    on_leave=None)``
    (this module's ``train_array`` on the objective's preset, device and seed, each trial's ``info`` filled
    as the solo objective fills it, plus ``array``: the array's size, and ``array_of``: its first trial) and ``fuse_key(config)``."""
    from tuitune.training.devices import device_name

    def provenance(trials: list[Any], size: int, first: int | None = None) -> None:
        for t in trials:
            info = getattr(t, "info", None)
            if isinstance(info, dict):
                info.update(
                    device=str(device),
                    device_name=device_name(device),
                    seed=seed,
                    trial_seed=trial_seed(seed, t.number),
                    array=size,
                    array_of=first if first is not None else trials[0].number,  # the array's id: its first trial
                )

    def train_array_(
        configs: list[dict[str, Any]],
        trials: list[Any],
        *,
        refill: Callable[[int], list[tuple[dict[str, Any], Any]]] | None = None,
        capacity: int | None = None,
        on_leave: Callable[[Any, Any], None] | None = None,
    ) -> list[Any]:
        size = max(len(trials), int(capacity or 0))
        first = trials[0].number if trials else None
        provenance(trials, size, first)

        def refill_(free: int) -> list[tuple[dict[str, Any], Any]]:
            pairs = list(refill(free)) if refill is not None else []
            provenance([t for _, t in pairs], size, first)
            return pairs

        return train_array(
            preset,
            configs,
            trials,
            device=device,
            data_dir=data_dir,
            seed=seed,
            refill=refill_ if refill is not None else None,
            capacity=capacity,
            on_leave=on_leave,
        )

    objective.train_array = train_array_  # type: ignore[attr-defined]
    objective.fuse_key = lambda config: fuse_key(preset, config)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ --fuse auto


def step_seconds(
    preset: Preset, config: dict[str, Any], *, device: torch.device, data_dir: str | None = None, steps: int = 8
) -> float:
    """One solo training step's time for ``config`` on ``device``: the median of ``steps`` after two warm-up
    steps (synchronised on a GPU), on the preset's real batches."""
    cfg = {**preset.defaults, **config}
    data = load_data(preset.data, data_dir=data_dir, device=device)
    model = build_model(preset.model["kind"], cfg, channels=data.channels, classes=data.num_classes, options=preset.model)
    model = model.to(device).train()
    opt = make_optimizer(cfg, model.parameters(), device)
    gen = data.make_generator(0)
    times: list[float] = []
    threads = torch.get_num_threads()
    try:
        if device.type == "cpu":
            torch.set_num_threads(cpu_threads(model, int(cfg["batch_size"]), threads))
        while len(times) < steps + 2:
            before = len(times)
            for x, y in data.train_batches(int(cfg["batch_size"]), gen, float(cfg["train_fraction"]), int(cfg["image_size"])):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                with _autocast(device):
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - t0)
                if len(times) >= steps + 2:
                    break
            if len(times) == before:  # no batches at all
                break
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[2:] or times) if times else 0.0


def resolve_fuse(
    value: Any, preset: Preset, config: dict[str, Any], *, device: torch.device, data_dir: str | None = None
) -> int:
    """The array size a session uses: ``value`` as ``--fuse`` takes it (N, ``auto``, ``off``), 1 where
    ``config`` cannot be fused, and for ``auto`` ``auto_members`` of a measured solo step on the device."""
    n = parse_fuse(value)
    if fuse_key(preset, config) is None or n == 1:
        return 1
    if n == "auto":
        return auto_members(step_seconds(preset, config, device=device, data_dir=data_dir))
    return int(n)


def array_losses(arr: Array, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The members' mean losses (M,) on a batch x (M, B, ...), y (M, B): what ``TUITUNE_STEP`` compiles (step.py)."""
    M, b = y.shape
    with _autocast(arr.device):
        logits = arr.forward(x, train=True)
        return F.cross_entropy(logits.flatten(0, 1), y.reshape(-1), reduction="none").view(M, b).mean(1)

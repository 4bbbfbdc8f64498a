"""Provides the fused optimizer step: SGD, Adam, AdamW and RMSprop over stacked parameters (member first),
each member with its own hyperparameters.

The maths is torch.optim's single-tensor path as loop.make_optimizer configures it (SGD: dampening 0,
optional nesterov; Adam / AdamW: no amsgrad; RMSprop: alpha 0.99, not centred), written over (M, ...)
tensors with per-member hyperparameters as (M, 1, ...) tensors. Members with different optimizers share
one array: each optimizer updates its own members, a contiguous block of the stack when the array orders
its members by optimizer (fused.Array does), else an index subset gathered and scattered back.

A uniform formula serves momentum 0 too: a zero-initialised buffer with momentum 0 is the gradient itself,
so the update equals torch's momentum-free branch. ``member_state`` writes a member's state in the
format of the torch optimizer's ``state_dict()`` (no momentum buffer where torch keeps none), so a solo
trial can load it, and ``load_member`` reads that format back.
"""

from __future__ import annotations

import math
from typing import Any

import torch

STATES = {
    "sgd": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "rmsprop": ("square_avg", "momentum_buffer"),
}


class FusedOptimizer:
    """Optimizer state for M stacked members; ``groups[i]`` is member i's torch param group (lr, betas, ...)."""

    def __init__(self, params: list[torch.Tensor], groups: list[dict[str, Any]], kinds: list[str]) -> None:
        for k in kinds:
            if k not in STATES:
                raise ValueError(f"optimizer {k!r} is unknown; use sgd, adam, adamw or rmsprop")
        self.kinds = list(kinds)
        self.groups = list(groups)
        names = sorted({s for k in set(kinds) for s in STATES[k]})
        self.state: dict[str, list[torch.Tensor]] = {n: [torch.zeros_like(p.detach()) for p in params] for n in names}
        self._index()

    def _index(self) -> None:
        dev = next(iter(self.state.values()))[0].device
        self.device = dev
        # kind -> (its members, a slice of the stack when they are contiguous, else an index tensor)
        self.by_kind: dict[str, tuple[list[int], slice | torch.Tensor]] = {}
        for kind in dict.fromkeys(self.kinds):
            idx = [i for i, k in enumerate(self.kinds) if k == kind]
            contiguous = idx == list(range(idx[0], idx[-1] + 1))
            sel = slice(idx[0], idx[-1] + 1) if contiguous else torch.tensor(idx, device=dev, dtype=torch.long)
            self.by_kind[kind] = (idx, sel)

    def _hp(self, idx: list[int], key: str, default: float = 0.0) -> torch.Tensor:
        return torch.tensor([float(self.groups[i].get(key, default)) for i in idx], device=self.device)

    def add(self, groups: list[dict[str, Any]], kinds: list[str]) -> None:
        """New members at the end, their state zero (``load_member`` fills a restored one's)."""
        for k in kinds:
            if k not in STATES:
                raise ValueError(f"optimizer {k!r} is unknown; use sgd, adam, adamw or rmsprop")
        some = next(iter(self.state.values()))
        n_new = len(kinds)
        self.state = {
            n: [torch.cat([t, t.new_zeros((n_new, *t.shape[1:]))]) for t in ts] for n, ts in self.state.items()
        }
        for name in sorted({s for k in set(kinds) for s in STATES[k]} - set(self.state)):
            self.state[name] = [t.new_zeros((len(self.kinds) + n_new, *t.shape[1:])) for t in some]
        self.kinds += list(kinds)
        self.groups += list(groups)
        self._index()

    def keep(self, keep: list[int], params: list[torch.Tensor]) -> None:
        """Keeps members ``keep`` (indices into the current members, in order)."""
        sel = torch.tensor(keep, device=self.device, dtype=torch.long)
        self.kinds = [self.kinds[i] for i in keep]
        self.groups = [self.groups[i] for i in keep]
        self.state = {n: [t.index_select(0, sel) for t in ts] for n, ts in self.state.items()}
        self._index()

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: tuple[torch.Tensor, ...], lrs: list[float], steps: list[int]) -> None:
        """One update of every member: ``lrs[i]`` its current learning rate, ``steps[i]`` its step count (this one included)."""
        for kind, (idx, sel) in self.by_kind.items():
            lr = torch.tensor([lrs[i] for i in idx], device=self.device)
            wd = self._hp(idx, "weight_decay")
            if kind == "sgd":
                hp = {"mom": self._hp(idx, "momentum"), "nest": self._hp(idx, "nesterov")}
            elif kind in ("adam", "adamw"):
                b1 = [float(self.groups[i]["betas"][0]) for i in idx]
                b2 = [float(self.groups[i]["betas"][1]) for i in idx]
                st = [steps[i] for i in idx]
                hp = {
                    # complements in double precision on the host, as torch computes ``1 - beta`` (float32's
                    # 1 - 0.999 is 1.3e-5 off: a systematic difference, not rounding)
                    "1-b1": torch.tensor([1 - b for b in b1], device=self.device),
                    "b2": torch.tensor(b2, device=self.device),
                    "1-b2": torch.tensor([1 - b for b in b2], device=self.device),
                    "decay": torch.tensor(
                        [1 - lrs[i] * float(self.groups[i].get("weight_decay", 0.0)) for i in idx], device=self.device
                    ),
                    "eps": self._hp(idx, "eps", 1e-8),
                    # as torch: step size and sqrt of the second bias correction in double precision on the host
                    "step_size": torch.tensor([lr_ / (1 - a**s) for lr_, a, s in zip((lrs[i] for i in idx), b1, st)], device=self.device),
                    "bc2": torch.tensor([math.sqrt(1 - b**s) for b, s in zip(b2, st)], device=self.device),
                }
            else:
                alpha = [float(self.groups[i].get("alpha", 0.99)) for i in idx]
                hp = {
                    "mom": self._hp(idx, "momentum"),
                    "alpha": torch.tensor(alpha, device=self.device),
                    "1-alpha": torch.tensor([1 - a for a in alpha], device=self.device),
                    "eps": self._hp(idx, "eps", 1e-8),
                }
            names = STATES[kind]
            for j, (p, g) in enumerate(zip(params, grads)):
                shape = (-1,) + (1,) * (p.dim() - 1)
                v = {k: t.view(shape) for k, t in hp.items()}
                if isinstance(sel, slice):  # views: the update lands in place
                    P, G = p.data[sel], g[sel]
                    S = {n: self.state[n][j][sel] for n in names}
                else:
                    P, G = p.data.index_select(0, sel), g.index_select(0, sel)
                    S = {n: self.state[n][j].index_select(0, sel) for n in names}
                _update(kind, P, G, S, lr.view(shape), wd.view(shape), v)
                if not isinstance(sel, slice):
                    p.data.index_copy_(0, sel, P)
                    for n in names:
                        self.state[n][j].index_copy_(0, sel, S[n])

    # ---- checkpoints ------------------------------------------------------------------------------
    def member_state(self, i: int, steps: int) -> dict[int, dict[str, torch.Tensor]]:
        """Member i's per-parameter state as torch's optimizer ``state_dict()["state"]`` holds it."""
        kind, g = self.kinds[i], self.groups[i]
        out: dict[int, dict[str, torch.Tensor]] = {}
        n_params = len(next(iter(self.state.values())))
        for j in range(n_params):
            d: dict[str, torch.Tensor] = {}
            if kind == "sgd":
                if float(g.get("momentum", 0.0)) != 0:
                    d["momentum_buffer"] = self.state["momentum_buffer"][j][i].clone()
            elif kind in ("adam", "adamw"):
                d = {
                    "step": torch.tensor(float(steps)),
                    "exp_avg": self.state["exp_avg"][j][i].clone(),
                    "exp_avg_sq": self.state["exp_avg_sq"][j][i].clone(),
                }
            else:
                d = {"step": torch.tensor(float(steps)), "square_avg": self.state["square_avg"][j][i].clone()}
                if float(g.get("momentum", 0.0)) > 0:
                    d["momentum_buffer"] = self.state["momentum_buffer"][j][i].clone()
            if d:
                out[j] = d
        return out

    def load_member(self, i: int, opt_state: dict[str, Any]) -> None:
        """Member i's state from a torch optimizer ``state_dict()`` (a solo checkpoint's ``"optimizer"``)."""
        for j, d in (opt_state.get("state") or {}).items():
            for name, t in d.items():
                if name in self.state and isinstance(t, torch.Tensor):
                    self.state[name][int(j)][i].copy_(t)


def _update(
    kind: str,
    p: torch.Tensor,
    g: torch.Tensor,
    s: dict[str, torch.Tensor],
    lr: torch.Tensor,
    wd: torch.Tensor,
    hp: dict[str, torch.Tensor],
) -> None:
    """torch.optim's single-tensor update for one stacked parameter ``p`` (in place, and its state ``s``)."""
    if kind == "sgd":
        g = g + wd * p
        buf = s["momentum_buffer"]
        buf.mul_(hp["mom"]).add_(g)  # dampening 0; with momentum 0 the buffer is the gradient
        g = torch.where(hp["nest"] > 0, g + hp["mom"] * buf, buf)
        p.sub_(lr * g)
    elif kind in ("adam", "adamw"):
        if kind == "adamw":
            p.mul_(hp["decay"])
        else:
            g = g + wd * p
        s["exp_avg"].lerp_(g, hp["1-b1"])
        s["exp_avg_sq"].mul_(hp["b2"]).add_(hp["1-b2"] * g * g)
        denom = (s["exp_avg_sq"].sqrt() / hp["bc2"]).add_(hp["eps"])
        p.sub_(hp["step_size"] * s["exp_avg"] / denom)
    else:  # rmsprop
        g = g + wd * p
        sq = s["square_avg"]
        sq.mul_(hp["alpha"]).add_(hp["1-alpha"] * g * g)
        avg = sq.sqrt().add_(hp["eps"])
        buf = s["momentum_buffer"]
        buf.mul_(hp["mom"]).add_(g / avg)
        p.sub_(lr * buf)

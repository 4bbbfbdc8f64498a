"""Provides piBO (Hvarfner et al., ICLR 2022): the acquisition weighted by the user's prior, fading with data.

The search maximises ``log acq(x) + g (beta / n) * log pi(x)``: pi is the product of each parameter's prior
(``space.py``: a normal of ``PRIOR_SD`` around the prior's value on the parameter's own scale, log for log
parameters; a choice's probabilities) and n the number of observed trials, so a good prior steers the first
model suggestions and the data overrule a misleading one as trials accumulate; g = pi(best trial so far) /
pi(prior's mode) makes them overrule it sooner when the best trial lies where the prior is low (below 0.5,
the strategy also counts the prior's own trial no worse than the worst other: ``strategy.PRIOR_CLIP``).
Parameters without a prior contribute nothing. Not applied to the exploiting last trials (the posterior mean is not on a log scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tuitune.core.search.space import PRIOR_SD, Choice

if TYPE_CHECKING:
    import torch

    from tuitune.core.search.strategies.bayes.encoding import Encoding

# piBO's beta: the prior's exponent is beta / n after n observations (3 after 10 trials, 1 after 30). 10 and
# 100 were measured too (benchmarks/results/prior.md): 30 reached the target soonest with a good prior, and
# the gate below keeps a misleading one within the goal.
PRIOR_BETA = 30.0
# Scale the prior's weight by pi(best trial so far) / pi(prior's mode): the data overrule a misleading prior
# (without it, a misleading prior held the search for long: hartmann3 and levy4 missed the 1.3x goal).
PRIOR_GATE = True


class PriorWeighted:
    """An acquisition (feature tensors -> log values) plus ``power * log pi`` of the same features.

    Keeps the closed-form ``value_and_grad`` of a lean acquisition (the local search's L-BFGS-B) when the
    wrapped one has it.
    """

    def __init__(self, acq: Callable[[torch.Tensor], torch.Tensor], enc: Encoding, power: float) -> None:
        self.acq = acq
        self.power = power
        space = enc.space
        # Numeric feature columns (one per numeric coordinate, in num_idx order) with a prior: their centres.
        self.num_cols = [j for j, i in enumerate(enc.num_idx) if space[enc.coords[i].name].prior is not None]
        self.centers = np.array(
            [space[enc.coords[enc.num_idx[j]].name].prior_center() for j in self.num_cols], dtype=float
        )
        # Choice coordinates with a prior: their one-hot columns and the log of their probabilities.
        self.cat: list[tuple[slice, np.ndarray]] = []
        col = len(enc.num_idx)
        for i in enc.cat_idx:
            p = space[enc.coords[i].name]
            n = enc.coords[i].n
            if isinstance(p, Choice) and p.prior is not None:
                self.cat.append((slice(col, col + n), p.prior_probs()))
            col += n
        inner = getattr(acq, "value_and_grad", None)
        if inner is not None:
            self._inner_vg = inner
            self.value_and_grad = self._value_and_grad

    @staticmethod
    def power_after(n_observed: int) -> float:
        return PRIOR_BETA / max(1, n_observed)

    def gate(self, incumbent: np.ndarray, mode: np.ndarray) -> float:
        """How far the data agree with the prior: pi(incumbent) / pi(mode), in (0, 1] (features of each).

        The best trial so far lying where the prior is low says the prior misleads: its weight falls with
        it, and the search goes on as plain BO (PRIOR_GATE; off: 1).
        """
        if not PRIOR_GATE:
            return 1.0
        v, _ = self.log_prior_np(np.stack([incumbent, mode]))
        return float(min(1.0, math.exp(v[0] - v[1])))

    def log_prior_np(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log pi at feature points f (B, F), up to a constant, and its gradient (B, F)."""
        value = np.zeros(len(f))
        grad = np.zeros_like(f)
        if self.num_cols:
            d = (f[:, self.num_cols] - self.centers) / PRIOR_SD
            value -= 0.5 * (d**2).sum(axis=1)
            grad[:, self.num_cols] = -d / PRIOR_SD
        for sl, probs in self.cat:
            mass = f[:, sl] @ probs
            on = mass > 0  # an inactive choice has all-zero columns: no prior term
            value += np.where(on, np.log(np.where(on, mass, 1.0)), 0.0)
            grad[:, sl] = np.where(on[:, None], probs[None, :] / np.where(on, mass, 1.0)[:, None], 0.0)
        return value, grad

    def log_prior(self, f: torch.Tensor) -> torch.Tensor:
        import torch

        value = torch.zeros(f.shape[:-1], dtype=f.dtype)
        if self.num_cols:
            d = (f[..., self.num_cols] - torch.from_numpy(self.centers)) / PRIOR_SD
            value = value - 0.5 * (d**2).sum(-1)
        for sl, probs in self.cat:
            mass = f[..., sl] @ torch.from_numpy(probs).to(f.dtype)
            value = value + torch.where(mass > 0, torch.log(mass.clamp_min(math.ulp(0.0))), torch.zeros_like(mass))
        return value

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        return self.acq(f) + self.power * self.log_prior(f)

    def _value_and_grad(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v, g = self._inner_vg(f)
        pv, pg = self.log_prior_np(f)
        return v + self.power * pv, g + self.power * pg

    _inner_vg: Any
    value_and_grad: Any

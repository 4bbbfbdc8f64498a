"""Provides the acquisition of bayes for several objectives and for constraints.

* Two objectives: log expected hypervolume improvement (log EHVI) by Monte Carlo. One lean GP per
  objective (on its standardised loss) gives independent posteriors at x; ``N_SAMPLES`` quasi-random joint
  draws of the two losses each improve the hypervolume of the current feasible front by an exact 2-D
  staircase sum, with the edges smoothed by a softplus of temperature ``TAU`` (as BoTorch's
  qLogExpectedHypervolumeImprovement smooths its maxima) so the log stays finite and has a slope far from
  the front. The acquisition is log of the mean over the draws.
* Pending points (trials running on other workers): their posterior means join the front before the
  improvement is measured (the "kriging believer"; BoTorch's qLogNEHVI integrates over them instead), so
  a suggestion next to a running trial is worth little and a batch spreads along the front.
* One objective with constraints: log EI against the best feasible value, the losses warped first (``WARP``);
  the strategy's last trials of a known budget maximise the posterior mean among likely feasible points instead
  (``exploit``).
* Constraints: one lean GP per constraint on its slack (``bound - value`` for ``<=``); the acquisition adds
  log P(every slack >= 0) (the probability of feasibility times the improvement, as Optuna's GPSampler and
  Ax do). Before any feasible trial it is the probability of feasibility alone.

Three or more objectives: ParEGO's random augmented Chebyshev scalarisation (``parego_scores``), fed to the
single-objective machinery by the strategy.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tuitune.core.search.strategies.bayes.acquisition import _normal_base_samples, log_ei
from tuitune.core.search.strategies.bayes.gp import LeanGP

if TYPE_CHECKING:
    import torch

N_SAMPLES = 64  # joint draws of the two losses at x (quasi-random, fixed per ask: deterministic)
TAU = 1e-2  # the softplus temperature of the staircase's edges, in standardised units
# One objective with constraints: the warp of the losses the objective's GP is fitted on (``_warp``; "": none).
# Validation losses span decades (a diverged run beside a good one): standardised as they are, every good value
# looks alike to the GP. "yeo-johnson" (HEBO's output warping, Cowen-Rivers et al. 2022), only of losses with a long
# bad tail (sample skewness above WARP_SKEW), with the strategy's CONSTRAINED_EXPLOIT and CONSTRAINED_ANCHORS:
# 54-21 seed-runs against the path before on the 4 HPOLib tables (45-33 against Optuna's constrained GPSampler;
# slice_localization 10-0 and 9-1), 17-3 on the 2 synthetic functions. "yeo-johnson-both" (whatever the skew):
# 55-21 and 50-29 on the tables, but 2 of 20 gardner seeds stayed in its second basin (the warp of losses piled
# up at the incumbent set it apart); "copula" (ranks through the normal quantile): 50-27 on the tables, 1-19 on
# the synthetic functions (benchmarks/results/constraints.md, "Alternatives measured").
WARP = "yeo-johnson"
WARP_SKEW = 1.0  # "yeo-johnson" warps losses whose sample skewness is above this (a long bad tail) only


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu, sd = float(y.mean()), float(y.std())
    sd = sd if sd > 1e-12 else 1.0
    return (y - mu) / sd, mu, sd


def _warp(y: np.ndarray, how: str | None = None) -> np.ndarray:
    """The losses on the scale the objective's GP models (``how``, None: ``WARP``): "yeo-johnson" (HEBO's power transform of
    the standardised values, its lambda fitted by maximum likelihood; only with a long bad tail),
    "yeo-johnson-both" (whatever the skew), "copula" (ranks through the normal quantile, as Salinas et al.
    2020), or "" (none). Each is monotone: the best stays the best."""
    from scipy.special import ndtri
    from scipy.stats import rankdata, skew, yeojohnson

    how = WARP if how is None else how
    if not how or len(y) < 3 or float(y.std()) <= 1e-12:
        return y
    if how == "copula":
        return np.asarray(ndtri((rankdata(y) - 0.5) / len(y)))
    if how == "yeo-johnson" and skew(y) <= WARP_SKEW:
        # Only a long bad tail is warped. Fitted to losses without one (gardner's, bounded; or once trials pile
        # up next to the incumbent) the warp set the incumbent apart from the rest, and 2 of 20 gardner seeds
        # stayed in its second basin (-1.12 against -2).
        return y
    z = _standardise(y)[0]
    out, _ = yeojohnson(z)
    return np.asarray(out) if np.all(np.isfinite(out)) else z


def _log_softplus(x: torch.Tensor) -> torch.Tensor:
    """log(TAU * softplus(x / TAU)), stable far below zero (where it is x / TAU + log TAU)."""
    import torch

    s = x / TAU
    return torch.where(s < -20.0, s, torch.log(torch.nn.functional.softplus(s).clamp_min(1e-300))) + math.log(TAU)


def staircase(front: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2-D front as the strips of the region it does not dominate: left edges, right edges and the
    height below which each strip is free (losses, both minimised; ``front`` non-dominated or not)."""
    pts = front[(front[:, 0] < ref[0]) & (front[:, 1] < ref[1])]
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    xs, ys = [], []
    best_y = ref[1]
    for x, y in pts:
        if y < best_y:
            xs.append(x)
            ys.append(y)
            best_y = y
    left = np.array([-np.inf, *xs])
    right = np.array([*xs, ref[0]])
    height = np.array([ref[1], *ys])
    return left, right, height


def log_hvi(p: torch.Tensor, left: torch.Tensor, right: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """Smoothed log hypervolume improvement of 2-D loss points p (..., 2) over a staircase."""
    import torch

    x, y = p[..., 0:1], p[..., 1:2]
    width = right - torch.maximum(left, x)
    tall = height - y
    return torch.logsumexp(_log_softplus(width) + _log_softplus(tall), dim=-1)


class LogEHVI:
    """log EHVI (two objectives) or log EI (one), plus log P(feasible), on feature tensors (..., f) -> (...)."""

    def __init__(
        self,
        objective_gps: list[Any],
        front: np.ndarray,
        ref: np.ndarray,
        constraint_gps: list[Any],
        zero_slack: list[float],
        seed: int,
        exploit: float | None = None,
    ) -> None:
        import torch

        self.exploit = exploit if len(objective_gps) == 1 and constraint_gps else None
        self.posts = objective_gps
        self.cons = constraint_gps
        self.zero = zero_slack
        self.m = len(objective_gps)
        self.has_front = len(front) > 0
        if self.m == 2 and self.has_front:
            left, right, height = staircase(front, ref)
            self.left, self.right, self.height = (torch.from_numpy(a) for a in (left, right, height))
            self.z = _normal_base_samples(2, N_SAMPLES, seed)  # (2, S)
        elif self.m == 1 and self.has_front:
            self.best = float(front[:, 0].min())

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        import torch

        if self.exploit is not None:
            return self._exploit(f)
        out = torch.zeros(f.shape[:-1], dtype=f.dtype)
        if self.has_front and self.m == 2:
            draws = []
            for k, post in enumerate(self.posts):
                mean, var = post(f)
                draws.append(mean.unsqueeze(-1) + var.sqrt().unsqueeze(-1) * self.z[k])  # (..., S)
            p = torch.stack(draws, dim=-1)  # (..., S, 2)
            out = out + torch.logsumexp(log_hvi(p, self.left, self.right, self.height), dim=-1) - math.log(N_SAMPLES)
        elif self.has_front and self.m == 1:
            mean, var = self.posts[0](f)
            out = out + log_ei(-mean, var, -self.best)  # losses: EI of lowering the best
        return out + self.log_feasible(f)

    def log_feasible(self, f: torch.Tensor) -> torch.Tensor:
        """log P(every slack >= 0) under the constraints' GPs (independent, as Optuna's GPSampler assumes)."""
        import torch
        from torch.special import log_ndtr

        out = torch.zeros(f.shape[:-1], dtype=f.dtype)
        for post, zero in zip(self.cons, self.zero):
            mean, var = post(f)
            out = out + log_ndtr((mean - zero) / var.clamp_min(1e-18).sqrt())
        return out

    def _exploit(self, f: torch.Tensor) -> torch.Tensor:
        """The posterior mean of the loss, negated, where P(feasible) >= ``exploit``; elsewhere far below any
        of those, ordered by log P(feasible) so that a search started there climbs toward the feasible region."""
        import torch

        mean, _ = self.posts[0](f)
        lpf = self.log_feasible(f)
        return torch.where(lpf >= math.log(self.exploit or 1e-300), -mean, lpf - 1e3)


def build_acquisition(
    X: torch.Tensor,
    losses: np.ndarray,
    feasible: np.ndarray,
    slacks: np.ndarray,
    Xp: torch.Tensor,
    group: list[int],
    weight: list[float],
    seed: int,
    exploit: float | None = None,
) -> LogEHVI:
    """Fits the GPs and builds the acquisition.

    X: the observed points' features; losses (n, m): their objectives as losses; feasible (n,): whether
    each keeps every constraint; slacks (n, c): each constraint's slack (NaN where not reported: left out
    of that constraint's GP); Xp: the pending points' features; exploit (one objective with constraints):
    maximise the posterior mean among the points feasible with at least this probability instead.
    """
    import torch

    posts, cols = [], []
    one = losses.shape[1] == 1 and slacks.shape[1] > 0  # one objective with constraints
    for k in range(losses.shape[1]):
        ys, _, _ = _standardise(_warp(losses[:, k]) if one and WARP else losses[:, k])
        gp = LeanGP(X, torch.from_numpy(ys), group, weight).fit()
        posts.append(gp.condition(X, torch.from_numpy(ys)))
        cols.append(ys)
    cons, zeros = [], []
    for c in range(slacks.shape[1]):
        ok = np.isfinite(slacks[:, c])
        if ok.sum() < 2:
            continue
        ys, mu, sd = _standardise(slacks[ok, c])
        Xc = X[torch.from_numpy(ok)]
        gp = LeanGP(Xc, torch.from_numpy(ys), group, weight).fit()
        cons.append(gp.condition(Xc, torch.from_numpy(ys)))
        zeros.append(-mu / sd)
    std = np.stack(cols, axis=-1).reshape(len(losses), -1)
    front = std[feasible]
    if len(Xp) and len(front):
        with torch.no_grad():
            believed = np.stack([post(Xp)[0].numpy() for post in posts], axis=-1)  # the pending points' means
        front = np.concatenate([front, believed])
    # The reference point: the worst observed value of each objective plus a tenth of its range. (The nadir
    # of the observed front instead, BoTorch's infer_reference_point, lost on ZDT1 and ZDT2 over 3 seeds: a
    # front of one point leaves almost nothing to improve, and the search stayed at that point.)
    ref = std.max(0) + 0.1 * (std.max(0) - std.min(0)) + 1e-6 if len(std) else np.ones(losses.shape[1])
    return LogEHVI(posts, front, ref, cons, zeros, seed, exploit)


def parego_scores(losses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ParEGO's scalarisation of losses (n, m): each objective scaled to [0, 1], then the augmented
    Chebyshev norm with weights drawn uniformly from the simplex (Knowles 2006; rho = 0.05)."""
    lo, hi = losses.min(0), losses.max(0)
    scaled = (losses - lo) / np.where(hi > lo, hi - lo, 1.0)
    w = rng.dirichlet(np.ones(losses.shape[1]))
    out: np.ndarray = (w * scaled).max(1) + 0.05 * (w * scaled).sum(1)
    return out

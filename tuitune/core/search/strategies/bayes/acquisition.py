"""Provides log expected improvement and the acquisition function a suggestion maximises.

log EI is computed stably far below the incumbent (Ament et al. 2023, as in BoTorch). ``acquisition``
fits the GP of the chosen engine on the observed points (the hyperparameters come from them alone) and
accounts for the pending ones (trials running on other workers) in one of two ways (``PENDING``):

* ``"fantasy"`` (the default): the batch-aware expected improvement of BoTorch's q-acquisitions with
  ``X_pending``. A point's value is the expected improvement of the batch {x, pending} beyond the incumbent,
  with the pending points' values drawn jointly from the posterior (S quasi-random fantasies). Given a
  fantasy, f(x) is Gaussian and the batch's improvement is EI(x) against max(incumbent, the pending
  values) plus a term without x, so the lean engine computes it exactly per fantasy: log of the mean over
  the fantasies of EI(x | fantasy) (a Rao-Blackwellised qEI; BoTorch's engine samples f(x) too, with
  ``qLogExpectedImprovement``). A point next to a pending one is worth little: its value is that pending
  point's, already in the batch.
* ``"liar"`` (the scheme before several workers were measured, kept for the benchmark): the GP is also
  conditioned on the pending points at the mean observed value (constant liar), and plain log EI is used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tuitune.core.search.strategies.bayes.gp import LeanGP

if TYPE_CHECKING:
    import torch

_C1 = math.log(2 * math.pi) / 2
_C2 = math.log(math.pi / 2) / 2
_INV_SQRT_EPS = 1 / math.sqrt(np.finfo(float).eps)

# How pending points are accounted for: "fantasy" or "liar" (see above; a module constant so that
# benchmarks/bench_bayes_workers.py can run the old scheme side by side).
PENDING = "fantasy"
PENDING_SCHEMES = ("fantasy", "liar")
# Fantasies of the pending points' values: quasi-random, and the lean engine's EI given a fantasy is exact,
# so the sampling error is only over the few pending values (BoTorch samples f(x) too: its default is 128).
# The cost of an ask grows with them.
N_FANTASIES = 32


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_h(z: torch.Tensor) -> torch.Tensor:
    """log(phi(z) + z * Phi(z)), stable for very negative z (Ament et al. 2023, as in BoTorch)."""
    import torch

    zu = z.clamp_min(-1.0)
    upper = torch.log(torch.exp(-0.5 * zu * zu - _C1) + zu * torch.special.ndtr(zu))
    zm = z.clamp(-_INV_SQRT_EPS, -1.0)
    mid = -0.5 * zm * zm - _C1 + _log1mexp(torch.log(torch.special.erfcx(-zm / math.sqrt(2)) * (-zm)) + _C2)
    zl = z.clamp_max(-_INV_SQRT_EPS)
    low = -0.5 * zl * zl - _C1 - 2 * torch.log(-zl)
    return torch.where(z > -1.0, upper, torch.where(z > -_INV_SQRT_EPS, mid, low))


def log_ei(mean: torch.Tensor, var: torch.Tensor, best: float | torch.Tensor) -> torch.Tensor:
    """log E[max(f - best, 0)] for f ~ N(mean, var) (maximisation; best may broadcast against mean)."""
    sigma = var.clamp_min(1e-18).sqrt()
    return _log_h((mean - best) / sigma) + sigma.log()


def _log_h_np(z: np.ndarray) -> np.ndarray:
    """``_log_h`` in NumPy (the same three branches)."""
    from scipy.special import erfcx, ndtr

    zu = np.maximum(z, -1.0)
    upper = np.log(np.exp(-0.5 * zu * zu - _C1) + zu * ndtr(zu))
    zm = np.clip(z, -_INV_SQRT_EPS, -1.0)
    x = np.log(erfcx(-zm / math.sqrt(2)) * (-zm)) + _C2
    log1mexp = np.where(x > -math.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
    mid = -0.5 * zm * zm - _C1 + log1mexp
    zl = np.minimum(z, -_INV_SQRT_EPS)
    low = -0.5 * zl * zl - _C1 - 2 * np.log(-zl)
    return np.where(z > -1.0, upper, np.where(z > -_INV_SQRT_EPS, mid, low))


class LeanLogEI:
    """log EI on the lean GP: called on feature tensors (..., f) -> (...), as every acquisition here is; and
    ``value_and_grad`` (NumPy, closed form) for the local search's L-BFGS-B, which otherwise spent most of an
    ask in torch's autograd overhead. d log h(z) / dz = Phi(z) / h(z), since h'(z) = Phi(z)."""

    def __init__(self, gp: LeanGP, X: torch.Tensor, Y: torch.Tensor, best: float, exploit: bool = False) -> None:
        self.post = gp.condition(X, Y)
        self.post_np = gp.condition_np(X, Y)
        self.best = best
        self.exploit = exploit  # the posterior mean instead of log EI (see ``acquisition``)

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        mean, var = self.post(f)
        if self.exploit:
            return mean
        return log_ei(mean, var, self.best)

    def value_and_grad(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log EI at feature points f (B, n_features) and its gradient (B, n_features)."""
        from scipy.special import log_ndtr

        mean, var, dmean, dvar = self.post_np(f)
        if self.exploit:
            return mean, dmean
        sigma = np.sqrt(np.maximum(var, 1e-18))
        z = (mean - self.best) / sigma
        lh = _log_h_np(z)
        # Far below the incumbent the two logs are huge and their difference is lost: there Phi/h -> -z.
        dlh = np.where(z < -1e6, -z, np.exp(log_ndtr(np.maximum(z, -1e6)) - lh))
        dsigma = dvar / (2 * sigma[:, None])
        dz = (dmean - z[:, None] * dsigma) / sigma[:, None]
        return lh + np.log(sigma), dlh[:, None] * dz + dsigma / sigma[:, None]


class LeanPendingLogEI:
    """The batch-aware log EI on the lean GP (``"fantasy"``): log of the mean over the fantasies of the
    pending values of EI(x | fantasy), against each fantasy's incumbent. Called on feature tensors as every
    acquisition here is, and ``value_and_grad`` (NumPy, closed form) for the local search: through torch's
    autograd this ask cost 3-6x a 1-worker one, enough for the coordinator to fall behind 4 workers
    (benchmarks/results/bayes-workers.md)."""

    def __init__(self, gp: LeanGP, X: torch.Tensor, Y: torch.Tensor, Xp: torch.Tensor, z: torch.Tensor, best: float) -> None:
        factors = gp.pending_factors(X, Y, Xp)  # one factorisation for both posteriors
        fp, self.post = gp.condition_pending(X, Y, Xp, z, factors)
        self.post_np = gp.condition_pending_np(X, Y, Xp, z, factors)
        # The incumbent of each fantasy: the batch's improvement beyond ``best`` is EI(x) against it plus a
        # constant, so maximising the mean EI maximises the batch's expected improvement.
        self.best_s = fp.max(0).values.clamp_min(best)
        self.best_s_np = self.best_s.detach().numpy()
        self.log_s = math.log(z.shape[-1])

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        import torch

        mean, var = self.post(f)
        return torch.logsumexp(log_ei(mean, var.unsqueeze(-1), self.best_s), dim=-1) - self.log_s

    def value_and_grad(self, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The acquisition at feature points f (B, n_features) and its gradient (B, n_features)."""
        from scipy.special import log_ndtr, logsumexp

        mean, var, dmean, dvar = self.post_np(f)  # (B, S), (B,), (B, f, S), (B, f)
        sigma = np.sqrt(np.maximum(var, 1e-18))
        z = (mean - self.best_s_np) / sigma[:, None]  # (B, S)
        lh = _log_h_np(z)
        dlh = np.where(z < -1e6, -z, np.exp(log_ndtr(np.maximum(z, -1e6)) - lh))  # as in LeanLogEI
        dsigma = dvar / (2 * sigma[:, None])  # (B, f)
        # d log EI_s / dx = dlh_s * (dmean_s - z_s dsigma) / sigma + dsigma / sigma
        dz = (dmean - z[:, None, :] * dsigma[:, :, None]) / sigma[:, None, None]  # (B, f, S)
        dlog_ei = dlh[:, None, :] * dz + (dsigma / sigma[:, None])[:, :, None]
        log_ei_s = lh + np.log(sigma)[:, None]
        value = logsumexp(log_ei_s, axis=-1) - self.log_s
        weights = np.exp(log_ei_s - (value + self.log_s)[:, None])  # softmax over the fantasies
        return value, np.einsum("bfs,bs->bf", dlog_ei, weights)


def acquisition(
    engine: str,
    X: torch.Tensor,
    Y: torch.Tensor,
    Xp: torch.Tensor,
    Yp: torch.Tensor,
    best: float,
    group: list[int],
    weight: list[float],
    seed: int = 0,
    pending: str | None = None,
    exploit: bool = False,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """log EI as a function of feature tensors (..., n_features) -> (...).

    X, Y: the observed features and standardised values (maximised); Xp, Yp: the pending points and the
    values the constant liar conditions them at (unused by ``"fantasy"``); best: the incumbent's
    standardised value; seed: the fantasies' quasi-random base samples (a function of the trial records,
    so that a resumed session suggests the same point); pending: the scheme (None: ``PENDING``);
    exploit: maximise the posterior mean instead (the strategy's last trials of a known budget; not with
    pending points, where the batch's spread matters).
    """
    import torch

    scheme = pending or PENDING
    if scheme not in PENDING_SCHEMES:
        raise ValueError(f"the pending scheme must be one of {PENDING_SCHEMES}, got {scheme!r}")
    fantasy = scheme == "fantasy" and len(Xp) > 0
    if not fantasy:
        Xa, Ya = torch.cat([X, Xp]), torch.cat([Y, Yp])
    else:
        Xa, Ya = X, Y
    if engine == "lean" and fantasy:
        gp = LeanGP(X, Y, group, weight).fit()
        return LeanPendingLogEI(gp, X, Y, Xp, _normal_base_samples(len(Xp), N_FANTASIES, seed), best)
    if engine == "lean":
        gp = LeanGP(X, Y, group, weight).fit()
        return LeanLogEI(gp, Xa, Ya, best, exploit=exploit and not len(Xp))

    from botorch.acquisition.analytic import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model = SingleTaskGP(X, Y.unsqueeze(-1), outcome_transform=None)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 50}})
    if len(Xp) and not fantasy:  # the same hyperparameters, conditioned on the pending points too
        fitted = model.state_dict()
        model = SingleTaskGP(Xa, Ya.unsqueeze(-1), outcome_transform=None)
        model.load_state_dict(fitted, strict=False)
    model.eval()
    if fantasy:
        from botorch.acquisition.logei import qLogExpectedImprovement
        from botorch.sampling.normal import SobolQMCNormalSampler

        sampler = SobolQMCNormalSampler(torch.Size([N_FANTASIES]), seed=seed)
        qei = qLogExpectedImprovement(model, best_f=best, sampler=sampler, X_pending=Xp)

        def acq_q(f: torch.Tensor) -> torch.Tensor:
            return qei(f.reshape(-1, 1, f.shape[-1])).reshape(f.shape[:-1])

        return acq_q
    if exploit and not len(Xp):
        from botorch.acquisition.analytic import PosteriorMean

        pm = PosteriorMean(model)

        def acq_mean(f: torch.Tensor) -> torch.Tensor:
            return pm(f.unsqueeze(-2))

        return acq_mean
    ei = LogExpectedImprovement(model, best_f=best)

    def acq_bt(f: torch.Tensor) -> torch.Tensor:
        return ei(f.unsqueeze(-2))

    return acq_bt


def _normal_base_samples(k: int, n: int, seed: int) -> torch.Tensor:
    """(k, n) standard normal quasi-random samples: a scrambled Sobol sequence through the normal quantile."""
    import torch
    from scipy.special import ndtri
    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n is not a power of 2: a warning about balance, not an error
        u = qmc.Sobol(d=k, scramble=True, seed=seed).random(n)
    u = np.clip(u, 1e-6, 1 - 1e-6)
    return torch.from_numpy(ndtri(u).T.copy())

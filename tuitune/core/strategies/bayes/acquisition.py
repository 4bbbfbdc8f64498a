"""Provides log expected improvement and the acquisition function a suggestion maximises.

log EI is computed stably far below the incumbent (Ament et al. 2023, as in BoTorch). ``acquisition``
fits the GP of the chosen engine on the observed points and conditions it on the pending ones too
(constant liar: the hyperparameters come from the observed points alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tuitune.core.strategies.bayes.gp import LeanGP

if TYPE_CHECKING:
    import torch

_C1 = math.log(2 * math.pi) / 2
_C2 = math.log(math.pi / 2) / 2
_INV_SQRT_EPS = 1 / math.sqrt(np.finfo(float).eps)


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


def log_ei(mean: torch.Tensor, var: torch.Tensor, best: float) -> torch.Tensor:
    """log E[max(f - best, 0)] for f ~ N(mean, var) (maximisation)."""
    sigma = var.clamp_min(1e-18).sqrt()
    return _log_h((mean - best) / sigma) + sigma.log()


def acquisition(
    engine: str,
    X: torch.Tensor,
    Y: torch.Tensor,
    Xp: torch.Tensor,
    Yp: torch.Tensor,
    best: float,
    group: list[int],
    weight: list[float],
) -> Callable[[torch.Tensor], torch.Tensor]:
    """log EI as a function of feature tensors (..., n_features) -> (...).

    X, Y: the observed features and standardised values (maximised); Xp, Yp: the pending points and the
    values they are conditioned at; best: the incumbent's standardised value.
    """
    import torch

    Xa, Ya = torch.cat([X, Xp]), torch.cat([Y, Yp])
    if engine == "lean":
        gp = LeanGP(X, Y, group, weight).fit()
        post = gp.condition(Xa, Ya)

        def acq(f: torch.Tensor) -> torch.Tensor:
            mean, var = post(f)
            return log_ei(mean, var, best)

        return acq

    from botorch.acquisition.analytic import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model = SingleTaskGP(X, Y.unsqueeze(-1), outcome_transform=None)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": 50}})
    if len(Xp):  # the same hyperparameters, conditioned on the pending points too
        fitted = model.state_dict()
        model = SingleTaskGP(Xa, Ya.unsqueeze(-1), outcome_transform=None)
        model.load_state_dict(fitted, strict=False)
    model.eval()
    ei = LogExpectedImprovement(model, best_f=best)

    def acq_bt(f: torch.Tensor) -> torch.Tensor:
        return ei(f.unsqueeze(-2))

    return acq_bt

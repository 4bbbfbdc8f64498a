"""Provides the lean GP: an exact GP with a Matern 5/2 ARD kernel and Optuna-style priors, fitted by MAP.

It exists because BoTorch's SingleTaskGP, fitted by ``fit_gpytorch_mll``, costs 1-1.5 ms per likelihood
evaluation through gpytorch against about 0.2 ms here (figures in benchmarks/results/bayes.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_MIN_NOISE = 1e-6

# Options measured in benchmarks/results/bayes.md (module constants so the benchmark can switch them):
# FIT_STARTS: hyperparameter fits from different starts, the best posterior kept (1: Optuna's single fit).
# LENGTHSCALE_PRIOR: "optuna" (-(0.1/isl + 0.1*isl) on each inverse squared lengthscale) or "hvarfner"
# (LogNormal(sqrt(2) + log(d)/2, sqrt(3)) on each lengthscale, Hvarfner et al. 2024, BoTorch's default).
FIT_STARTS = 1
LENGTHSCALE_PRIOR = "optuna"


def _matern52(sqd: torch.Tensor) -> torch.Tensor:
    import torch

    # clamp: the gradient of sqrt at 0 is infinite; the kernel's own slope there is finite.
    r5 = torch.sqrt(5 * sqd.clamp_min(1e-30))
    return torch.exp(-r5) * (1 + r5 + (5 / 3) * sqd)


class LeanGP:
    """An exact GP with a Matern 5/2 ARD kernel, fitted by maximum a posteriori with Optuna's priors.

    One lengthscale per coordinate (``group`` maps features to coordinates, ``weight`` scales a feature's
    squared difference: 1/2 for one-hot columns). It exists because BoTorch's SingleTaskGP, fitted by
    ``fit_gpytorch_mll``, costs 1-1.5 ms per likelihood evaluation through gpytorch against about 0.2 ms
    here, which put it above GPSampler's time per trial (figures in benchmarks/results/bayes.md).

    Priors (Optuna GPSampler's defaults): ``-(0.1/isl + 0.1*isl)`` on each inverse squared lengthscale,
    Gamma(2, 1) on the kernel scale, Gamma(1.1, 30) on the noise variance (plus a floor of 1e-6).
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, group: list[int], weight: list[float]) -> None:
        import torch

        self.X, self.y = X, y
        self.sqd = (X.unsqueeze(-2) - X.unsqueeze(-3)).square()
        self.n_params = max(group) + 1
        self.group = torch.tensor(group)
        self.weight = torch.tensor(weight, dtype=X.dtype)
        self.isl = torch.ones(X.shape[-1], dtype=X.dtype)
        self.scale = torch.tensor(1.0, dtype=X.dtype)
        self.noise = torch.tensor(1e-2, dtype=X.dtype)

    def _unpack(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        d = self.n_params
        return torch.exp(raw[:d]), torch.exp(raw[d]), torch.exp(raw[d + 1]) + _MIN_NOISE

    def _per_feature(self, isl: torch.Tensor) -> torch.Tensor:
        return isl[self.group] * self.weight

    def _loss(self, raw: torch.Tensor) -> torch.Tensor:
        import torch

        isl, scale, noise = self._unpack(raw)
        K = _matern52(self.sqd @ self._per_feature(isl)) * scale
        K = K + noise * torch.eye(len(self.y), dtype=K.dtype)
        L, info = torch.linalg.cholesky_ex(K)
        if int(info) != 0:
            raise np.linalg.LinAlgError("kernel matrix not positive definite")
        a = torch.linalg.solve_triangular(L, self.y.unsqueeze(-1), upper=False).squeeze(-1)
        mll = -L.diagonal().log().sum() - 0.5 * (a @ a)
        if LENGTHSCALE_PRIOR == "hvarfner":
            mu = math.sqrt(2) + 0.5 * math.log(self.n_params)
            log_ls = -0.5 * torch.log(isl)
            ls_prior = -((log_ls - mu) ** 2).sum() / (2 * 3.0)
        else:
            ls_prior = -(0.1 / isl + 0.1 * isl).sum()
        prior = (
            ls_prior
            + (2 - 1) * torch.log(scale) - scale
            + (1.1 - 1) * torch.log(noise) - 30 * noise
        )
        return -(mll + prior)

    def fit(self) -> LeanGP:
        import scipy.optimize
        import torch

        d = self.n_params
        x0 = np.concatenate([np.zeros(d), [0.0, math.log(1e-2)]])

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            raw = torch.from_numpy(x).requires_grad_(True)
            try:
                loss = self._loss(raw)
            except np.linalg.LinAlgError:
                return 1e10, np.zeros_like(x)
            loss.backward()
            assert raw.grad is not None
            return float(loss), raw.grad.numpy().copy()

        # Extra starts (deterministic): short and long lengthscales, where a multimodal posterior hides
        # other modes from the default start.
        starts = [x0] + [
            np.concatenate([np.full(d, v), [0.0, math.log(1e-2)]]) for v in (2.0, -2.0, 4.0)
        ][: max(0, FIT_STARTS - 1)]
        x, best = x0, math.inf
        for start in starts:
            res = scipy.optimize.minimize(f, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-2, "maxiter": 200})
            if np.all(np.isfinite(res.x)) and float(res.fun) < best:
                x, best = res.x, float(res.fun)
        isl, scale, noise = self._unpack(torch.from_numpy(x))
        self.isl, self.scale, self.noise = self._per_feature(isl).detach(), scale.detach(), noise.detach()
        return self

    def condition(self, X: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """The posterior (mean, variance) function given data X, y with the fitted hyperparameters."""
        import torch

        K = self._k(X, X) + self.noise * torch.eye(len(y), dtype=X.dtype)
        L = torch.linalg.cholesky(K + 1e-10 * torch.eye(len(y), dtype=X.dtype))
        alpha = torch.cholesky_solve(y.unsqueeze(-1), L).squeeze(-1)

        def posterior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            kx = self._k(x, X)
            mean = kx @ alpha
            v = torch.linalg.solve_triangular(L, kx.unsqueeze(-1), upper=False).squeeze(-1)
            var = (self.scale - (v * v).sum(-1)).clamp_min(1e-12)
            return mean, var

        return posterior

    def condition_pending(
        self, X: torch.Tensor, y: torch.Tensor, Xp: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
        """The posterior given data X, y and fantasised values of the pending points Xp.

        z (k, S): standard normal base samples. The pending points' latent values are drawn jointly from
        the posterior, fp = mu_p + L_p z (k, S); a point x given them is Gaussian with mean
        ``mean(x) + w(x) @ z`` (one per sample) and variance ``var(x) - |w(x)|^2``, where
        w = L_p^-1 cov(Xp, x). Returns fp and that function: x (..., f) -> (mean (..., S), var (...)).
        """
        import torch

        n, k = len(y), len(Xp)
        K = self._k(X, X) + self.noise * torch.eye(n, dtype=X.dtype)
        L = torch.linalg.cholesky(K + 1e-10 * torch.eye(n, dtype=X.dtype))
        alpha = torch.cholesky_solve(y.unsqueeze(-1), L).squeeze(-1)
        kpX = self._k(Xp, X)  # (k, n)
        vp = torch.linalg.solve_triangular(L, kpX.T, upper=False)  # (n, k)
        mu_p = kpX @ alpha
        Sp = self._k(Xp, Xp) - vp.T @ vp
        # Jitter grows until the pending covariance factorises (two pending points may nearly coincide).
        eye = torch.eye(k, dtype=X.dtype)
        for jitter in (1e-8, 1e-6, 1e-4, 1e-2):
            Lp, info = torch.linalg.cholesky_ex(Sp + jitter * float(self.scale) * eye)
            if int(info) == 0:
                break
        fp = mu_p.unsqueeze(-1) + Lp @ z

        def posterior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            kx = self._k(x, X)
            mean = kx @ alpha
            v = torch.linalg.solve_triangular(L, kx.unsqueeze(-1), upper=False).squeeze(-1)
            var = self.scale - (v * v).sum(-1)
            cxp = self._k(x, Xp) - v @ vp  # (..., k): cov(f(x), f(Xp)) under the posterior
            w = torch.linalg.solve_triangular(Lp, cxp.unsqueeze(-1), upper=False).squeeze(-1)
            return mean.unsqueeze(-1) + w @ z, (var - (w * w).sum(-1)).clamp_min(1e-12)

        return fp, posterior

    def _k(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        sqd = (A.unsqueeze(-2) - B).square() @ self.isl
        return _matern52(sqd) * self.scale

"""Provides the lean GP: an exact GP with a Matern 5/2 ARD kernel and Optuna-style priors, fitted by MAP.

It exists because BoTorch's SingleTaskGP, fitted by ``fit_gpytorch_mll``, costs 1-1.5 ms per likelihood
evaluation through gpytorch against about 0.2 ms here (figures in benchmarks/results/bayes.md).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_MIN_NOISE = 1e-6

# LeanGP.pending_factors: (L, alpha, vp, Lp, mu_p).
PendingFactors = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor", "torch.Tensor", "torch.Tensor"]

# Options measured in benchmarks/results/bayes.md (module constants so the benchmark can switch them):
# FIT_STARTS: hyperparameter fits from different starts, the best posterior kept (1: Optuna's single fit).
# LENGTHSCALE_PRIOR: "optuna" (-(0.1/isl + 0.1*isl) on each inverse squared lengthscale) or "hvarfner"
# (LogNormal(sqrt(2) + log(d)/2, sqrt(3)) on each lengthscale, Hvarfner et al. 2024, BoTorch's default).
FIT_STARTS = 1
LENGTHSCALE_PRIOR = "optuna"

# The last fits, keyed by everything a fit depends on (the data's bytes, the kernel's groups and weights, the
# options above): a fit is a pure function of its key, so a reused one is exactly what a fresh process would
# compute and resume determinism holds. Asks between two results at the model's data (a fused array filling
# its members, asha's new configs while the rung it models has not moved) reuse it.
_FITS: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
_FITS_KEPT = 8
_FITS_LOCK = threading.Lock()


def _lower_solve_rows(L: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """L^-1 b for every row b of B (..., n): one triangular solve with all the rows as its right-hand sides.

    Solving them as a batch of vectors (``B.unsqueeze(-1)``) made torch broadcast L to one copy per row: at
    1024 candidates and 330 trials that is 0.9 GB written per call, and 84% of an asha ask went there
    (benchmarks/results/ask.md)."""
    import torch

    n = B.shape[-1]
    flat = B.reshape(-1, n)
    return torch.linalg.solve_triangular(L, flat.T, upper=False).T.reshape(B.shape)


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

    def _loss_and_grad(self, raw: np.ndarray, D: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The negative log posterior of the hyperparameters and its gradient, in closed form with NumPy.

        D (n, n, n_params): the weighted squared differences per coordinate. Autograd through torch cost
        about 1.3 ms per evaluation on these tiny matrices (op overhead); this costs about a tenth of it.
        The gradient of the log marginal likelihood is 1/2 sum((alpha alpha^T - K^-1) * dK/dtheta).
        """
        import scipy.linalg

        d = self.n_params
        isl, scale, enoise = np.exp(raw[:d]), math.exp(raw[d]), math.exp(raw[d + 1])
        noise = enoise + _MIN_NOISE
        n = len(y)
        r2 = D @ isl
        t = np.sqrt(5 * r2)
        e = np.exp(-t)
        km = (1 + t + t * t / 3) * e  # Matern 5/2
        dkm = -(5 / 6) * (1 + t) * e  # its derivative in r2
        K = scale * km
        K[np.diag_indices(n)] += noise
        L = scipy.linalg.cholesky(K, lower=True, check_finite=False)  # LinAlgError if not positive definite
        a = scipy.linalg.solve_triangular(L, y, lower=True, check_finite=False)
        alpha = scipy.linalg.solve_triangular(L, a, lower=True, trans="T", check_finite=False)
        Kinv = scipy.linalg.cho_solve((L, True), np.eye(n), check_finite=False)
        W = np.outer(alpha, alpha) - Kinv
        mll = -np.log(np.diag(L)).sum() - 0.5 * (a @ a)
        g_mll = np.empty(d + 2)
        g_mll[:d] = 0.5 * np.einsum("ij,ijk->k", W * (scale * dkm), D) * isl
        g_mll[d] = 0.5 * np.sum(W * (scale * km))
        g_mll[d + 1] = 0.5 * np.trace(W) * enoise
        g_prior = np.empty(d + 2)
        if LENGTHSCALE_PRIOR == "hvarfner":
            mu = math.sqrt(2) + 0.5 * math.log(d)
            log_ls = -0.5 * raw[:d]
            ls_prior = -((log_ls - mu) ** 2).sum() / (2 * 3.0)
            g_prior[:d] = (log_ls - mu) / 6.0
        else:
            ls_prior = -(0.1 / isl + 0.1 * isl).sum()
            g_prior[:d] = 0.1 / isl - 0.1 * isl
        prior = ls_prior + (2 - 1) * math.log(scale) - scale + (1.1 - 1) * math.log(noise) - 30 * noise
        g_prior[d] = 1 - scale
        g_prior[d + 1] = (0.1 / noise - 30) * enoise
        return -(mll + prior), -(g_mll + g_prior)

    def fit(self) -> LeanGP:
        import torch

        Xn, y = self.X.detach().numpy(), self.y.detach().numpy()
        key = (Xn.shape, Xn.tobytes(), y.tobytes(), self.group.numpy().tobytes(), self.weight.numpy().tobytes(),
               FIT_STARTS, LENGTHSCALE_PRIOR)
        with _FITS_LOCK:
            x = _FITS.get(key)
            if x is not None:
                _FITS.move_to_end(key)
        if x is None:
            x = self._fit_raw(Xn, y)
            with _FITS_LOCK:
                _FITS[key] = x
                while len(_FITS) > _FITS_KEPT:
                    _FITS.popitem(last=False)
        isl, scale, noise = self._unpack(torch.tensor(x))
        self.isl, self.scale, self.noise = self._per_feature(isl).detach(), scale.detach(), noise.detach()
        return self

    def _fit_raw(self, Xn: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The MAP hyperparameters (log inverse squared lengthscales, log scale, log noise) for data Xn, y."""
        d = self.n_params
        x0 = np.concatenate([np.zeros(d), [0.0, math.log(1e-2)]])
        # Weighted squared differences per coordinate: features of one choice share its lengthscale.
        G = np.zeros((Xn.shape[-1], d))
        G[np.arange(Xn.shape[-1]), self.group.numpy()] = self.weight.numpy()
        D = np.square(Xn[:, None, :] - Xn[None, :, :]) @ G

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            try:
                return self._loss_and_grad(x, D, y)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError, OverflowError):  # math.exp overflows
                return 1e10, np.zeros_like(x)

        import scipy.optimize

        # Extra starts (deterministic): short and long lengthscales, where a multimodal posterior hides
        # other modes from the default start.
        starts = [x0] + [
            np.concatenate([np.full(d, v), [0.0, math.log(1e-2)]]) for v in (2.0, -2.0, 4.0)
        ][: max(0, FIT_STARTS - 1)]
        x, best = x0, math.inf
        with np.errstate(all="ignore"):
            for start in starts:
                res = scipy.optimize.minimize(
                    f, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-2, "maxiter": 200}
                )
                # A start that ended where the loss could not be computed (f's 1e10) is no fit at all.
                if np.all(np.isfinite(res.x)) and float(res.fun) < min(best, 1e9):
                    x, best = res.x, float(res.fun)
        return np.array(x, dtype=float)

    def condition(self, X: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """The posterior (mean, variance) function given data X, y with the fitted hyperparameters."""
        import torch

        K = self._k(X, X) + self.noise * torch.eye(len(y), dtype=X.dtype)
        L = torch.linalg.cholesky(K + 1e-10 * torch.eye(len(y), dtype=X.dtype))
        alpha = torch.cholesky_solve(y.unsqueeze(-1), L).squeeze(-1)

        def posterior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            kx = self._k(x, X)
            mean = kx @ alpha
            v = _lower_solve_rows(L, kx)
            var = (self.scale - (v * v).sum(-1)).clamp_min(1e-12)
            return mean, var

        return posterior

    def condition_np(
        self, X: torch.Tensor, y: torch.Tensor
    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The posterior of ``condition`` in NumPy, with its gradients: x (B, f) -> mean (B,), variance (B,),
        d mean / dx (B, f), d variance / dx (B, f). The acquisition's local search calls it (torch's autograd
        cost about 1.5 ms per call on these tiny matrices, most of it op overhead)."""
        import scipy.linalg

        Xn, yn = X.detach().numpy(), y.detach().numpy()
        isl, scale, noise = self.isl.numpy(), float(self.scale), float(self.noise)
        n = len(yn)
        t = np.sqrt(5 * (np.square(Xn[:, None, :] - Xn[None, :, :]) @ isl))
        K = scale * (1 + t + t * t / 3) * np.exp(-t)
        K[np.diag_indices(n)] += noise + 1e-10
        L = scipy.linalg.cholesky(K, lower=True, check_finite=False)
        alpha = scipy.linalg.cho_solve((L, True), yn, check_finite=False)

        def posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            diff = x[:, None, :] - Xn[None, :, :]  # (B, n, f)
            tx = np.sqrt(5 * (np.square(diff) @ isl))
            ex = np.exp(-tx)
            k = scale * (1 + tx + tx * tx / 3) * ex
            dk_dr2 = scale * (-5 / 6) * (1 + tx) * ex  # the Matern 5/2's slope in the squared distance
            mean = k @ alpha
            v = scipy.linalg.solve_triangular(L, k.T, lower=True, check_finite=False)  # (n, B)
            var = scale - np.einsum("nb,nb->b", v, v)
            w = scipy.linalg.solve_triangular(L, v, lower=True, trans="T", check_finite=False)  # K^-1 k
            dk = (2 * dk_dr2)[..., None] * diff * isl  # (B, n, f): d k(x, X_i) / dx
            dmean = np.einsum("bnf,n->bf", dk, alpha)
            dvar = -2 * np.einsum("bnf,nb->bf", dk, w)
            low = var < 1e-12  # clamped as in ``condition``: no slope there
            dvar[low] = 0.0
            return mean, np.maximum(var, 1e-12), dmean, dvar

        return posterior

    def condition_pending(
        self, X: torch.Tensor, y: torch.Tensor, Xp: torch.Tensor, z: torch.Tensor, factors: PendingFactors | None = None
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
        """The posterior given data X, y and fantasised values of the pending points Xp.

        z (k, S): standard normal base samples. The pending points' latent values are drawn jointly from
        the posterior, fp = mu_p + L_p z (k, S); a point x given them is Gaussian with mean
        ``mean(x) + w(x) @ z`` (one per sample) and variance ``var(x) - |w(x)|^2``, where
        w = L_p^-1 cov(Xp, x). Returns fp and that function: x (..., f) -> (mean (..., S), var (...)).
        factors: ``pending_factors(X, y, Xp)`` when the caller has them already.
        """

        L, alpha, vp, Lp, mu_p = factors or self.pending_factors(X, y, Xp)
        fp = mu_p.unsqueeze(-1) + Lp @ z

        def posterior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            kx = self._k(x, X)
            mean = kx @ alpha
            v = _lower_solve_rows(L, kx)
            var = self.scale - (v * v).sum(-1)
            cxp = self._k(x, Xp) - v @ vp  # (..., k): cov(f(x), f(Xp)) under the posterior
            w = _lower_solve_rows(Lp, cxp)
            return mean.unsqueeze(-1) + w @ z, (var - (w * w).sum(-1)).clamp_min(1e-12)

        return fp, posterior

    def pending_factors(self, X: torch.Tensor, y: torch.Tensor, Xp: torch.Tensor) -> PendingFactors:
        """The factors of the posterior given the data and the pending points: L (the data's Cholesky factor),
        alpha (K^-1 y), vp (L^-1 K(X, Xp)), Lp (the pending points' posterior covariance factor) and mu_p
        (their posterior mean)."""
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
        return L, alpha, vp, Lp, mu_p

    def condition_pending_np(
        self, X: torch.Tensor, y: torch.Tensor, Xp: torch.Tensor, z: torch.Tensor, factors: PendingFactors | None = None
    ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """``condition_pending``'s posterior in NumPy, with its gradients (closed form, for the local search):
        x (B, f) -> mean (B, S), variance (B,), d mean / dx (B, f, S), d variance / dx (B, f)."""
        import scipy.linalg

        L, alpha, vp, Lp, _ = (t.detach().numpy() for t in (factors or self.pending_factors(X, y, Xp)))
        Xn, Xpn, zn = X.detach().numpy(), Xp.detach().numpy(), z.detach().numpy()
        isl, scale = self.isl.numpy(), float(self.scale)

        def kern(x: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """k(x, A) (B, m) and its gradient in x (B, m, f)."""
            diff = x[:, None, :] - A[None, :, :]
            t = np.sqrt(5 * (np.square(diff) @ isl))
            e = np.exp(-t)
            k = scale * (1 + t + t * t / 3) * e
            dk_dr2 = scale * (-5 / 6) * (1 + t) * e  # the Matern 5/2's slope in the squared distance
            return k, (2 * dk_dr2)[..., None] * diff * isl

        def posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            B, f = x.shape
            n, k = len(Xn), len(Xpn)
            kx, dkx = kern(x, Xn)  # (B, n), (B, n, f)
            kp, dkp = kern(x, Xpn)  # (B, k), (B, k, f)
            mean = kx @ alpha
            dmean = np.einsum("bnf,n->bf", dkx, alpha)
            v = scipy.linalg.solve_triangular(L, kx.T, lower=True, check_finite=False)  # (n, B)
            dv = scipy.linalg.solve_triangular(
                L, dkx.transpose(1, 0, 2).reshape(n, B * f), lower=True, check_finite=False
            ).reshape(n, B, f)
            var = scale - np.einsum("nb,nb->b", v, v)
            dvar = -2 * np.einsum("nb,nbf->bf", v, dv)
            cxp = kp - v.T @ vp  # (B, k): cov(f(x), f(Xp)) under the posterior
            dcxp = dkp - np.einsum("nbf,nk->bkf", dv, vp)
            w = scipy.linalg.solve_triangular(Lp, cxp.T, lower=True, check_finite=False)  # (k, B)
            dw = scipy.linalg.solve_triangular(
                Lp, dcxp.transpose(1, 0, 2).reshape(k, B * f), lower=True, check_finite=False
            ).reshape(k, B, f)
            mean_s = mean[:, None] + w.T @ zn  # (B, S)
            dmean_s = dmean[:, :, None] + np.einsum("kbf,ks->bfs", dw, zn)
            var_c = var - np.einsum("kb,kb->b", w, w)
            dvar_c = dvar - 2 * np.einsum("kb,kbf->bf", w, dw)
            low = var_c < 1e-12  # clamped as in ``condition_pending``: no slope there
            dvar_c[low] = 0.0
            return mean_s, np.maximum(var_c, 1e-12), dmean_s, dvar_c

        return posterior

    def _k(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        # The weighted |a - b|^2 expanded into matrix products: forming the (..., m, n, f) differences cost 32 ms
        # for 1024 candidates against 330 trials, this 1.2 ms. Rounding may leave tiny negatives: clamped.
        Aw = A * self.isl
        sqd = (Aw * A).sum(-1).unsqueeze(-1) + (B * B) @ self.isl - 2 * Aw @ B.transpose(-1, -2)
        return _matern52(sqd.clamp_min(0)) * self.scale

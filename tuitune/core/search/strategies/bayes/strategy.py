"""Provides BayesStrategy: an initial design, then a GP and log expected improvement over the space.

The first ``n_initial`` trials follow a scrambled Sobol sequence (their size adapts to the budget and the
dimension: ``initial_design_size``). After that a GP (Matern 5/2, one lengthscale per parameter) is fitted
to the completed trials and the next config maximises log expected improvement over the space. Each trial
records how its config was chosen: ``meta["chosen_by"]`` is ``"initial"`` or ``"model"``.

* The last tenth of a known budget (``EXPLOIT_LAST``, at least one trial) maximises the posterior mean
  instead of log EI: those trials' results never steer a later search, so they exploit the model.
* With constraints and one objective (``_suggest_ehvi``): log EI x P(feasible) on losses warped when they have a
  long bad tail (``ehvi.WARP``), the best feasible trials anchoring the acquisition's local search
  (``CONSTRAINED_ANCHORS``), and the last tenth of a known budget maximising the posterior mean among likely
  feasible points (``CONSTRAINED_EXPLOIT``).
* A warm start (``warm_start=``, ``tuitune.core.search.warm``): its best configs run first, its ranks inform
  the GP for the first trials, and while it ranks this session's values well (``warm.transfer_weight``)
  the search keeps to the box around its best configs (``WARM_EXPLOIT``).
* A failed trial is a point of the GP data with the worst value observed, so the search steers away
  from its region. NaN and inf never reach the GP.
* Running (and interrupted or paused) trials are pending points, so that with several workers each
  suggestion accounts for the others' running trials: the acquisition is the expected improvement of
  the batch {x, running trials}, their values fantasised by the GP (``acquisition.PENDING``: BoTorch's
  q-acquisitions with ``X_pending``; the constant liar before). A point next to a running one is worth
  little, so suggestions spread out; their exact configs are never suggested again either.
  ``benchmarks/results/bayes-workers.md`` measures it against the constant liar and against one worker.

Two GP engines share that machinery: ``engine="botorch"`` (BoTorch's SingleTaskGP fitted with
``fit_gpytorch_mll``, BoTorch's LogExpectedImprovement) and ``engine="lean"`` (``gp.LeanGP``).
``benchmarks/bench_bayes.py`` measures both against Optuna; the default is the one that wins there (see
``benchmarks/results/bayes.md``).

Everything ``ask`` does is a function of the seed, the options and the trial records: randomness comes
from ``self.rng(...)`` and a torch.Generator seeded from it, and the one thing kept between calls, the GP's
fitted hyperparameters (``gp._FITS``), is keyed by every input of the fit, so ``restore(records)`` continues
exactly like an uninterrupted run.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tuitune.core.errors import SpaceError, StrategyError
from tuitune.core.records import Direction, TrialState
from tuitune.core.search.space import Space
from tuitune.core.search.strategies.base import Strategy, Suggestion
from tuitune.core.search.strategies.bayes.acquisition import acquisition
from tuitune.core.search.strategies.bayes.encoding import Encoding
from tuitune.core.search.strategies.bayes.optim import optimize_acqf
from tuitune.core.search.warm import WARM_FIRST, transfer_weight

ENGINES = ("lean", "botorch")
DEFAULT_ENGINE = "lean"

# The last EXPLOIT_LAST of a known budget (at least one trial) maximise the GP's posterior mean instead of
# log EI: what those trials find is never used to search further, and EI's exploration far from the data
# (box edges, where the GP is most uncertain) kept the final best config a step off on the ints of "mixed".
# Paired over 20 seeds against log EI to the end (the first 27 of 30 trials identical), 10% won on branin
# 15-5, levy4 15-5, styblinski4 15-3 and mixed 17-3, 11-9 on hartmann6; 20% lost hartmann6 6-14 (its
# global basin is found late). benchmarks/results/bayes.md has the figures. Not with pending trials.
EXPLOIT_LAST = 0.1

# With priors (and n_initial not given): this share of the automatic initial design (at least 2), the prior's
# config first: the model, weighted by the prior, sooner. A quarter (2 trials up to 5 dimensions) against half
# (benchmarks/results/prior.md, 10 seeds): good priors 12 against 13 trials on branin, 7 against 9.5 on levy4,
# misleading ones 26.5 against 34.5 on hartmann6; the whole design lost to half.
PRIOR_INITIAL_FRACTION = 0.25

# A prior the data contradict (prior.PriorWeighted.gate below PRIOR_CONTRADICTED) no longer weighs on the search,
# but its own config's value stays in the model's data; that config may sit at a far corner whose value dwarfs
# the rest (logscale: 13 against 1-5), and standardised with it the values that matter look alike to the GP.
# Such a trial enters the model at most as bad as the worst of the others (a misleading prior on logscale:
# the target in 33 trials against never in 39). False: its own value (the rule before).
PRIOR_CLIP = True
PRIOR_CONTRADICTED = 0.5

# One objective with constraints (log EI x P(feasible), bayes/ehvi.py). Module constants so that
# benchmarks/bench_constraints_screen.py runs the variants side by side; every one measured (4 HPOLib tables under a
# model-size bound, 10 seeds, and 2 synthetic functions, 5 seeds, at 30 and 50 trials) is in
# benchmarks/results/constraints.md, "Alternatives measured". Kept, together (ehvi.WARP is the third):
# * CONSTRAINED_EXPLOIT: the last EXPLOIT_LAST of a known budget maximise the posterior mean among the points
#   feasible with at least this probability (as EXPLOIT_LAST does for one objective); None: log EI x P(feasible)
#   to the end. Alone it won 28-9 seed-runs against the path before, pooled over the tables.
# * CONSTRAINED_ANCHORS: the best feasible trials each start a local search of the acquisition (Optuna's
#   GPSampler starts one from its best trial): a discrete coordinate's every value next to the incumbent is
#   tried. With the above, 42-18 against the path before (1 and 5 anchors: 44-13 and 45-17).
# Measured and not kept (their default leaves the path as before):
# * LOG_SLACK: a constraint on a metric > 0 in every trial (bound > 0) modelled on a log scale
#   (records.Constraint.slacks): level alone (39-37), and it took from the kept set's wins (41-35 against 42-18);
# * CONSTRAINED_EFFORT: n_candidates and n_local of the acquisition search multiplied (2: 33-25, level);
# * CONSTRAINED_SPREAD: the discrete search also tries values spread over a long grid (optim._discrete_search;
#   34-29, level).
LOG_SLACK = False
CONSTRAINED_EXPLOIT: float | None = 0.5
CONSTRAINED_ANCHORS = 3
CONSTRAINED_EFFORT = 1.0
CONSTRAINED_SPREAD = False

# The constrained path's two other kept changes, as switches of the single-objective path (_suggest_model), off
# by default so that every committed single-objective figure stays the default's. Measured side by side
# (benchmarks/bench_single_screen.py; benchmarks/results/bayes.md, "Screened for the single-objective path (not
# adopted)"):
# * SINGLE_ANCHORS: this many best trials each start a local search of the acquisition (optimize_acqf(anchors=),
#   as CONSTRAINED_ANCHORS); 0: none;
# * SINGLE_WARP: the losses warped before the GP is fitted (ehvi._warp: "yeo-johnson" warps a long bad tail only,
#   as ehvi.WARP); None: not warped.
SINGLE_ANCHORS = 0
SINGLE_WARP: str | None = None

_PENDING_STATES = (TrialState.RUNNING, TrialState.INTERRUPTED, TrialState.PAUSED)


# A warm start's trials inform the model until the session has this many values of its own: then its own
# values alone fit it (measured: kept for good, the earlier optimum held the search where it had moved from;
# 6, 10 and 15, on ranks or on quantiles, in benchmarks/results/warm-start.md).
WARM_UNTIL = 6

# A warm start that ranks this session's own values well (warm.transfer_weight of a GP fitted on the earlier
# trials' ranks, at least WARM_AGREE, from WARM_FIRST own values on) has found the region of the optimum, and
# one that does not is left out of the model from then on (a misleading earlier session fades). WARM_EXPLOIT,
# what an agreeing one does (measured side by side in benchmarks/results/warm-start.md):
# * "box" (kept): the model's search keeps to the box around the earlier sessions' WARM_FIRST best configs
#   and this session's best point, each side widened by half the box and at least WARM_BOX_MARGIN of the
#   range, as Perrone et al. 2019 learn a search space from earlier tasks; a better point found outside
#   widens the box to take it in;
# * "alternate": from WARM_UNTIL own values on, every other model trial maximises the posterior mean (as the
#   last EXPLOIT_LAST of the budget do), converging sooner; "both"; "off": neither, and the earlier trials
#   in the model until WARM_UNTIL whatever they rank (the rule before).
# A module constant so that benchmarks/bench_warm_start.py can run the variants.
WARM_AGREE = 0.3
WARM_EXPLOIT = "box"
WARM_EXPLOITS = ("box", "alternate", "both", "off")
WARM_BOX_MARGIN = 0.1


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Scores (lower is better) as ranks in [0, 1]: 0 the best, 1 the worst, ties sharing their mean rank."""
    from scipy.stats import rankdata

    if len(scores) < 2:
        return np.zeros(len(scores))
    return (rankdata(scores) - 1) / (len(scores) - 1)


def initial_design_size(dim: int, n_trials: int | None) -> int:
    """How many Sobol trials come before the GP: Ax's max(5, 2 * dim), at most 10 (Optuna GPSampler's
    fixed number, enough for the GP's hyperparameters to settle), and at most a third of the budget (at
    least 2), so that a short session still spends most of its trials on the model: 10 trials give 3
    initial ones and 7 model ones. A budget of 30 or more never changes the rule's answer, so the first 30
    trials of a 60-trial session are those of a 30-trial one."""
    n = min(10, max(5, 2 * dim))
    if n_trials is not None:
        n = min(n, max(2, n_trials // 3))
    return n

@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the BLAS libraries an ask uses (built once: building it scans every library).

    SciPy's optimisers are imported first: SciPy loads its own OpenBLAS, and a controller built before
    that would not know it, leaving L-BFGS-B's BLAS on every core."""
    import scipy.linalg
    import scipy.optimize  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Small GP linear algebra runs fastest on one thread: many tiny ops, where torch's OpenMP threads and
    the OpenBLAS threads behind SciPy's L-BFGS-B otherwise fight over the cores (10x slower here)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas_controller().limit(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(old)


class BayesStrategy(Strategy):
    """Gaussian-process Bayesian optimisation with log expected improvement.

    Args:
        n_initial: trials drawn from a scrambled Sobol sequence before the GP takes over (None, the
            default: ``initial_design_size`` of the dimension and the budget).
        engine: ``"lean"`` (the GP written here) or ``"botorch"`` (BoTorch's SingleTaskGP).
        n_candidates: quasi-random points scored before the local searches start (default 1024).
        n_local: local searches run from the best of them and a roulette draw over the rest (default 8).
        pending: how pending points count, ``"fantasy"`` or ``"liar"`` (None: ``acquisition.PENDING``);
            not a user option: Hyperband's and ASHA's sampler keep the scheme their figures were measured with.
    """

    name = "bayes"

    def __init__(
        self,
        space: Space,
        *,
        n_initial: int | None = None,
        engine: str = DEFAULT_ENGINE,
        n_candidates: int = 1024,
        n_local: int = 8,
        pending: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(space, **kw)
        for opt, val, lo in (("n_initial", n_initial, 1), ("n_candidates", n_candidates, 16), ("n_local", n_local, 1)):
            if opt == "n_initial" and val is None:
                continue
            if not isinstance(val, int) or isinstance(val, bool) or val < lo:
                raise StrategyError(f"bayes option {opt} must be a whole number >= {lo}, got {val!r}")
        if engine not in ENGINES:
            raise StrategyError(f"bayes option engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")
        self.n_initial = n_initial
        self.engine = engine
        self.n_candidates = n_candidates
        self.n_local = n_local
        self.pending = pending
        self._enc = Encoding(space)
        self._warm_cache: tuple[np.ndarray, np.ndarray] | None = None  # the warm start encoded (constructor data)
        self._warm_model: Any = None  # the GP posterior of the warm start's ranks (constructor data too)
        # None is stored as the option (a resumed session applies the same rule to the same budget).
        self._n_initial = n_initial if n_initial is not None else initial_design_size(self._enc.dim, self.trial_cap())
        if n_initial is None and len(self._warm_u()[0]) >= 2:  # the earlier trials stand for the initial design
            self._n_initial = min(WARM_FIRST, len(self.warm))
        elif n_initial is None and space.priors:  # the prior's config first, and the model sooner
            self._n_initial = max(2, math.ceil(PRIOR_INITIAL_FRACTION * self._n_initial))

    # ---- ask ----------------------------------------------------------------------------------------
    def ask(self) -> Suggestion | None:
        if not self.budget_left():
            return None
        if self._enc.dim == 0:  # nothing to search: every config is the same
            return Suggestion(config=self._enc.to_config(np.empty(0)), budget=self.max_epochs)
        if self.n_created < min(WARM_FIRST, len(self.warm)):  # an earlier session's best configs first
            return Suggestion(config=self.draw(self.rng()), budget=self.max_epochs, meta={"chosen_by": "warm-start"})
        if self.n_created == 0 and self.space.priors:  # the priors' own config first (the prior's mode)
            config = self.space.prior_mode(self.rng(7))
            return Suggestion(config=config, budget=self.max_epochs, meta={"chosen_by": "initial"})
        data = self._data()
        taken = {self._enc.key(c) for c in data["configs"]}
        goal = self.objectives
        if not goal.plain:
            data = self._goal_data(data)
        if self.n_created >= self._n_initial and len(data["y_obs"]) >= 2:
            with _one_torch_thread(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not goal.plain and len(goal.metrics) <= 2:
                    u = self._suggest_ehvi(data, taken)
                else:
                    u = self._suggest_model(data, taken)
            if u is not None:
                return self._suggestion(u, "model")
        return self._suggestion(self._suggest_initial(taken), "initial")

    def _suggestion(self, u: np.ndarray, how: str) -> Suggestion:
        return Suggestion(config=self._enc.to_config(u), budget=self.max_epochs, meta={"chosen_by": how})

    def _data(self) -> dict[str, Any]:
        """Splits the records into observed points (u, score), failed points and pending points."""
        enc = self._enc
        obs_u, obs_y, bad_u, pend_u, configs = [], [], [], [], []
        for t in self.trials:
            try:
                u = enc.to_u(t.config)
            except (SpaceError, KeyError, TypeError, ValueError):
                continue  # a trial from another space (the session's space was changed): not our data
            configs.append(t.config)
            value = None if t.value is None else float(t.value)
            finite = value is not None and math.isfinite(value)
            if t.state == TrialState.COMPLETE and value is not None and finite:
                obs_u.append(u)
                obs_y.append(self.score(value))
            elif t.state in _PENDING_STATES:
                pend_u.append(u)
            elif t.state == TrialState.PRUNED and value is not None and finite:
                # Stopped early because it was poor; its value at that epoch is usually worse than where it
                # would have ended, which steers the search the right way.
                obs_u.append(u)
                obs_y.append(self.score(value))
            else:  # failed (or pruned without a value)
                bad_u.append(u)
        return {
            "u_obs": np.array(obs_u).reshape(-1, enc.dim),
            "y_obs": np.array(obs_y, dtype=float),
            "u_bad": np.array(bad_u).reshape(-1, enc.dim),
            "u_pend": np.array(pend_u).reshape(-1, enc.dim),
            "configs": configs,
        }

    def _goal_data(self, data: dict[str, Any]) -> dict[str, Any]:
        """The data of several objectives or constraints (records.Objectives): each observed point's losses,
        feasibility and constraint slacks; ``y_obs`` becomes ParEGO's scalarisation (three or more
        objectives, an infeasible point the worst) for the single-objective model."""
        from tuitune.core.search.strategies.bayes.ehvi import parego_scores

        goal, enc = self.objectives, self._enc
        obs_u, losses, feasible, cvals = [], [], [], []
        for t in self.trials:
            if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or t.value is None:
                continue
            try:
                u = enc.to_u(t.config)
            except (SpaceError, KeyError, TypeError, ValueError):
                continue
            got = goal.measured(t)
            vals = [got["values"].get(m) for m in goal.metrics]
            if any(v is None or not math.isfinite(v) for v in vals):
                continue
            obs_u.append(u)
            losses.append([self._sign(d) * float(v) for d, v in zip(goal.directions, vals)])
            feasible.append(bool(got.get("feasible", True)))
            cvals.append([got["values"].get(c.metric) for c in goal.constraints])
        L = np.array(losses, dtype=float).reshape(-1, len(goal.metrics))
        # Each constraint's slack as its GP models it (Constraint.slacks: a log scale for positive metrics).
        cols = [c.slacks([row[k] for row in cvals], log=LOG_SLACK) for k, c in enumerate(goal.constraints)]
        slacks = [[math.nan if col[i] is None else col[i] for col in cols] for i in range(len(cvals))]
        ok = np.array(feasible, dtype=bool)
        if len(goal.metrics) > 2:
            y = parego_scores(L, self.rng(17)) if len(L) else np.zeros(0)
            y = np.where(ok, y, y.max() if len(y) else 0.0)
        else:
            y = L[:, 0]
        return {
            **data, "u_obs": np.array(obs_u).reshape(-1, enc.dim), "y_obs": y, "u_bad": data["u_bad"][:0],
            "losses": L, "feasible": ok, "slacks": np.array(slacks, dtype=float).reshape(len(L), len(goal.constraints)),
        }

    @staticmethod
    def _sign(direction: str) -> float:
        return Direction(direction).sign

    def _suggest_ehvi(self, data: dict[str, Any], taken: set[tuple[float, ...]]) -> np.ndarray | None:
        """log EHVI (two objectives) or log EI (one) times the probability of feasibility (bayes/ehvi.py)."""
        import torch

        from tuitune.core.search.strategies.bayes.ehvi import build_acquisition

        enc = self._enc
        X = enc.features(torch.from_numpy(data["u_obs"]))
        Xp = enc.features(torch.from_numpy(data["u_pend"])) if len(data["u_pend"]) else X[:0]
        seed = int(self.rng(13).integers(2**31))
        one = data["losses"].shape[1] == 1 and data["slacks"].shape[1] > 0  # one objective with constraints
        exploit = CONSTRAINED_EXPLOIT if one and not len(Xp) and data["feasible"].any() and self._exploit() else None
        acq = build_acquisition(
            X, data["losses"], data["feasible"], data["slacks"], Xp, enc.group, enc.weight, seed, exploit,
        )
        rng = self.rng(11)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        # Local candidates around the feasible front, spread along it (MOASHA's order: layer, then crowding).
        from tuitune.core.records import nondominated_order

        ok = np.flatnonzero(data["feasible"])
        order = nondominated_order([tuple(row) for row in data["losses"][ok]])
        top = data["u_obs"][ok[order[:5]]] if len(ok) else data["u_obs"][:0]
        effort = CONSTRAINED_EFFORT if one else 1.0
        n_cand, n_local = max(16, round(self.n_candidates * effort)), max(1, round(self.n_local * effort))
        anchors = top[:CONSTRAINED_ANCHORS] if one else None
        cands, vals = optimize_acqf(
            acq, enc, top, n_cand, n_local, rng, gen, spread=one and CONSTRAINED_SPREAD, anchors=anchors,
        )
        for i in np.argsort(-vals):
            if np.isfinite(vals[i]) and self._key_u(cands[i]) not in taken:
                return cands[i]
        return None

    def _suggest_initial(self, taken: set[tuple[float, ...]]) -> np.ndarray:
        """The n_created-th point of the seeded scrambled Sobol sequence (a fresh one if it is taken)."""
        from scipy.stats import qmc

        n = self.n_created
        m = max(1, math.ceil(math.log2(n + 1)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z = qmc.Sobol(d=self._enc.dim, scramble=True, seed=self.seed & 0xFFFFFFFF).random_base2(m)[n : n + 1]
        u = self._enc.from_unit_cube(z)[0]
        rng = self.rng(7)
        for _ in range(64):
            if self._key_u(u) not in taken:
                break
            u = self._enc.from_unit_cube(rng.random((1, self._enc.dim)))[0]
        return u

    def _warm_u(self) -> tuple[np.ndarray, np.ndarray]:
        """The warm start's points (u) and ranks, for the model (entries that do not encode are left out)."""
        if self._warm_cache is None:
            us, ranks = [], []
            for w in self.warm:
                try:
                    us.append(self._enc.to_u(w["config"]))
                    ranks.append(float(w["rank"]))
                except (SpaceError, KeyError, TypeError, ValueError):
                    continue
            self._warm_cache = (np.array(us).reshape(-1, self._enc.dim), np.array(ranks, dtype=float))
        return self._warm_cache

    def _key_u(self, u: np.ndarray) -> tuple[float, ...]:
        return self._enc.key(self._enc.to_config(u))

    def warm_weight(self, u_obs: np.ndarray, scores: np.ndarray) -> float:
        """How much the warm start is trusted now: ``warm.transfer_weight`` of a GP fitted on the earlier
        trials' ranks, predicting this session's observed points (u_obs) against their scores (lower is
        better). 0 without a warm start or with fewer than 3 observed points."""
        import torch

        from tuitune.core.search.strategies.bayes.gp import LeanGP

        warm_u, warm_rank = self._warm_u()
        if len(warm_u) < 2 or len(scores) < 3:
            return 0.0
        enc = self._enc
        if self._warm_model is None:
            sd = float(warm_rank.std()) or 1.0
            X = enc.features(torch.from_numpy(warm_u))
            Y = torch.from_numpy(-(warm_rank - warm_rank.mean()) / sd)  # the GP maximises
            with _one_torch_thread(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._warm_model = LeanGP(X, Y, enc.group, enc.weight).fit().condition(X, Y)
        with torch.no_grad():
            mean, _ = self._warm_model(enc.features(torch.from_numpy(u_obs)))
        return transfer_weight((-mean).tolist(), [float(v) for v in scores])

    # ---- the model ----------------------------------------------------------------------------------
    def _exploit(self, data: dict[str, Any] | None = None, agree: bool = False) -> bool:
        """Whether this trial maximises the posterior mean (a function of the records): one of the last
        EXPLOIT_LAST of a known budget, or every other trial once a warm start agrees (WARM_EXPLOIT)."""
        cap = self.trial_cap()
        if cap is not None and EXPLOIT_LAST and cap - self.n_created <= max(1, round(EXPLOIT_LAST * cap)):
            return True
        if not agree or data is None or WARM_EXPLOIT not in ("alternate", "both"):
            return False
        return len(data["y_obs"]) >= WARM_UNTIL and self.n_created % 2 == 1

    def _warm_agrees(self, data: dict[str, Any]) -> bool:
        """Whether the warm start ranks this session's own values well enough to steer it (WARM_AGREE)."""
        if WARM_EXPLOIT == "off" or not self.warm or len(data["y_obs"]) < WARM_FIRST:
            return False
        return self.warm_weight(data["u_obs"], data["y_obs"]) >= WARM_AGREE

    def _warm_box(self, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """The u box around the earlier sessions' WARM_FIRST best configs and this session's best point so
        far (so a better region found elsewhere widens the box to take it in), widened (WARM_BOX_MARGIN)."""
        warm_u, _ = self._warm_u()  # best rank first
        top = np.concatenate([warm_u[:WARM_FIRST], data["u_obs"][[int(np.argmin(data["y_obs"]))]]])
        lo, hi = top.min(0), top.max(0)
        pad = np.maximum(0.5 * (hi - lo), WARM_BOX_MARGIN)
        lo, hi = np.clip(lo - pad, 0.0, 1.0), np.clip(hi + pad, 0.0, 1.0)
        for i in self._enc.cat_idx:  # choices: every one (the box bounds numbers only)
            lo[i], hi[i] = 0.0, float(self._enc.coords[i].n - 1)
        return lo, hi

    def _suggest_model(self, data: dict[str, Any], taken: set[tuple[float, ...]]) -> np.ndarray | None:
        import torch

        enc = self._enc
        prior = self._prior_features(data) if self.space.priors else None
        gate = self._prior_gate(data, prior) if prior is not None else 1.0
        if prior is not None and PRIOR_CLIP and gate < PRIOR_CONTRADICTED:
            data = self._clip_prior_mode(data, prior)
        if SINGLE_WARP:  # monotone: the best trial stays the best
            from tuitune.core.search.strategies.bayes.ehvi import _warp

            data = {**data, "y_obs": _warp(data["y_obs"], SINGLE_WARP)}
        y = -data["y_obs"]  # the GP maximises
        u_obs = data["u_obs"]
        warm_u, warm_rank = self._warm_u()
        agree = self._warm_agrees(data)
        # From WARM_FIRST own values on, only a warm start that agrees with them ("off": any, the rule before).
        if len(warm_u) and len(y) < WARM_UNTIL and (agree or len(y) < WARM_FIRST or WARM_EXPLOIT == "off"):
            # A warm start: the earlier sessions' ranks (0 the best, 1 the worst; a metric that shifted between
            # the sessions still lines up), placed at this session's value of the same quantile.
            if len(y) >= 2:
                yw = np.quantile(y, 1.0 - warm_rank)  # rank 0: this session's best value so far
            else:
                y, yw = -_ranks(data["y_obs"]), -warm_rank
            u_obs, y = np.concatenate([u_obs, warm_u]), np.concatenate([y, yw])
        worst = float(y.min())
        u_train = np.concatenate([u_obs, data["u_bad"]])
        y_train = np.concatenate([y, np.full(len(data["u_bad"]), worst)])
        mu, sd = float(y_train.mean()), float(y_train.std())
        sd = sd if sd > 1e-12 else 1.0
        ys = (y_train - mu) / sd
        best = float(((y - mu) / sd).max())
        X = enc.features(torch.from_numpy(u_train))
        Y = torch.from_numpy(ys)
        if len(data["u_pend"]):
            Xp = enc.features(torch.from_numpy(data["u_pend"]))
            Yp = torch.full((len(Xp),), float(ys.mean()), dtype=torch.float64)  # constant liar: the mean
        else:
            Xp, Yp = X[:0], Y[:0]

        fantasy_seed = int(self.rng(13).integers(2**31))
        exploit = self._exploit(data, agree)
        box = self._warm_box(data) if agree and WARM_EXPLOIT in ("box", "both") else None
        acq = acquisition(
            self.engine, X, Y, Xp, Yp, best, enc.group, enc.weight, seed=fantasy_seed, pending=self.pending,
            exploit=exploit,
        )
        if self.space.priors and not exploit:
            from tuitune.core.search.strategies.bayes.prior import PriorWeighted

            acq = PriorWeighted(acq, enc, PriorWeighted.power_after(len(data["y_obs"])) * gate)
        rng = self.rng(11)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        top = u_train[np.argsort(-y_train)[: min(5, len(y_train))]]
        anchors = data["u_obs"][np.argsort(data["y_obs"], kind="stable")[:SINGLE_ANCHORS]] if SINGLE_ANCHORS else None
        cands, vals = optimize_acqf(acq, enc, top, self.n_candidates, self.n_local, rng, gen, box, anchors=anchors)
        for i in np.argsort(-vals):
            if np.isfinite(vals[i]) and self._key_u(cands[i]) not in taken:
                return cands[i]
        return None

    # ---- the prior (piBO) ---------------------------------------------------------------------------
    def _prior_features(self, data: dict[str, Any]) -> tuple[Any, np.ndarray, np.ndarray]:
        """A PriorWeighted (for its log prior), the features of the observed points and of the prior's mode."""
        import torch

        from tuitune.core.search.strategies.bayes.prior import PriorWeighted

        enc = self._enc
        mode_u = enc.to_u(self.space.prior_mode(self.rng(7)))
        feats = enc.features(torch.from_numpy(np.concatenate([data["u_obs"], mode_u[None]]))).numpy()
        return PriorWeighted(lambda f: f, enc, 1.0), feats[:-1], feats[-1]

    def _prior_gate(self, data: dict[str, Any], prior: tuple[Any, np.ndarray, np.ndarray]) -> float:
        """How far the data agree with the prior: pi(best trial so far) / pi(prior's mode) (PriorWeighted.gate);
        ``prior``: ``_prior_features(data)``."""
        pw, obs, mode = prior
        return pw.gate(obs[int(np.argmin(data["y_obs"]))], mode)

    def _clip_prior_mode(self, data: dict[str, Any], prior: tuple[Any, np.ndarray, np.ndarray]) -> dict[str, Any]:
        """The data with the scores of the trials at the prior's own values (its mode) cut to the worst of the
        others' (PRIOR_CLIP), once there are at least 3 others; ``prior``: ``_prior_features(data)``."""
        pw, obs, mode = prior
        v, _ = pw.log_prior_np(np.concatenate([obs, mode[None]]))
        at_mode = v[:-1] >= v[-1] - 1e-9
        if not at_mode.any() or (~at_mode).sum() < 3:  # two others: they alone would set the scale
            return data
        y = data["y_obs"].copy()
        y[at_mode] = np.minimum(y[at_mode], y[~at_mode].max())
        return {**data, "y_obs": y}

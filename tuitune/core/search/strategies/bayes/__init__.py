"""Provides Bayesian optimisation: a Gaussian process on the encoded space and log expected improvement.

The package is split the way Optuna's ``_gp`` is:

* ``encoding``: the search space as coordinates (floats, grids, choices) and GP features, conditional
  parameters included (an inactive parameter's feature is held at a constant, its one-hot at zero);
* ``gp``: the lean exact GP (Matern 5/2, ARD) and its priors, fitted by MAP;
* ``acquisition``: log expected improvement, and the GP + acquisition a suggestion maximises (the lean GP or
  BoTorch's SingleTaskGP);
* ``optim``: the mixed local search that maximises the acquisition over the space;
* ``strategy``: ``BayesStrategy``: the initial design, the data from the trial records, the suggestion.

Everything ``ask`` does is a function of the seed, the options and the trial records, so
``restore(records)`` continues exactly like an uninterrupted run.
"""

from __future__ import annotations

from tuitune.core.search.strategies.bayes.optim import roulette as _roulette
from tuitune.core.search.strategies.bayes.strategy import DEFAULT_ENGINE, ENGINES, BayesStrategy, initial_design_size

__all__ = ["DEFAULT_ENGINE", "ENGINES", "BayesStrategy", "_roulette", "initial_design_size"]

"""Provides the strategies by name and ``make_strategy`` that builds one with its options checked."""

from __future__ import annotations

import importlib
from typing import Any

from tuitune.core.errors import StrategyError
from tuitune.core.strategies.base import WAIT, Strategy, Suggestion, Wait

# Modules are imported on first use: bayes pulls in torch and BoTorch.
_STRATEGIES = {
    "manual": ("tuitune.core.strategies.manual", "ManualStrategy"),
    "grid": ("tuitune.core.strategies.grid", "GridStrategy"),
    "random": ("tuitune.core.strategies.random", "RandomStrategy"),
    "bayes": ("tuitune.core.strategies.bayes", "BayesStrategy"),
    "hyperband": ("tuitune.core.strategies.hyperband", "HyperbandStrategy"),
    "asha": ("tuitune.core.strategies.asha", "AshaStrategy"),
}
STRATEGY_NAMES = tuple(_STRATEGIES)


def strategy_class(name: str) -> type[Strategy]:
    if name not in _STRATEGIES:
        raise StrategyError(f"strategy {name!r} is unknown; use one of {', '.join(STRATEGY_NAMES)}")
    module, cls = _STRATEGIES[name]
    return getattr(importlib.import_module(module), cls)


def make_strategy(name: str, space, **kwargs: Any) -> Strategy:
    """Builds strategy ``name``; an option it does not take is a StrategyError naming it."""
    cls = strategy_class(name)
    allowed = set(cls.option_names())
    common = {"seed", "max_epochs", "metric", "direction", "n_trials", "defaults"}
    unknown = sorted(set(kwargs) - allowed - common)
    if unknown:
        opts = ", ".join(sorted(allowed)) or "none"
        raise StrategyError(f"strategy '{name}' has no option {unknown[0]!r}; its options: {opts}")
    return cls(space, **kwargs)


__all__ = ["STRATEGY_NAMES", "WAIT", "Strategy", "Suggestion", "Wait", "make_strategy", "strategy_class"]

"""Provides the strategies by name and ``make_strategy`` that builds one with its options checked."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from tuitune.core.errors import StrategyError
from tuitune.core.search.strategies.base import WAIT, Strategy, Suggestion, Wait

# Modules are imported on first use: bayes pulls in torch and BoTorch.
_STRATEGIES = {
    "manual": ("tuitune.core.search.strategies.manual", "ManualStrategy"),
    "grid": ("tuitune.core.search.strategies.grid", "GridStrategy"),
    "random": ("tuitune.core.search.strategies.random", "RandomStrategy"),
    "bayes": ("tuitune.core.search.strategies.bayes", "BayesStrategy"),
    "hyperband": ("tuitune.core.search.strategies.hyperband", "HyperbandStrategy"),
    "asha": ("tuitune.core.search.strategies.asha", "AshaStrategy"),
}
STRATEGY_NAMES = tuple(_STRATEGIES)


@dataclass(frozen=True)
class StrategyOption:
    """A strategy option as the command line and the TUI's new-session screen offer it.

    Attributes:
        strategies: the strategies that take it; name: its keyword (``make_strategy(..., name=v)``).
        flag: its command-line flag; help: what it does.
        positive: 1 or more (else any whole number: the strategy checks it).
        choices: a word option's allowed values (then not a number).
        label, default: the TUI's field label and what it shows when left empty; no label: not on the screen.
    """

    strategies: tuple[str, ...]
    name: str
    flag: str
    help: str
    positive: bool = True
    choices: tuple[str, ...] = ()
    label: str | None = None
    default: str = ""


# Every strategy option a user can give outside Python, in the order the screens show them.
STRATEGY_OPTIONS: tuple[StrategyOption, ...] = (
    StrategyOption(("hyperband", "asha"), "factor", "--factor", "eta, the halving factor (default 3)",
                   positive=False, label="halving factor", default="3"),
    StrategyOption(("hyperband",), "bracket", "--bracket", "run this bracket alone (successive halving)",
                   positive=False),
    StrategyOption(("hyperband", "asha"), "sampler", "--sampler",
                   "new configs from a Bayes model of the highest rung with enough trials (bayes, the default; "
                   "BOHB-like) or at random", choices=("bayes", "random"),
                   label="new configs from", default="default: bayes"),
    StrategyOption(("asha",), "min_epochs", "--min-epochs", "the epochs of the lowest rung (default 1)"),
    StrategyOption(("bayes",), "n_initial", "--n-initial", "quasi-random points before the model",
                   label="Bayes initial points", default="automatic"),
    StrategyOption(("grid",), "points", "--grid-points", "values per float parameter (default 5)",
                   label="grid points per float", default="5"),
    StrategyOption(("grid",), "max_size", "--max-grid", "the largest grid allowed (default 10000)",
                   label="largest grid", default="10000"),
)


def option(strategy: str, name: str) -> StrategyOption:
    """The entry of ``STRATEGY_OPTIONS`` for a strategy's option (KeyError when there is none)."""
    for o in STRATEGY_OPTIONS:
        if strategy in o.strategies and o.name == name:
            return o
    raise KeyError((strategy, name))


def check_strategy_name(name: str) -> str:
    """``name`` when it names a strategy, else a one-line StrategyError listing the valid names."""
    if name not in _STRATEGIES:
        from tuitune.core.text import did_you_mean

        raise StrategyError(
            f"strategy {name!r} is unknown{did_you_mean(name, STRATEGY_NAMES)}; use one of {', '.join(STRATEGY_NAMES)}"
        )
    return name


def strategy_class(name: str) -> type[Strategy]:
    module, cls = _STRATEGIES[check_strategy_name(name)]
    return getattr(importlib.import_module(module), cls)


def make_strategy(name: str, space, **kwargs: Any) -> Strategy:
    """Builds strategy ``name``; an option it does not take is a StrategyError naming it."""
    cls = strategy_class(name)
    allowed = set(cls.option_names())
    common = {
        "seed", "max_epochs", "metric", "direction", "n_trials", "defaults", "total_epochs", "warm_start", "open_ended",
        "objectives", "constraints",
    }
    unknown = sorted(set(kwargs) - allowed - common)
    if unknown:
        opts = ", ".join(sorted(allowed)) or "none"
        raise StrategyError(f"strategy '{name}' has no option {unknown[0]!r}; its options: {opts}")
    return cls(space, **kwargs)


__all__ = [
    "STRATEGY_NAMES", "STRATEGY_OPTIONS", "WAIT", "Strategy", "StrategyOption", "Suggestion", "Wait",
    "check_strategy_name", "make_strategy", "option", "strategy_class",
]

"""Provides the sampler of the multi-fidelity strategies (hyperband, asha): where their new configs come from.

``"random"``: uniformly from the space (the papers). ``"bayes"`` (BOHB, Falkner et al. 2018, with the GP of
the bayes strategy in place of BOHB's TPE): a new config comes from the Bayes model fitted on the values at
the highest budget that at least ``dim + 2`` trials have finished (their best value over epochs 1..budget),
the other trials as pending points (constant liar, so one rung's new configs spread out); with too few such
trials, and for one new config in three (BOHB's random fraction, which keeps the search global), it is drawn
at random. Each new trial's meta says which: ``"chosen_by": "model" | "random"``. The model is a function of
the seed and the stored trials, so a resumed session continues exactly the same way.

This is the one home of that rule: both strategies call ``new_config``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tuitune.core.errors import StrategyError
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.strategies.base import Strategy, Suggestion

SAMPLERS = ("random", "bayes")
# BOHB's fraction of new configs drawn at random whatever the model says.
RANDOM_FRACTION = 1 / 3

# (trial, budget) -> whether the trial has finished that budget; (trial, budget) -> its value there.
Reached = Callable[[TrialRecord, int], bool]
ValueAt = Callable[[TrialRecord, int], "float | None"]


def check_sampler(strategy: str, sampler: Any) -> str:
    """``sampler`` when it is one of SAMPLERS, else a one-line StrategyError naming the strategy's option."""
    if sampler not in SAMPLERS:
        raise StrategyError(f"{strategy} option sampler {sampler!r} is unknown; use one of {', '.join(SAMPLERS)}")
    return str(sampler)


def new_config(
    strategy: Strategy,
    sampler: str,
    trials: Sequence[TrialRecord],
    budgets: Sequence[int],
    *,
    reached: Reached | None = None,
    value_at: ValueAt | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new config and the meta it adds (``chosen_by`` with the bayes sampler; nothing with random).

    Args:
        strategy: the caller; its seed, space, metric, direction and trial count seed the draws.
        trials: the strategy's own trials (the model's data).
        budgets: the budgets (epochs) the strategy ranks trials at; the highest with enough trials is fitted.
        reached, value_at: how to read a trial at a budget; by default from its epoch rows (the trial has
            trained that many epochs; its best value over epochs 1..budget).
    """
    config = strategy.draw(strategy.rng())  # drawn first either way: the random stream does not move
    if sampler != "bayes":
        return config, {}
    model = _model_config(strategy, trials, budgets, reached, value_at)
    return (model or config), {"chosen_by": "random" if model is None else "model"}


def _model_config(
    strategy: Strategy,
    trials: Sequence[TrialRecord],
    budgets: Sequence[int],
    reached: Reached | None,
    value_at: ValueAt | None,
) -> dict[str, Any] | None:
    """A config from the Bayes model at the highest budget with enough values; None: draw at random."""
    if strategy.rng(5).random() < RANDOM_FRACTION:
        return None
    from tuitune.core.search.strategies.bayes import BayesStrategy  # torch: only when the model is used

    if reached is None:
        reached = lambda t, b: t.last_epoch >= b  # noqa: E731
    if value_at is None:
        value_at = lambda t, b: t.value_at(b, strategy.metric, strategy.direction)  # noqa: E731
    n_min = len(strategy.space.searched) + 2
    for b in sorted(set(budgets), reverse=True):
        done = [t for t in trials if t.state != TrialState.FAILED and reached(t, b)]
        if len(done) >= n_min:
            break
    else:
        return None
    seen = {t.number for t in done}
    goal = strategy.objectives
    records = []
    for t in trials:
        if t.number in seen:
            v = value_at(t, b)
            state = TrialState.COMPLETE if v is not None else TrialState.FAILED
            # Several objectives or constraints: each read at this budget (the model is their log EHVI).
            info = {"objectives": goal.measure(t, upto=b)} if not goal.plain and t.epochs else t.info
            records.append(dataclasses.replace(t, state=state, value=v, meta={}, info=info))
        elif t.state == TrialState.FAILED:
            records.append(dataclasses.replace(t, meta={}))
        else:  # not at this budget yet: pending (constant liar), so new configs keep away from it
            records.append(dataclasses.replace(t, state=TrialState.RUNNING, value=None, meta={}))
    bayes = BayesStrategy(
        strategy.space, seed=strategy.seed, metric=strategy.metric, direction=strategy.direction, n_initial=1,
        **goal.to_options(),
        max_epochs=strategy.max_epochs,
        # The constant liar, as in the measured figures (hyperband-bayes.md, asha-bayes.md): here the pending
        # points are every config not yet at this rung (tens to hundreds), not a few trials running at once,
        # and the joint fantasy over them was not measured.
        pending="liar",
    )
    bayes.restore(records)
    s = bayes.ask()
    if not isinstance(s, Suggestion) or s.meta.get("chosen_by") != "model":
        return None
    return dict(s.config)

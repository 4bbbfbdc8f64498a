"""Provides random search: each searched parameter drawn uniformly on its own scale."""

from __future__ import annotations

from tuitune.core.search.strategies.base import Strategy, Suggestion


class RandomStrategy(Strategy):
    """Independent uniform draws on each parameter's scale (log, log1m, steps and choices respected)."""

    name = "random"

    def ask(self) -> Suggestion | None:
        # Never WAIT: no suggestion depends on a running trial's result. Running trials count against the
        # budget (they are told when they start), so N workers never overshoot it.
        if not self.budget_left():
            return None
        config = self.draw(self.rng())
        return Suggestion(config=config, budget=self.max_epochs)

"""Provides grid search: every combination, in a stable order, resumable from the stored trials."""

from __future__ import annotations

from typing import Any

from tuitune.core.errors import StrategyError
from tuitune.core.search.space import DEFAULT_GRID_POINTS
from tuitune.core.search.strategies.base import Strategy, Suggestion
from tuitune.core.search.warm import WARM_FIRST


class GridStrategy(Strategy):
    """Exhaustive search over the grid of the space.

    Int and Choice parameters take every value; a Float takes its ``grid=[...]``, else ``grid_points``
    values spaced on its scale (``points`` here, default 5). The grid position is stored on each trial
    (``meta["grid_index"]``), so a resumed session goes on where it stopped. With a warm start, the earlier
    sessions' best configs (``WARM_FIRST`` of them) run before the grid.

    Args:
        points: values per Float parameter that has neither ``grid`` nor ``grid_points``.
        max_size: the largest grid run without complaint; a larger one is refused (raise the limit).
    """

    name = "grid"

    def __init__(self, space, *, points: int = DEFAULT_GRID_POINTS, max_size: int = 10_000, **kw: Any) -> None:
        super().__init__(space, **kw)
        if not isinstance(points, int) or isinstance(points, bool) or points < 1:
            raise StrategyError(f"grid option points must be a whole number >= 1, got {points!r}")
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise StrategyError(f"grid option max_size must be a whole number >= 1, got {max_size!r}")
        self.points = points
        self.max_size = max_size
        self.size = space.grid_size(points)
        if self.size > max_size:
            detail = space.grid_breakdown(points)  # per branch: conditional parameters are never all active
            text = f"the grid has {self.size:,} configs ({detail}), over the limit of {max_size:,}; "
            todo = "shrink the space, give Floats fewer grid points, or raise"
            raise StrategyError(
                f"{text}{todo} max_size ({_max_flag()} on the command line)",
                cli_message=f"{text}{todo} the limit with {_max_flag()} {self.size}",
            )

    def _warm_first(self) -> int:
        return min(WARM_FIRST, len(self.warm))

    def total(self) -> int:
        cap = self.trial_cap()
        size = self.size + self._warm_first()
        return size if cap is None else min(size, cap)

    def ask(self) -> Suggestion | None:
        # Never WAIT: no suggestion depends on a running trial's result. Running trials count against the
        # budget (they are told when they start), so N workers never overshoot it.
        if not self.budget_left():
            return None
        if self.n_created < self._warm_first():  # an earlier session's best configs before the grid
            config = dict(self.warm[self.n_created]["config"])
            return Suggestion(config=config, budget=self.max_epochs, meta={"chosen_by": "warm-start"})
        used = {t.meta.get("grid_index") for t in self.trials}
        nxt = 1 + max((i for i in used if isinstance(i, int)), default=-1)
        if nxt >= self.size:
            return None
        return Suggestion(
            config=self.space.grid_point(nxt, self.points), budget=self.max_epochs, meta={"grid_index": nxt}
        )


def _max_flag() -> str:
    from tuitune.core.search.strategies import option

    return option("grid", "max_size").flag

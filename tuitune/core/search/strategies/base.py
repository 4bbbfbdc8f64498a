"""Provides the ask/tell contract every strategy keeps.

A strategy proposes configs (``ask``) and learns results (``tell``). It sees configs and trial records,
never the database, the UI or torch. Its whole state is a function of the seed, its options and the
trial records it was told about, so ``restore(stored_trials)`` on a fresh object gives exactly the
continuation an uninterrupted run would have had.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tuitune.core.errors import StrategyError
from tuitune.core.records import DIRECTIONS, Direction, Objectives, TrialRecord, TrialState, is_rankable
from tuitune.core.search.space import Space
from tuitune.core.search.warm import WARM_FIRST

# Random draws around a prior (Strategy.draw): the share of configs drawn from it, halved after PRIOR_HALF trials.
PRIOR_SHARE = 0.5
PRIOR_HALF = 10


class Wait:
    """What ``ask()`` answers when nothing can start before a running trial ends (a rung barrier).

    ``None`` from ``ask()`` means the strategy has finished: it will suggest nothing more, whatever the
    running trials report. ``WAIT`` means "ask again once a running trial has ended".
    """

    _instance: ClassVar[Wait | None] = None

    def __new__(cls) -> Wait:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "WAIT"


WAIT = Wait()


@dataclass
class Suggestion:
    """What the strategy wants run next.

    Attributes:
        config: every hyperparameter of the run.
        budget: the epochs the run may reach.
        trial: None for a new trial; the number of an existing trial to continue (a Hyperband promotion).
        meta: data the strategy wants stored on the trial (and sees again in its records).
    """

    config: dict[str, Any]
    budget: int
    trial: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Strategy(ABC):
    """Base class of the strategies.

    Args:
        space: the search space (Fixed parameters included).
        seed: every random choice derives from it.
        max_epochs: the epoch budget of a trial (Hyperband's R).
        metric, direction: what the trials are ranked by (the first objective when there are several).
        objectives: ``[[metric, direction], ...]`` when there are several (``self.objectives`` holds them all).
        constraints: ``["params <= 1e6", ...]`` on reported metrics.
        n_trials: how many trials the session may create (None: the strategy's own natural end, where it
            has one; grid and Hyperband do).
        defaults: a full config where manual mode starts.
        total_epochs: the session's total of epochs (None: no limit); with ``n_trials`` the smaller cap wins
            (``trial_cap``). Hyperband and asha fill it with brackets and rungs, the others with whole trials.
        warm_start: earlier sessions' trials fitted to this space and ranked (``tuitune.core.search.warm``): the
            best ones are the first configs drawn; bayes also fits its model on them.
        open_ended: the session ends by its time budget, not by a count (no ``n_trials``, no ``total_epochs``):
            hyperband and asha go on past their plan (``total()`` None) until the runner stops asking.
        **options: strategy-specific keyword options (``factor=3`` for Hyperband, ...).
    """

    name: ClassVar[str] = ""

    def __init__(
        self,
        space: Space,
        *,
        seed: int = 0,
        max_epochs: int = 1,
        metric: str = "val_loss",
        direction: str = "minimize",
        n_trials: int | None = None,
        defaults: Mapping[str, Any] | None = None,
        total_epochs: int | None = None,
        warm_start: Sequence[Mapping[str, Any]] | None = None,
        open_ended: bool = False,
        objectives: list[list[str]] | None = None,
        constraints: list[str] | None = None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise StrategyError(f"direction {direction!r} is unknown; use 'minimize' or 'maximize'")
        if not isinstance(max_epochs, int) or isinstance(max_epochs, bool) or max_epochs < 1:
            raise StrategyError(f"max_epochs must be a whole number >= 1, got {max_epochs!r}")
        if n_trials is not None and (not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 0):
            raise StrategyError(f"trials must be a whole number >= 0, got {n_trials!r}")
        self.space = space
        self.seed = int(seed)
        self.max_epochs = max_epochs
        self.metric = metric
        self.direction = direction
        if total_epochs is not None and (
            not isinstance(total_epochs, int) or isinstance(total_epochs, bool) or total_epochs < max_epochs
        ):
            raise StrategyError(
                f"total_epochs must be a whole number >= max_epochs ({max_epochs}: one trial), got {total_epochs!r}"
            )
        self.n_trials = n_trials
        self.total_epochs = total_epochs
        # Earlier sessions' trials (tuitune.core.search.warm): {"config", "rank"} entries, best first.
        self.warm = [dict(w) for w in warm_start or ()]
        self.open_ended = bool(open_ended) and n_trials is None and total_epochs is None
        self.defaults = dict(defaults) if defaults else None
        # Several objectives and constraints (records.Objectives), as the session stores them in its options.
        try:
            self.objectives = Objectives.of(metric, direction, {"objectives": objectives, "constraints": constraints})
        except ValueError as e:
            raise StrategyError(str(e)) from None
        self._trials: dict[int, TrialRecord] = {}

    # ---- state -------------------------------------------------------------------------------
    def restore(self, trials: Iterable[TrialRecord]) -> None:
        """Rebuilds the strategy's state from stored trial records (resume)."""
        self._trials = {t.number: t for t in trials}

    def tell(self, trial: TrialRecord) -> None:
        """Learns a trial's new state: called when a trial starts (running) and when it ends."""
        self._trials[trial.number] = trial

    @property
    def trials(self) -> list[TrialRecord]:
        return [self._trials[k] for k in sorted(self._trials)]

    @property
    def n_created(self) -> int:
        return len(self._trials)

    def configs_for_epochs(self, epochs: int) -> int:
        """How many new trials a total of epochs pays for: whole trials at ``max_epochs`` (hyperband and
        asha count their rungs)."""
        return epochs // self.max_epochs

    def trial_cap(self) -> int | None:
        """How many trials the session may create: the smaller of ``n_trials`` and what ``total_epochs`` pays
        for (None: neither is set)."""
        caps = [c for c in (self.n_trials, None if self.total_epochs is None else self.configs_for_epochs(self.total_epochs))
                if c is not None]
        return min(caps) if caps else None

    def budget_left(self) -> bool:
        """True while the session may still create a new trial."""
        cap = self.trial_cap()
        return cap is None or self.n_created < cap

    def rng(self, *salt: int) -> np.random.Generator:
        """A generator determined by the seed, the number of trials so far and the salt."""
        return np.random.default_rng([self.seed & 0xFFFFFFFF, self.n_created, *salt])

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """A new config at random (after a warm start's best configs, WARM_FIRST of them): uniformly on each
        parameter's scale, or, where parameters carry a prior,
        around it as PriorBand does: the first config is the priors' own, then a share of the draws come
        from the prior (PRIOR_SHARE, halved after PRIOR_HALF trials and fading on), the rest uniformly."""
        space = self.space
        n = self.n_created
        if n < min(WARM_FIRST, len(self.warm)):  # the earlier sessions' best configs first
            return dict(self.warm[n]["config"])
        if not space.priors:
            return space.sample(rng)
        if n == 0:
            return space.prior_mode(rng)
        if rng.random() < PRIOR_SHARE * PRIOR_HALF / (PRIOR_HALF + n):
            return space.prior_config(rng)
        return space.sample(rng)

    def score(self, value: float) -> float:
        """The value as a loss (lower is better), whatever the direction."""
        return Direction(self.direction).sign * value

    def completed(self) -> list[TrialRecord]:
        return [t for t in self.trials if is_rankable(t)]

    # ---- contract -----------------------------------------------------------------------------
    @abstractmethod
    def ask(self) -> Suggestion | Wait | None:
        """The next run; ``WAIT`` when it must wait for a running trial to end; None when it has finished."""

    def state_after(self, trial: TrialRecord) -> TrialState:
        """The state a run that ended without error leaves its trial in (Hyperband: PAUSED at a rung)."""
        return TrialState.COMPLETE

    def settle(self) -> dict[int, TrialState]:
        """Decisions the strategy has made on waiting trials (Hyperband: PAUSED -> PRUNED or COMPLETE)."""
        return {}

    def total(self) -> int | None:
        """How many trials the session will create, when known in advance."""
        return self.trial_cap()

    @classmethod
    def option_names(cls) -> list[str]:
        """The strategy-specific keyword options its constructor takes."""
        common = set(inspect.signature(Strategy.__init__).parameters)
        return [
            name
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in common and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]

    def options(self) -> dict[str, Any]:
        """The strategy-specific options, as stored with the session to rebuild it."""
        return {k: getattr(self, k) for k in self.option_names()}

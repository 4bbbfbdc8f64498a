"""Provides the plain records the engine hands around: trial states, trial and session snapshots.

Records are immutable snapshots read from the store; strategies, the runner, the command line and the
UI all see trials through them, never through SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class TrialState(str, Enum):
    """The states of docs/DESIGN.md section 3."""

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    PAUSED = "paused"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    def is_finished(self) -> bool:
        """True for states no run will change again (complete, pruned, failed)."""
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)

    def __str__(self) -> str:
        return self.value


class Direction(str, Enum):
    """Which way a metric is better: the one home of its sign, of "better" and of "the best of"."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    @property
    def sign(self) -> float:
        """1 for ``minimize``, -1 for ``maximize``: ``sign * value`` is lower for a better value."""
        return 1.0 if self is Direction.MINIMIZE else -1.0

    @property
    def sql(self) -> str:
        """The SQL aggregate that picks the best value (``min`` or ``max``)."""
        return "min" if self is Direction.MINIMIZE else "max"

    def better(self, a: float | None, b: float | None) -> bool:
        """True when value a is strictly better than b (None and NaN are worse than anything)."""
        if a is None or (isinstance(a, float) and math.isnan(a)):
            return False
        if b is None or (isinstance(b, float) and math.isnan(b)):
            return True
        return a < b if self is Direction.MINIMIZE else a > b

    def best_of(self, values: Iterable[float | None]) -> float | None:
        """The best finite value, or None."""
        vals = [v for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return None
        return min(vals) if self is Direction.MINIMIZE else max(vals)

    def __str__(self) -> str:
        return self.value


DIRECTIONS = tuple(d.value for d in Direction)
# The leaderboard's order of the trials that are not complete (SQL in the store and Python in the UI both
# sort by it); a state not named here comes last.
STATE_ORDER = {"running": 0, "paused": 1, "interrupted": 2, "pruned": 3, "complete": 3, "failed": 4}
STATE_LAST = 5
HEARTBEAT_EVERY = 0.5  # seconds between the owner's heartbeats
ALIVE_WITHIN = 3.0  # seconds: a session whose owner has not beaten for longer is dead (shown interrupted)


def is_alive(heartbeat: float | None, now: float | None = None) -> bool:
    """True when a session's last heartbeat (a time.time()) is recent enough for its owner to be running."""
    import time

    return heartbeat is not None and (now if now is not None else time.time()) - heartbeat <= ALIVE_WITHIN


def better(a: float | None, b: float | None, direction: str) -> bool:
    """True when value a is strictly better than b (None is worse than anything)."""
    return Direction(direction).better(a, b)


def sign(direction: str) -> float:
    """1 for ``minimize``, -1 for ``maximize``: ``sign * value`` is lower for a better value."""
    return Direction(direction).sign


def best_of(values: list[float], direction: str) -> float | None:
    return Direction(direction).best_of(values)


@dataclass(frozen=True)
class TrialRecord:
    """A snapshot of one trial.

    Attributes:
        number: the trial's number in its session, from 0.
        state: a TrialState.
        config: every hyperparameter, searched or fixed.
        value: the trial's value: what the objective returned, else the session metric at its best epoch.
        budget: the epochs this trial may reach (Hyperband raises it on promotion).
        epochs: the committed epoch rows, each ``{"epoch": n, <metric>: value, ...}``, in order.
        meta: what the strategy attached to the trial (grid index, bracket and rung, manual base, ...).
    """

    number: int
    state: TrialState
    config: dict[str, Any]
    value: float | None = None
    budget: int = 1
    epochs: tuple[dict[str, Any], ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    traceback: str | None = None
    started: float | None = None
    finished: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    updated: float | None = None  # when its row last changed (a start, an epoch row, its end)

    @property
    def last_epoch(self) -> int:
        return int(self.epochs[-1]["epoch"]) if self.epochs else 0

    def metric_values(self, metric: str, upto: int | None = None) -> list[float]:
        return [
            float(e[metric])
            for e in self.epochs
            if metric in e and e[metric] is not None and (upto is None or e["epoch"] <= upto)
        ]

    def value_at(self, budget: int, metric: str, direction: str) -> float | None:
        """The best value of the metric over epochs 1..budget (what Hyperband compares at a rung)."""
        return best_of(self.metric_values(metric, budget), direction)


@dataclass(frozen=True)
class SessionRecord:
    """A snapshot of one session's settings and progress."""

    name: str
    strategy: str
    options: dict[str, Any]
    space: dict[str, Any]
    metric: str
    direction: str
    seed: int
    max_epochs: int
    n_trials: int | None
    state: str
    preset: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    created: float | None = None
    updated: float | None = None
    n_done: int = 0
    best_value: float | None = None
    message: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    heartbeat: float | None = None  # the owner's last sign of life (time.time()), None when nobody runs it
    owner: str | None = None  # "pid@host" of the process running it
    note: str | None = None

    @property
    def searched(self) -> list[str]:
        """The names of the parameters this session searches (the fixed ones left out)."""
        return searched_names(self.space)

    @property
    def alive(self) -> bool:
        """True while a process runs this session (its heartbeat is recent)."""
        return is_alive(self.heartbeat)


@dataclass(frozen=True)
class TrialSummary:
    """What a leaderboard row needs of a trial's epoch rows, without the rows (``Store.trial_summaries``).

    Attributes:
        last_epoch: the last live epoch (0 before the first).
        train_seconds: the sum of the epochs' ``epoch_seconds``: training time, without pauses, waits at
            a rung or time the app was closed; None when an epoch did not report it.
        best_acc: the best ``val_acc`` reported, None when the trial reports none.
    """

    last_epoch: int = 0
    train_seconds: float | None = None
    best_acc: float | None = None


@dataclass(frozen=True)
class LeaderRow:
    """One leaderboard row: the trial without its epoch rows, its summary and its rank (complete ones)."""

    trial: TrialRecord
    summary: TrialSummary
    rank: int | None = None


# ---- the rules on trials: one home ----------------------------------------------------------------


def is_rankable(t: TrialRecord) -> bool:
    """A trial that can be ranked: complete, with a value. Only these are ever "best" or exported."""
    return t.state == TrialState.COMPLETE and t.value is not None


def ranked(trials: Iterable[TrialRecord], direction: str) -> list[TrialRecord]:
    """The leaderboard order: rankable trials best first (ties: the earlier trial first)."""
    s = sign(direction)
    return sorted((t for t in trials if is_rankable(t)), key=lambda t: (s * (t.value or 0.0), t.number))


def best_trial(trials: Iterable[TrialRecord], direction: str) -> TrialRecord | None:
    """The best rankable trial, or None (a failed, pruned or unfinished trial is never best)."""
    board = ranked(trials, direction)
    return board[0] if board else None


def searched_names(space: Mapping[str, Any]) -> list[str]:
    """The searched parameters of a stored space (``SessionRecord.space``): every one but the fixed."""
    return [k for k, p in space.items() if p.get("type") != "fixed"]

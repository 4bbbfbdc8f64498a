"""Provides the plain records the engine hands around: trial states, trial and session snapshots.

Records are immutable snapshots read from the store; strategies, the runner, the command line and the
UI all see trials through them, never through SQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
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


# ---- several objectives and constraints: one home ---------------------------------------------------

_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound`` on a metric the trials report."""

    metric: str
    op: str
    bound: float

    def slack(self, value: float | None) -> float | None:
        """How far inside the bound the value is (>= 0: satisfied); None when the metric is missing."""
        if value is None or not math.isfinite(value):
            return None
        return self.bound - value if self.op == "<=" else value - self.bound

    def slacks(self, values: Sequence[float | None], log: bool = True) -> list[float | None]:
        """The slacks of several trials' values as a model of the constraint sees them: on a log scale
        (``log bound - log value`` for ``<=``) when the bound and every reported value are > 0 (and ``log``),
        else ``slack``. Sizes, latencies and parameter counts span decades: their plain slack squeezes every
        feasible value next to zero against the few huge violations, and a GP fitted on it cannot place the
        boundary; their log is close to additive in the log-scale parameters that set them. The sign (the
        feasibility) is the same on either scale."""
        got = [v for v in values if v is not None and math.isfinite(v)]
        if not (log and self.bound > 0 and got and min(got) > 0):
            return [self.slack(v) for v in values]
        lb = math.log(self.bound)
        return [
            None if v is None or not math.isfinite(v) else (lb - math.log(v) if self.op == "<=" else math.log(v) - lb)
            for v in values
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraint(text: Any) -> Constraint:
    """Parses ``"params <= 1e6"``: a metric name, ``<=`` or ``>=``, a number (ValueError with one line)."""
    m = _CONSTRAINT_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(
            f"constraint {text!r} is not 'METRIC <= NUMBER' or 'METRIC >= NUMBER' (e.g. 'params <= 1e6')"
        )
    bound = float(m.group(3))
    if not math.isfinite(bound):
        raise ValueError(f"constraint {text!r}: the bound must be a finite number")
    return Constraint(m.group(1), m.group(2), bound)


def chosen_epoch(t: TrialRecord, metric: str, direction: str, upto: int | None = None) -> dict[str, Any] | None:
    """The epoch row a trial is judged at: where ``metric`` is best (the earliest among equals), epochs 1..upto.

    The same rule as a single metric's value (``best_of`` over the epochs): the other metrics of a trial
    with several objectives or constraints are read at this epoch.
    """
    best: dict[str, Any] | None = None
    for e in t.epochs:
        if upto is not None and e["epoch"] > upto:
            break
        v = e.get(metric)
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        if best is None or better(float(v), float(best[metric]), direction):
            best = e
    return best


def metric_at(t: TrialRecord, epoch: dict[str, Any] | None, name: str) -> float | None:
    """The value of metric ``name`` at a chosen epoch: reported there, else its last report before it."""
    if epoch is None:
        return None
    found: float | None = None
    for e in t.epochs:
        if e["epoch"] > epoch["epoch"]:
            break
        v = e.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            found = float(v)
    return found


@dataclass(frozen=True)
class Objectives:
    """What ranks a session's trials: one or several metrics with their directions, and constraints.

    A single metric without constraints ranks as it always has (by ``value``). With several metrics, the
    rankable trials are ordered by Pareto layer (non-dominated sorting), then by the first metric; with
    constraints, a trial that breaks one (or did not report its metric) is infeasible: never ranked, best,
    on the Pareto set or exported.
    """

    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def multi(self) -> bool:
        return len(self.metrics) > 1

    @property
    def plain(self) -> bool:
        """One metric and no constraint: the ``value`` column says everything."""
        return not self.multi and not self.constraints

    @classmethod
    def single(cls, metric: str, direction: str) -> Objectives:
        return cls((metric,), (direction,))

    @classmethod
    def build(cls, metric: Any, direction: Any, constraints: Any = None) -> Objectives:
        """From the user's ``metric``/``direction`` (a string or a list each) and constraint strings.

        Raises ValueError with one line naming the key.
        """
        metrics = [metric] if isinstance(metric, str) else list(metric) if isinstance(metric, (list, tuple)) else None
        if not metrics or not all(isinstance(m, str) and m for m in metrics):
            raise ValueError(f"metric {metric!r} is not a metric name or a list of them")
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"metric {metric!r} names a metric twice")
        if isinstance(direction, str):
            directions = [direction] * len(metrics) if len(metrics) == 1 else [direction]
        elif isinstance(direction, (list, tuple)):
            directions = list(direction)
        else:
            directions = []
        if len(directions) != len(metrics):
            raise ValueError(
                f"direction {direction!r} must give one of 'minimize' or 'maximize' per metric ({len(metrics)})"
            )
        for d in directions:
            if d not in DIRECTIONS:
                raise ValueError(f"direction {d!r} is unknown; use 'minimize' or 'maximize'")
        if constraints is None:
            constraints = []
        if isinstance(constraints, str):
            constraints = [constraints]
        if not isinstance(constraints, (list, tuple)):
            raise ValueError(f"constraints {constraints!r} is not a list of 'METRIC <= NUMBER' strings")
        return cls(tuple(metrics), tuple(directions), tuple(parse_constraint(c) for c in constraints))

    @classmethod
    def of(cls, metric: str, direction: str, options: Mapping[str, Any] | None) -> Objectives:
        """A session's objectives from its stored metric, direction and options (``objectives``,
        ``constraints``; sessions stored before these had one metric and no constraint)."""
        opts = options or {}
        pairs = opts.get("objectives") or [[metric, direction]]
        return cls(
            tuple(str(p[0]) for p in pairs), tuple(str(p[1]) for p in pairs),
            tuple(parse_constraint(c) for c in opts.get("constraints") or ()),
        )

    def to_options(self) -> dict[str, Any]:
        """What a session stores in its options (nothing for one metric without constraints)."""
        out: dict[str, Any] = {}
        if self.multi:
            out["objectives"] = [[m, d] for m, d in zip(self.metrics, self.directions)]
        if self.constraints:
            out["constraints"] = [str(c) for c in self.constraints]
        return out

    # ---- a trial's values ------------------------------------------------------------------------
    def measure(self, t: TrialRecord, upto: int | None = None) -> dict[str, Any]:
        """A trial's values per metric and constraint metric at its chosen epoch, and its feasibility.

        Returns ``{"values": {metric: value}, "feasible": bool}`` (what the runner stores in the trial's
        info): the epoch is the first metric's best (``chosen_epoch``).
        """
        ep = chosen_epoch(t, self.metrics[0], self.directions[0], upto)
        names = list(self.metrics) + [c.metric for c in self.constraints if c.metric not in self.metrics]
        values = {n: metric_at(t, ep, n) for n in names}
        if upto is None and t.value is not None:
            values[self.metrics[0]] = t.value  # the trial's value (what the objective returned, if it did)
        feasible = all((s := c.slack(values.get(c.metric))) is not None and s >= 0 for c in self.constraints)
        return {"values": values, "feasible": feasible}

    def measured(self, t: TrialRecord) -> dict[str, Any]:
        """What the runner stored when the trial ended (``info["objectives"]``), else measured now."""
        got = t.info.get("objectives") if t.info else None
        if isinstance(got, dict) and isinstance(got.get("values"), dict):
            return got
        return self.measure(t)

    def values(self, t: TrialRecord, upto: int | None = None) -> tuple[float, ...] | None:
        """The trial's value per objective (None when one is missing)."""
        if upto is not None:
            got = self.measure(t, upto)
        elif self.plain:
            return (t.value,) if t.value is not None else None
        else:
            got = self.measured(t)
        if upto is None and not self.multi:
            return (t.value,) if t.value is not None else None
        vals = [got["values"].get(m) for m in self.metrics]
        if any(v is None for v in vals):
            return None
        return tuple(float(v) for v in vals)

    def losses(self, t: TrialRecord, upto: int | None = None) -> tuple[float, ...] | None:
        """The values as losses (lower is better for each)."""
        vals = self.values(t, upto)
        return None if vals is None else tuple(sign(d) * v for d, v in zip(self.directions, vals))

    def feasible(self, t: TrialRecord, upto: int | None = None) -> bool:
        """True when the trial keeps every constraint (always, without constraints)."""
        if not self.constraints:
            return True
        got = self.measure(t, upto) if upto is not None else self.measured(t)
        return bool(got.get("feasible"))

    def rankable(self, t: TrialRecord) -> bool:
        """Complete, with a value per objective, and feasible: only these are ranked, best or exported."""
        return is_rankable(t) and self.values(t) is not None and self.feasible(t)


# ---- Pareto ranking ----------------------------------------------------------------------------


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """True when losses ``a`` are no worse than ``b`` in every objective and better in one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_layers(points: list[tuple[float, ...]]) -> list[int]:
    """Each point's non-dominated layer (0: the Pareto front), by repeated non-dominated sorting.

    Two objectives: O(n log n) (a leaderboard of 10,000 trials is ranked this way on each change): in order
    of the first loss, a point joins the first layer whose lowest second loss so far is above its own
    (those lows rise with the layer), an identical point the layer of its twin."""
    if points and len(points[0]) == 2:
        return _layers_2d(points)
    n = len(points)
    layer = [-1] * n
    left = set(range(n))
    k = 0
    while left:
        front = [i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)]
        for i in front:
            layer[i] = k
        left -= set(front)
        k += 1
    return layer


def _layers_2d(points: list[tuple[float, ...]]) -> list[int]:
    import bisect

    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    lows: list[float] = []  # per layer, the lowest second loss of its points so far
    layer = [0] * len(points)
    prev: int | None = None
    for i in order:
        if prev is not None and points[prev] == points[i]:
            layer[i] = layer[prev]
        else:
            k = bisect.bisect_right(lows, points[i][1])  # the first layer none of whose points dominates it
            if k == len(lows):
                lows.append(points[i][1])
            else:
                lows[k] = min(lows[k], points[i][1])
            layer[i] = k
        prev = i
    return layer


def crowding_distances(points: list[tuple[float, ...]]) -> list[float]:
    """NSGA-II's crowding distance of each point within its set (the extremes: infinity)."""
    n = len(points)
    dist = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        lo, hi = points[order[0]][m], points[order[-1]][m]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for a, i, b in zip(order, order[1:], order[2:]):
            dist[i] += (points[b][m] - points[a][m]) / (hi - lo)
    return dist


def nondominated_order(points: list[tuple[float, ...]]) -> list[int]:
    """Indices best first as MOASHA ranks: by Pareto layer, then by crowding distance (larger first),
    then by index."""
    layer = pareto_layers(points)
    crowd = [0.0] * len(points)
    for k in set(layer):
        idx = [i for i in range(len(points)) if layer[i] == k]
        for i, d in zip(idx, crowding_distances([points[i] for i in idx])):
            crowd[i] = d
    return sorted(range(len(points)), key=lambda i: (layer[i], -crowd[i], i))


def ranked_by(trials: Iterable[TrialRecord], objectives: Objectives) -> list[TrialRecord]:
    """The leaderboard order of any session: its rankable trials best first.

    One metric: by value (ties: the earlier trial). Several: by Pareto layer, then by the first metric,
    then by number. Infeasible trials are left out (``Objectives.rankable``).
    """
    if objectives.plain:
        return ranked(trials, objectives.directions[0])
    pool = [t for t in trials if objectives.rankable(t)]
    losses = [objectives.losses(t) or () for t in pool]
    layer = pareto_layers(losses) if objectives.multi else [0] * len(pool)
    order = sorted(range(len(pool)), key=lambda i: (layer[i], losses[i][0], pool[i].number))
    return [pool[i] for i in order]


def best_by(trials: Iterable[TrialRecord], objectives: Objectives) -> TrialRecord | None:
    """The best rankable trial (several objectives: the Pareto trial best in the first metric), or None."""
    board = ranked_by(trials, objectives)
    return board[0] if board else None


def pareto_set(trials: Iterable[TrialRecord], objectives: Objectives) -> list[TrialRecord]:
    """The non-dominated feasible complete trials, by the first metric (one metric: the best trial)."""
    pool = [t for t in trials if objectives.rankable(t)]
    if not objectives.multi:
        best = best_by(pool, objectives)
        return [best] if best is not None else []
    losses = [objectives.losses(t) or () for t in pool]
    layer = pareto_layers(losses)
    front = [i for i in range(len(pool)) if layer[i] == 0]
    return [pool[i] for i in sorted(front, key=lambda i: (losses[i][0], pool[i].number))]


def hypervolume_2d(points: Iterable[tuple[float, float]], ref: tuple[float, float]) -> float:
    """The area two-objective losses dominate up to the reference point (both objectives minimized)."""
    pts = sorted((p for p in points if p[0] < ref[0] and p[1] < ref[1]), key=lambda p: (p[0], p[1]))
    area, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            area += (ref[0] - x) * (best_y - y)  # the slab this point adds below the front so far
            best_y = y
    return area

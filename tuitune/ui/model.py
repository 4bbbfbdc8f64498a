"""Provides SessionView: what the screens know of one session, read from the store a page at a time
and kept live by runner events.

No Textual import, and no SQL: every query is a method of the storage read contract (``StoreReads``).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from tuitune.core.budget import Budget, run_seconds
from tuitune.core.errors import TuituneError
from tuitune.core.records import (
    STATE_LAST,
    STATE_ORDER,
    Direction,
    LeaderRow,
    Objectives,
    TrialRecord,
    TrialState,
    TrialSummary,
    better,
)
from tuitune.core.store.contract import StoreAccess, StoreReads  # noqa: F401 - StoreAccess: the screens' type

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


def epoch_seconds(epochs: Iterable[dict[str, Any]]) -> float | None:
    """The sum of the epochs' ``epoch_seconds`` (None when one lacks it): training time only."""
    total = 0.0
    n = 0
    for e in epochs:
        v = e.get("epoch_seconds")
        if not isinstance(v, (int, float)):
            return None
        total += float(v)
        n += 1
    return total if n else None


def trial_duration(t: TrialRecord, now: float | None = None) -> float | None:
    """The trial's training seconds: the sum of its epochs' ``epoch_seconds`` (so pauses, waits at a
    rung and time the app was closed are left out); when its objective does not report them, the
    time from its start to its end (to ``now`` while it runs, else to its last epoch)."""
    trained = epoch_seconds(t.epochs)
    if trained is not None:
        return trained
    if t.started is None:
        return None
    end = t.finished
    if end is None and now is not None and t.state == TrialState.RUNNING:
        end = now
    if end is None and t.epochs:
        end = t.epochs[-1].get("time")
    return None if end is None else max(0.0, end - t.started)


def best_epoch(t: TrialRecord, metric: str, direction: str) -> dict[str, Any] | None:
    """The epoch row where the session metric was at its best."""
    best = None
    for e in t.epochs:
        v = e.get(metric)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            continue
        if best is None or better(v, best.get(metric), direction):
            best = e
    return best


def base_label(meta: dict[str, Any]) -> str:
    base = meta.get("base")
    return "defaults" if base in (None, "defaults") else f"#{base}"


def is_manual(t: TrialRecord) -> bool:
    return "change" in t.meta




def rank_key(number: int, state: str, value: float | None, sign: float) -> tuple[Any, ...]:
    if state == "complete" and value is not None:
        return (0, value * sign, 0, number)
    return (1, 0.0, STATE_ORDER.get(state, STATE_LAST), number)


def param_key(number: int, v: Any) -> tuple[Any, ...]:
    """Numbers before text, missing last (as SQLite sorts a JSON value), then by number."""
    if isinstance(v, (int, float)):
        return (0, float(v), "", number)
    if v is None:
        return (2, 0.0, "", number)
    return (1, 0.0, str(v), number)


class SortArrays:
    """Every trial's sort keys in memory, each order kept sorted: pressing a sort key copies a list,
    and a trial that changes moves by bisection (10,000 trials: about a millisecond).

    Args:
        rows: (number, state, value, config) of every trial (``Store.sort_rows``).
        params: the parameters the leaderboard sorts by.
        sign: 1 to minimize, -1 to maximize.
    """

    def __init__(self, rows: list[tuple[int, str, float | None, dict[str, Any]]], params: list[str], sign: float) -> None:
        self.sign, self.params = sign, params
        self.keys: dict[str, dict[int, tuple[Any, ...]]] = {"rank": {}, **{p: {} for p in params}}
        for number, state, value, config in rows:
            self.keys["rank"][number] = rank_key(number, state, value, sign)
            for p in params:
                self.keys[p][number] = param_key(number, config.get(p))
        self.sorted = {k: sorted(v.values()) for k, v in self.keys.items()}

    def update(self, number: int, state: str, value: float | None, config: dict[str, Any]) -> None:
        self._put("rank", number, rank_key(number, state, value, self.sign))
        if self.params and number not in self.keys[self.params[0]]:  # a config never changes: new trials only
            for p in self.params:
                self._put(p, number, param_key(number, config.get(p)))

    def _put(self, which: str, number: int, key: tuple[Any, ...]) -> None:
        keys, ordered = self.keys[which], self.sorted[which]
        old = keys.get(number)
        if old == key:
            return
        if old is not None:
            del ordered[bisect.bisect_left(ordered, old)]
        bisect.insort(ordered, key)
        keys[number] = key

    def numbers(self, which: str) -> list[int]:
        if which == "trial":
            return sorted(self.keys["rank"])
        return [k[-1] for k in self.sorted[which]]

    def rank(self, number: int) -> int | None:
        key = self.keys["rank"].get(number)
        if key is None or key[0] != 0:
            return None
        return bisect.bisect_left(self.sorted["rank"], key) + 1


class TrialsMap(Mapping[int, TrialRecord]):
    """The trials of a SessionView as a read-only mapping that loads each one when asked for."""

    def __init__(self, view: SessionView) -> None:
        self.view = view

    def __getitem__(self, number: int) -> TrialRecord:
        t = self.view.trial(number)
        if t is None:
            raise KeyError(number)
        return t

    def __contains__(self, number: object) -> bool:
        return isinstance(number, int) and self.view.trial(number) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.view.order("trial")))

    def __len__(self) -> int:
        return self.view.n_trials()


class SessionView:
    """One session as the screens see it: read from the store a page at a time, kept live by run events.

    A session may hold 10,000 trials: nothing here loads them all. Orders, counts and the best trial
    come from SQL and are cached until an event says they changed; a trial's epoch rows are read
    only for the trials a chart or a screen shows; the running trial's rows come from the events.

    Args:
        store: the database.
        name: the session.
    """

    def __init__(self, store: StoreReads, name: str) -> None:
        self.store = store
        self.name = name
        self.record = store.session(name)
        self._read_at = time.monotonic()  # when record.info's run_seconds was read
        self.current: int | None = None
        self.total: int | None = self.record.n_trials
        self.searched = self.record.searched
        self.metrics = store.metric_names(name)
        self.live: dict[int, TrialRecord] = {}  # trials this app's run touched, with their epoch rows
        self._cache: dict[Any, Any] = {}
        self._trials: dict[int, TrialRecord] = {}  # trials read from the store since the last change
        self._seconds: dict[int, tuple[str, float | None]] | None = None  # per trial: state, training seconds
        self.arrays: SortArrays | None = None  # every trial's sort keys, once loaded (load_arrays)

    @property
    def metric(self) -> str:
        return self.record.metric

    @property
    def direction(self) -> str:
        return self.record.direction

    @property
    def goal(self) -> Objectives:
        """The session's objectives and constraints (one metric and none for most sessions)."""
        return Objectives.of(self.record.metric, self.record.direction, self.record.options)

    @property
    def trials(self) -> TrialsMap:
        return TrialsMap(self)

    # ---- updates ---------------------------------------------------------------------------
    def changed(self) -> None:
        """Forgets what was read from the store (a trial began or ended, another process wrote)."""
        self._cache.clear()
        self._trials.clear()

    def reload(self) -> None:
        """Re-reads everything (a run ended, a manual trial ran, the lead's follower saw a change)."""
        self.record = self.store.session(self.name)
        self._read_at = time.monotonic()  # when record.info's run_seconds was read
        self.total = self.record.n_trials
        self.metrics = self.store.metric_names(self.name) or self.metrics
        self.live.clear()
        self._seconds = None
        self.arrays = None
        self.changed()

    def reset(self, trials: Iterable[TrialRecord] = (), total: int | None = None) -> None:
        """A run (re)started: its trials are in the store; ``total`` its planned trials."""
        self.reload()
        if total is not None:
            self.total = total
        self.current = None

    def trial_started(self, t: TrialRecord) -> None:
        self.live.pop(t.number, None)  # a trial run again starts last
        self.live[t.number] = t
        self.current = t.number
        if self.arrays is not None:
            self.arrays.update(t.number, t.state.value, t.value, t.config)
        self.changed()

    def epochs(self, number: int, budget: int, rows: tuple[dict[str, Any], ...]) -> None:
        t = self.live.get(number) or self.trial(number)
        if t is None:
            return
        if not self.metrics and rows:
            self.metrics = [k for k in rows[-1] if k not in ("epoch", "time")]
        # Rows of an earlier attempt past the restart point are superseded: keep the prefix before them.
        first = rows[0]["epoch"] if rows else t.last_epoch + 1
        kept = tuple(e for e in t.epochs if e["epoch"] < first)
        self.live[number] = replace(t, epochs=kept + tuple(rows), budget=budget)

    def trial_finished(self, t: TrialRecord, changed: Iterable[TrialRecord] = ()) -> None:
        self.live[t.number] = t
        for c in changed:
            if c.number in self.live:
                self.live[c.number] = c
        if self.arrays is not None:
            for x in (t, *changed):
                self.arrays.update(x.number, x.state.value, x.value, x.config)
        if self.current == t.number:  # another running trial (several workers) becomes the latest
            running = self.running()
            self.current = running[-1] if running else None
        self.changed()

    def running(self) -> list[int]:
        """The trials of this app's run that are running now, in the order they started (several with
        several workers; ``current`` is the latest)."""
        return [n for n, t in self.live.items() if t.state == TrialState.RUNNING]

    # ---- reading ---------------------------------------------------------------------------
    def _cached(self, key: Any, read: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    def trial(self, number: int) -> TrialRecord | None:
        """One trial with its epoch rows: the run's own copy while it runs, else the store's."""
        t = self.live.get(number)
        if t is not None and (t.state == TrialState.RUNNING or number == self.current):
            return t
        if number not in self._trials:
            try:
                self._trials[number] = self.store.trial(self.name, number)
            except TuituneError:
                return t
        return self._trials[number]

    def order(self, key: str = "rank") -> list[int]:
        """The trial numbers in leaderboard order: on the in-memory arrays once loaded (kept current from
        events), before that in SQL (``Store.leaderboard_order``); ``time`` on the training seconds."""
        if key == "time":
            secs = self.seconds()
            return self._cached(("order", key), lambda: sorted(secs, key=lambda n: (-(secs[n][1] or 0.0), n)))  # type: ignore[no-any-return]
        arrays = self.arrays
        if arrays is not None and not (key == "rank" and not self.goal.plain):  # Pareto ranks: the store's
            which = key.removeprefix("param:")
            if which in arrays.sorted or which == "trial":
                return self._cached(("order", key), lambda: arrays.numbers(which))  # type: ignore[no-any-return]
        return self._cached(("order", key), lambda: self.store.leaderboard_order(self.name, key))  # type: ignore[no-any-return]

    def load_seconds(self) -> None:
        """Reads what sorting needs into memory: every trial's training seconds and sort keys (a fraction
        of a second for 10,000 trials: the dashboard calls it from a thread so that it opens at once).
        The arrays then follow the run's events."""
        if self._seconds is None:
            self._seconds = self.store.trial_seconds(self.name)
        if self.arrays is None:
            sign = Direction(self.direction).sign
            arrays = SortArrays(self.store.sort_rows(self.name, self.searched), self.searched, sign)
            for t in list(self.live.values()):  # events that came while it was read
                arrays.update(t.number, t.state.value, t.value, t.config)
            self.arrays = arrays

    def seconds(self, load: bool = True) -> dict[int, tuple[str, float | None]]:
        """Per trial: (state, training seconds), the trials of this app's run from its events."""
        if self._seconds is None:
            if not load:
                return {}
            self.load_seconds()
        assert self._seconds is not None
        out = dict(self._seconds)
        for n, t in self.live.items():
            out[n] = (t.state.value, trial_duration(t))
        return out

    def ranks(self) -> dict[int, int]:
        """Rank (from 1) of each complete trial: its place in the ``rank`` order, where they come first."""

        def read() -> dict[int, int]:
            n = self.store.count_ranked(self.name)
            return {num: i + 1 for i, num in enumerate(self.order("rank")[:n])}

        return self._cached("ranks", read)  # type: ignore[no-any-return]

    def rank_of(self, number: int) -> int | None:
        if self.arrays is not None and self.goal.plain:
            return self.arrays.rank(number)
        return self.ranks().get(number)

    def rows(self, numbers: list[int]) -> dict[int, LeaderRow]:
        """Leaderboard rows of some trials, the running ones from the run's events."""
        rows = self.store.leaderboard_rows(self.name, numbers)
        out = {}
        for n, r in rows.items():
            live = self.live.get(n)
            if live is not None and live.state == TrialState.RUNNING and r.trial.state in (
                TrialState.RUNNING, TrialState.INTERRUPTED
            ):
                value = best_value(live, self.metric, self.direction)
                r = LeaderRow(
                    replace(live, epochs=(), value=value),
                    TrialSummary(live.last_epoch, epoch_seconds(live.epochs), _best_acc(live)),
                )
            out[n] = replace(r, rank=self.rank_of(n))
        return out

    def counts(self) -> dict[str, int]:
        return self._cached("counts", lambda: self.store.state_counts(self.name))  # type: ignore[no-any-return]

    def n_trials(self) -> int:
        return sum(self.counts().values())

    def n_done(self) -> int:
        c = self.counts()
        return sum(c.get(s.value, 0) for s in DONE_STATES)

    def best(self) -> TrialRecord | None:
        return self._cached("best", lambda: self.store.best_trial(self.name))  # type: ignore[no-any-return]

    def best_so_far(self) -> tuple[list[int], list[float], list[int], list[float]]:
        """(trial numbers, best value up to each) and (numbers, values) of every complete trial."""
        xs, ys, px, py = [], [], [], []
        best: float | None = None
        goal = self.goal
        feasible = None  # with constraints, the best line follows the feasible trials only
        if goal.constraints:
            feasible = {t.number for t in self.store.trials(self.name, with_epochs=False) if goal.feasible(t)}
        for number, value, _ in self.store.complete_values(self.name):
            px.append(number)
            py.append(value)
            if (feasible is None or number in feasible) and (best is None or better(value, best, self.direction)):
                best = value
            if best is not None:
                xs.append(number)
                ys.append(best)
        return xs, ys, px, py

    def slice_points(self, param: str) -> list[tuple[Any, float]]:
        """(the parameter's value, the metric) of every complete trial."""
        return [(x, v) for _, v, x in self.store.complete_values(self.name, param)]

    def curves(self, limit: int = 30) -> list[TrialRecord]:
        """The trials the all-curves chart draws: the best ``limit`` complete ones, the running one, and
        the latest pruned, failed and interrupted ones (up to ``limit`` more), each with its epochs."""
        order = self.order("rank")
        n = len(self.ranks())
        numbers = order[: min(n, limit)] + sorted(order[n:], reverse=True)[:limit]
        rows = self.store.epochs_of(self.name, numbers)
        states = self.store.leaderboard_rows(self.name, numbers)
        out = []
        for num in numbers:
            live = self.live.get(num)
            if live is not None and live.state == TrialState.RUNNING:
                out.append(live)
            elif num in states:
                out.append(replace(states[num].trial, epochs=rows.get(num, ())))
        return out

    def budget_left(self, running: bool) -> list[str]:
        """What is left of the session's budget (time, epochs, target), in the header's words."""
        budget = Budget.of(self.record)
        if not budget:
            return []
        ran = run_seconds(self.record) + (time.monotonic() - self._read_at if running else 0.0)
        best = self.best()
        epochs = self._cached("epochs", lambda: self.store.count_epochs(self.name))
        return budget.left(epochs=epochs, best=best.value if best else None, direction=self.direction, run_seconds=ran)

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds of training recorded in the session (pauses and closed time left out); None until
        ``load_seconds`` has run."""
        if self._seconds is None:
            return None
        return sum(s or 0.0 for _, s in self.seconds().values())

    def mean_trial_time(self) -> float | None:
        done = [s for state, s in self.seconds(load=False).values() if state == "complete" and s is not None]
        return sum(done) / len(done) if done else None

    def eta(self) -> float | None:
        """Seconds left, from the mean complete trial's time and the trials not yet done (less the parts
        the running ones have done), shared among the trials that run at once: the session's workers, or
        more while they run (``--workers auto`` packs more onto a device; a fused array trains several)."""
        mean = self.mean_trial_time()
        if mean is None or self.total is None:
            return None
        left = float(max(0, self.total - self.n_done()))
        for n in self.running():
            t = self.live[n]
            if t.budget:
                left -= min(t.last_epoch, t.budget) / t.budget
        return max(0.0, left) * mean / max(self.parallel(), len(self.running()))

    def parallel(self) -> int:
        """How many trials the session runs at once: its workers on each of its devices (at least one)."""
        from tuitune.core.run.placement import Placement

        return Placement.from_info(self.record.info).parallel

    def rungs(self) -> list[int]:
        """The epoch budgets trials were given, below the maximum (Hyperband's rungs)."""
        budgets = self._cached("budgets", lambda: self.store.budgets(self.name))
        return [b for b in budgets if b < self.record.max_epochs]

    def shows_acc(self) -> bool:
        """True when the trials report ``val_acc`` and it is not the session metric (an extra column)."""
        return self.metric != "val_acc" and "val_acc" in self.metrics


def best_value(t: TrialRecord, metric: str, direction: str) -> float | None:
    """The trial's value, or while it runs its best metric so far."""
    if t.value is not None:
        return t.value
    e = best_epoch(t, metric, direction)
    v = e.get(metric) if e is not None else None
    return float(v) if isinstance(v, (int, float)) else None


def _best_acc(t: TrialRecord) -> float | None:
    vals = [e["val_acc"] for e in t.epochs if isinstance(e.get("val_acc"), (int, float))]
    return max(vals) if vals else None

"""Provides SessionView: what the screens know of one session, built from records and runner events.

No Textual import: the dashboard feeds it from messages and reads rows, series and totals from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from tuitune.core.records import SessionRecord, TrialRecord, TrialState, best_trial, better, is_rankable, ranked

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


def trial_duration(t: TrialRecord, now: float | None = None) -> float | None:
    """Seconds from the trial's start to its end (to ``now`` while it runs, else to its last epoch)."""
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


class SessionView:
    """One session's trials, kept current from runner events.

    Args:
        record: the session's stored settings.
        trials: the stored trials (a resumed session opens with them).
    """

    def __init__(self, record: SessionRecord, trials: Iterable[TrialRecord] = ()) -> None:
        self.record = record
        self.trials: dict[int, TrialRecord] = {t.number: t for t in trials}
        self.current: int | None = None
        self.total: int | None = record.n_trials
        self.searched = record.searched

    @property
    def metric(self) -> str:
        return self.record.metric

    @property
    def direction(self) -> str:
        return self.record.direction

    # ---- updates ---------------------------------------------------------------------------
    def reset(self, trials: Iterable[TrialRecord], total: int | None = None) -> None:
        self.trials = {t.number: t for t in trials}
        if total is not None:
            self.total = total
        self.current = None

    def trial_started(self, t: TrialRecord) -> None:
        self.trials[t.number] = t
        self.current = t.number

    def epochs(self, number: int, budget: int, rows: tuple[dict[str, Any], ...]) -> None:
        t = self.trials.get(number)
        if t is None:
            return
        # Rows of an earlier attempt past the restart point are superseded: keep the prefix before them.
        first = rows[0]["epoch"] if rows else t.last_epoch + 1
        kept = tuple(e for e in t.epochs if e["epoch"] < first)
        self.trials[number] = replace(t, epochs=kept + tuple(rows), budget=budget)

    def trial_finished(self, t: TrialRecord, changed: Iterable[TrialRecord] = ()) -> None:
        self.trials[t.number] = t
        for c in changed:
            self.trials[c.number] = c
        if self.current == t.number:
            self.current = None

    # ---- reading ---------------------------------------------------------------------------
    def ordered(self) -> list[TrialRecord]:
        return [self.trials[k] for k in sorted(self.trials)]

    def best(self) -> TrialRecord | None:
        return best_trial(self.ordered(), self.direction)

    def ranked(self) -> list[TrialRecord]:
        """Complete trials best first, then running, paused, interrupted, pruned and failed by number."""
        done = ranked(self.ordered(), self.direction)
        order = {
            TrialState.RUNNING: 0,
            TrialState.PAUSED: 1,
            TrialState.INTERRUPTED: 2,
            TrialState.PRUNED: 3,
            TrialState.COMPLETE: 3,
            TrialState.FAILED: 4,
        }
        rest = [t for t in self.ordered() if t not in done]
        rest.sort(key=lambda t: (order.get(t.state, 5), t.number))
        return done + rest

    def rank_of(self) -> dict[int, int]:
        ranked = self.ranked()
        return {t.number: i + 1 for i, t in enumerate(ranked) if is_rankable(t)}

    def accuracy(self, t: TrialRecord) -> float | None:
        e = best_epoch(t, self.metric, self.direction)
        if e is None:
            return None
        v = e.get("val_acc")
        return float(v) if isinstance(v, (int, float)) else None

    def n_done(self) -> int:
        return sum(1 for t in self.trials.values() if t.state in DONE_STATES)

    def best_so_far(self) -> tuple[list[int], list[float], list[int], list[float]]:
        """(trial numbers, best value up to each) and (numbers, values) of every complete trial."""
        xs, ys, px, py = [], [], [], []
        best: float | None = None
        for t in self.ordered():
            if not is_rankable(t):
                continue
            px.append(t.number)
            py.append(t.value)
            if best is None or better(t.value, best, self.direction):
                best = t.value
            xs.append(t.number)
            ys.append(best)
        return xs, ys, px, py

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds of training recorded in the session: the sum of its trials' durations."""
        ds = [d for d in (trial_duration(t, now) for t in self.trials.values()) if d is not None]
        return sum(ds) if ds else None

    def mean_trial_time(self) -> float | None:
        ds = [
            d
            for t in self.trials.values()
            if t.state == TrialState.COMPLETE
            for d in [trial_duration(t)]
            if d is not None
        ]
        return sum(ds) / len(ds) if ds else None

    def eta(self) -> float | None:
        """Seconds left, from the mean complete trial's time and the trials not yet done."""
        mean = self.mean_trial_time()
        if mean is None or self.total is None:
            return None
        left = max(0, self.total - self.n_done())
        cur = self.trials.get(self.current) if self.current is not None else None
        if cur is not None and cur.budget:
            left = max(0.0, left - cur.last_epoch / cur.budget)
        return left * mean

    def rungs(self) -> list[int]:
        """The epoch budgets trials were given, below the maximum (Hyperband's rungs)."""
        budgets = sorted({t.budget for t in self.trials.values()} | self._planned_rungs())
        return [b for b in budgets if b < self.record.max_epochs]

    def _planned_rungs(self) -> set[int]:
        if self.record.strategy != "hyperband":
            return set()
        out = set()
        for t in self.trials.values():
            r, b = t.meta.get("rung"), t.meta.get("bracket")
            if isinstance(r, int) and isinstance(b, int):
                out.add(t.budget)
        return out

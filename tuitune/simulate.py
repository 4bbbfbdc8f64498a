"""Provides a simulated pool of workers that drives a real strategy on a simulated clock.

It follows the coordinator's side of the strategy contract exactly: whenever a worker is free it calls
``ask()``; a Suggestion starts a run (``tell`` of a RUNNING record), ``WAIT`` leaves the worker idle until
a run ends, None means the strategy has finished (it is not asked again). When a run ends the record gets
its epoch rows and value, ``state_after`` decides COMPLETE or PAUSED, ``tell`` and ``settle`` follow and
the settled states are applied. Promotions (``trial=N``) continue the trial's epoch rows from its last
epoch, as an objective that resumes from its checkpoint does.

Objectives are functions of (config, epoch) and durations of (trial number, epoch), so a run is exactly
reproducible. Used by the strategy tests (several running trials) and by ``benchmarks/bench_workers.py``
(worker utilisation).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.records import Direction, TrialRecord, TrialState
from tuitune.core.search.strategies.base import Strategy, Suggestion, Wait

Curve = Callable[[dict[str, Any], int], float]  # (config, epoch) -> the metric at that epoch
Duration = Callable[[int, int], float]  # (trial number, epoch) -> how long that epoch takes


def one_unit(number: int, epoch: int) -> float:
    """Every epoch takes one time unit."""
    return 1.0


@dataclass
class Run:
    """One run of a trial on a worker (a new trial or a promotion)."""

    number: int
    suggestion: Suggestion
    worker: int
    start: float
    end: float
    settled: dict[int, TrialState] = field(default_factory=dict)


class ProtocolError(AssertionError):
    """The strategy broke the contract (a WAIT with nothing running, a suggestion after None, ...)."""


@dataclass
class WorkerSim:
    """N simulated workers driving ``strategy``.

    Args:
        strategy: the real strategy object driven.
        curve: the metric of a config at an epoch (the session metric; its direction is the strategy's).
        workers: how many runs may be in flight at once.
        duration: the time an epoch of a trial takes.
        fails: configs whose runs fail (FAILED after their first epoch).
        records: stored trials to continue from (call ``strategy.restore`` with them first).
        epochs: write epoch rows (False: only the value at the budget, as an objective without report()).
    """

    strategy: Strategy
    curve: Curve
    workers: int = 1
    duration: Duration = one_unit
    fails: Callable[[dict[str, Any]], bool] = lambda c: False
    records: dict[int, TrialRecord] = field(default_factory=dict)
    epochs: bool = True
    runs: list[Run] = field(default_factory=list)
    clock: float = 0.0
    busy: float = 0.0  # worker-time spent running trials
    finished: bool = False  # the strategy answered None
    waits: int = 0  # WAIT answers
    max_running: int = 0
    _heap: list[tuple[float, int, int, int]] = field(default_factory=list)  # (end, run index, worker, number)
    _free: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.records = dict(self.records)
        self._free = list(range(self.workers))

    @property
    def running(self) -> int:
        return len(self._heap)

    @property
    def makespan(self) -> float:
        return self.clock

    @property
    def utilisation(self) -> float:
        """Busy worker-time over workers x makespan."""
        return self.busy / (self.workers * self.clock) if self.clock > 0 else 0.0

    def _start(self, sug: Suggestion, worker: int) -> None:
        s = self.strategy
        if sug.trial is None:
            number = max(self.records, default=-1) + 1
            rec = TrialRecord(
                number=number, state=TrialState.RUNNING, config=dict(sug.config), budget=sug.budget,
                meta=dict(sug.meta),
            )
        else:
            old = self.records[sug.trial]
            if old.state not in (TrialState.PAUSED, TrialState.INTERRUPTED, TrialState.COMPLETE):
                raise ProtocolError(f"trial {old.number} suggested again while {old.state.value}")
            if sug.config != old.config:
                raise ProtocolError(f"trial {old.number} continued with another config")
            rec = dataclasses.replace(old, state=TrialState.RUNNING, budget=sug.budget, meta=dict(sug.meta))
        took = sum(self.duration(rec.number, e) for e in range(rec.last_epoch + 1, rec.budget + 1))
        self.records[rec.number] = rec
        s.tell(rec)
        self.runs.append(Run(rec.number, sug, worker, self.clock, self.clock + took))
        heapq.heappush(self._heap, (self.clock + took, len(self.runs) - 1, worker, rec.number))
        self.busy += took
        self.max_running = max(self.max_running, len(self._heap))

    def _finish(self, run_index: int, number: int) -> None:
        s = self.strategy
        rec = self.records[number]
        rows = list(rec.epochs)
        for e in range(rec.last_epoch + 1, rec.budget + 1):
            rows.append({"epoch": e, s.metric: self.curve(rec.config, e)})
        if self.fails(rec.config):
            end = dataclasses.replace(rec, state=TrialState.FAILED, epochs=tuple(rows[: rec.last_epoch + 1]))
            end = dataclasses.replace(end, value=None, reason="simulated failure")
        else:
            if self.epochs:
                vals = [float(r[s.metric]) for r in rows]
                value = Direction(s.direction).best_of(vals)
                end = dataclasses.replace(rec, epochs=tuple(rows), value=value)
            else:
                end = dataclasses.replace(rec, value=float(rows[-1][s.metric]))
            end = dataclasses.replace(end, state=s.state_after(end))
        self.records[number] = end
        s.tell(end)
        settled = s.settle()
        for n, state in settled.items():
            if self.records[n].state != TrialState.PAUSED:
                raise ProtocolError(f"settle() moved trial {n} from {self.records[n].state.value}, not paused")
            self.records[n] = dataclasses.replace(self.records[n], state=state)
            s.tell(self.records[n])
        self.runs[run_index].settled = settled

    def _ask(self) -> Suggestion | Wait | None:
        """The strategy's next answer (a hook: a benchmark may time it, or let its clock run meanwhile)."""
        return self.strategy.ask()

    def fill(self) -> None:
        """Asks for work while a worker is free and the strategy has some."""
        while self._free and not self.finished:
            sug = self._ask()
            if sug is None:
                self.finished = True
            elif isinstance(sug, Wait):
                self.waits += 1
                if not self._heap:
                    raise ProtocolError("ask() answered WAIT with nothing running")
                return
            else:
                self._start(sug, self._free.pop(0))

    def step(self) -> bool:
        """Fills the free workers, then lets the earliest run end; False when nothing is left to run."""
        self.fill()
        if not self._heap:
            return False
        end, index, worker, number = heapq.heappop(self._heap)
        self.clock = max(self.clock, end)  # a run that ended while _ask() ran the clock is seen when it returns
        self._finish(index, number)
        self._free.append(worker)
        self._free.sort()
        return True

    def run(self, max_runs: int | None = None) -> WorkerSim:
        """Runs to the end (or until ``max_runs`` runs have ended)."""
        ended = 0
        while max_runs is None or ended < max_runs:
            if not self.step():
                break
            ended += 1
        return self

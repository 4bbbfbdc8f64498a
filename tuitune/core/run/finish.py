"""Provides how the Runner ends a trial: the verdict on a finished run, its record, the strategy told.

A mixin of ``Runner`` (``tuitune.core.run.runner``): the judging of what an objective returned, the
trial's final row (with its versions and, for several objectives, each objective's measure), the
strategy's settled decisions, and the trial's checkpoint files removed once it is finished.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from tuitune.core import events as ev
from tuitune.core.records import TrialRecord, TrialState, best_of
from tuitune.core.run.versions import versions

if TYPE_CHECKING:
    from tuitune.core.search.strategies.base import Strategy
    from tuitune.core.store.store import SessionFiles, Store


class TrialEnding:
    """The Runner's end of a trial (the attributes below are the Runner's)."""

    store: Store
    session: str
    strategy: Strategy
    files: SessionFiles
    _stop_now: bool
    _stop_reason: str

    def _emit(self, event: ev.Event) -> None:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _judge_run(
        self, number: int, budget: int, reached: int, returned: Any, aborted: bool
    ) -> tuple[TrialState, float | None, str | None]:
        if aborted:
            return TrialState.PRUNED, self._value_from_epochs(number), "aborted by the user"
        if self._stop_now and reached < budget and returned is None:
            return TrialState.INTERRUPTED, None, f"{self._stop_reason} at epoch {reached}"
        if isinstance(returned, dict):  # plain_return's description of what it was
            return TrialState.FAILED, None, f"the objective returned {returned['bad']}; return a float or None"
        if returned is not None:
            value = float(returned)
            if not math.isfinite(value):
                return TrialState.FAILED, None, f"the objective returned {value}"
        else:
            best = self._value_from_epochs(number)
            if best is None:
                metric = self.strategy.metric
                return TrialState.FAILED, None, (
                    f"the objective reported no '{metric}' and returned nothing; call "
                    f"trial.report({metric}=...) each epoch or return the value"
                )
            value = best
        return TrialState.COMPLETE, value, None

    def _value_from_epochs(self, number: int) -> float | None:
        rec = self.store.trial(self.session, number)
        return best_of(rec.metric_values(self.strategy.metric), self.strategy.direction)

    def _finish_record(
        self, number: int, state: TrialState, value: float | None, reason: str | None, trace: str | None, info: dict
    ) -> TrialRecord:
        store, name = self.store, self.session
        if state == TrialState.COMPLETE:
            # The strategy decides whether a finished run completes its trial or waits at a rung.
            pending = store.trial(name, number)
            probe = TrialRecord(
                number=number, state=TrialState.COMPLETE, config=pending.config, value=value,
                budget=pending.budget, epochs=pending.epochs, meta=pending.meta,
            )
            state = TrialState(self.strategy.state_after(probe))
        full_info = {**store.trial(name, number).info, **info, **versions()}
        goal = self.strategy.objectives
        if not goal.plain and value is not None and state in (TrialState.COMPLETE, TrialState.PAUSED):
            # Each objective and constraint metric at the epoch the first metric is best (records.Objectives).
            ended = dataclasses.replace(store.trial(name, number), value=value)
            full_info["objectives"] = goal.measure(ended)
        rec = store.finish_trial(name, number, state=state, value=value, reason=reason, traceback=trace, info=full_info)
        if state.is_finished():
            self._drop_checkpoint(number)
        self.strategy.tell(rec)
        changed: list[TrialRecord] = []
        decisions = self.strategy.settle()
        if decisions:
            store.set_trial_states(name, decisions)
            for n in decisions:
                r = store.trial(name, n)
                self.strategy.tell(r)
                changed.append(r)
                if r.state.is_finished():
                    self._drop_checkpoint(n)
            rec = store.trial(name, number)
        self._emit(ev.TrialFinished(name, trial=rec, changed=tuple(c for c in changed if c.number != number)))
        return rec

    def _drop_checkpoint(self, number: int) -> None:
        for p in [self.files.checkpoint(number), *self.files.checkpoints.glob(f".{number}.pt.*.tmp")]:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        folder = self.files.checkpoints / f"{number}.d"  # a command objective's script keeps its checkpoints there
        if folder.is_dir():
            import shutil

            shutil.rmtree(folder, ignore_errors=True)

    def _clean_temp_checkpoints(self) -> None:
        """Removes half-written checkpoints of killed processes (never loaded: only renamed files are)."""
        if self.files.checkpoints.exists():
            for p in self.files.checkpoints.glob(".*.tmp"):
                try:
                    p.unlink()
                except OSError:
                    pass

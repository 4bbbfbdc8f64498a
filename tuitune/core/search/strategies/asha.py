"""Provides ASHA (Li et al., MLSys 2020): asynchronous successive halving, resumable, for several workers.

The rungs
    eta = ``factor``, r = ``min_epochs``, R = ``max_epochs``. K = the largest k with r * eta**k <= R (integer
    arithmetic). Rung k (k = 0..K-1) trains to r * eta**k epochs; the top rung K trains to R. For r = 1,
    R = 81, eta = 3 the rungs are 1, 3, 9, 27, 81 (Hyperband's biggest bracket). When R is not r times a
    power of eta the last step is longer than eta (r = 1, R = 100: 1, 3, 9, 27, 100). When r = R there is
    one rung: random search at the full budget.

The rule (the paper's ``get_job``)
    Whenever asked: from rung K-1 down to rung 0, promote the best trial that is in the top
    ``floor(n_k / eta)`` of rung k (n_k: the trials that have finished rung k, promoted ones included,
    ranked by the session metric at rung k's epochs) and has not been promoted yet. If none can be, start a
    new config at rung 0: with ``sampler = "bayes"`` (the default since it beat Optuna's TPE + HyperbandPruner
    at equal epochs, benchmarks/results/asha-bayes.md) from the GP fitted at the highest rung that enough
    trials have finished (BOHB-like; the rule is hyperband's and lives in ``fidelity.py``; its meta says
    ``"chosen_by": "model" | "random"``), with ``sampler = "random"`` drawn uniformly from the space (seeded by
    the seed and the number of trials).
    Nothing waits for a rung to fill, so no worker idles at a barrier. A promotion keeps the trial's number
    and config (``Suggestion(trial=N, budget=r_{k+1})``); the objective continues it from its checkpoint.

Trial count
    ``n_trials`` caps the NEW configs; promotions do not count. Without it, the session creates
    ``max(eta, eta**K)`` configs: as many as Hyperband's biggest bracket (81 for R = 81, eta = 3), enough for
    one config to reach the top rung through every rung. ``total()`` is that count.

When the answer is WAIT or None
    ``ask`` answers ``WAIT`` when every config has been created, nothing can be promoted now, and some
    trial is still running (its result may promote it or another). It answers None (finished) when nothing
    runs either.

Meta
    Each trial carries ``{"rung": k}``, the rung it is at now, and, once promoted, ``"rung_values"``: its
    value at each rung it has left (used to rank it there when the objective writes no epoch rows). The
    whole state is a function of the records and the seed; ``restore(records)`` continues exactly as the
    uninterrupted run would.

States (the runner's side of the contract)
    ``state_after``: a run that ended without error below the top rung is PAUSED (it may be promoted), at
    the top rung COMPLETE. ``settle()`` returns PAUSED -> PRUNED for every trial that can never be
    promoted, whatever the trials still to come report: its rank at its rung is past
    ``floor(n_max / eta)``, where n_max counts the trials that have finished the rung plus every trial that
    may still reach it (running or paused below it, configs not yet created). Ranks only grow, so the
    decision is final; once every config is created and nothing runs, every PAUSED trial is either promoted
    or pruned, and the session ends with trials COMPLETE (top rung), PRUNED or FAILED.

Ranking at rung k
    ``record.value_at(r_k, metric, direction)`` (the best of epochs 1..r_k), else the record's own value
    while it is at rung k, else its stored ``rung_values[k]``. FAILED trials, and trials with no finite
    value, rank last and are never promoted. Ties go to the lower trial number. RUNNING and INTERRUPTED
    trials have not finished their rung and are not ranked there; an INTERRUPTED one is suggested again
    (``trial=N``, its own budget and meta, lowest number first) before anything else.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.errors import StrategyError
from tuitune.core.records import TrialRecord, TrialState, nondominated_order
from tuitune.core.search.strategies.base import WAIT, Strategy, Suggestion, Wait
from tuitune.core.search.strategies.fidelity import check_sampler, new_config
from tuitune.core.search.strategies.hyperband import OPEN_ENDED, _whole, s_max_of

_PENDING = (TrialState.RUNNING, TrialState.INTERRUPTED)
_PROMOTABLE = (TrialState.PAUSED, TrialState.COMPLETE)  # COMPLETE below the top: a runner ignored state_after
_NO_VALUE = 1  # the rank key's flag for trials that cannot be promoted (failed, no finite value)

RankKey = tuple[int, float, int]  # (0 or _NO_VALUE, the value as a loss, the trial number): sorts best first


def asha_rungs(min_epochs: int, max_epochs: int, factor: int) -> list[int]:
    """The epochs of rungs 0..K: min_epochs * factor**k below the top, max_epochs at the top."""
    top = s_max_of(max_epochs // min_epochs, factor)
    return [min_epochs * factor**k for k in range(top)] + [max_epochs]


@dataclass
class _Rung:
    """One rung as the records show it (an index over the records, kept in step with them)."""

    order: list[RankKey] = field(default_factory=list)  # the trials that have finished it, best first
    keys: dict[int, RankKey] = field(default_factory=dict)  # trial number -> its key in ``order``
    pending: set[int] = field(default_factory=set)  # trials running (or interrupted) towards it
    paused: set[int] = field(default_factory=set)  # PAUSED trials at it (not promoted, not pruned)

    def drop(self, number: int) -> None:
        key = self.keys.pop(number, None)
        if key is not None:
            del self.order[bisect.bisect_left(self.order, key)]
        self.pending.discard(number)
        self.paused.discard(number)


class AshaStrategy(Strategy):
    """Asynchronous successive halving (see the module docstring).

    Args:
        factor: eta: a rung promotes its top 1/factor and the next rung trains factor times longer.
            A whole number >= 2.
        min_epochs: the epochs of the lowest rung (the paper's r), 1..max_epochs.
        sampler: how new configs are drawn: ``"bayes"`` (the default: a GP fitted at the highest rung with
            enough trials, BOHB-like; the rule is hyperband's, in ``fidelity.py``) or ``"random"`` (the paper's).
    """

    name = "asha"

    def __init__(self, space, *, factor: int = 3, min_epochs: int = 1, sampler: str = "bayes", **kw: Any) -> None:
        super().__init__(space, **kw)
        self.sampler = check_sampler("asha", sampler)
        if not _whole(factor) or factor < 2:
            raise StrategyError(f"asha option factor must be a whole number >= 2 (3 is usual), got {factor!r}")
        if not _whole(min_epochs) or not 1 <= min_epochs <= self.max_epochs:
            raise StrategyError(
                f"asha option min_epochs must be a whole number from 1 to max_epochs ({self.max_epochs}), "
                f"got {min_epochs!r}"
            )
        self.factor = factor
        self.min_epochs = min_epochs
        self.budgets = asha_rungs(min_epochs, self.max_epochs, factor)
        # An index of the records by rung, updated for the trials told since it was last read. It is never
        # state of its own: restore() drops it and it is rebuilt from the records.
        self._rungs: list[_Rung] | None = None
        self._dirty: set[int] = set()

    @property
    def top(self) -> int:
        """K, the index of the top rung."""
        return len(self.budgets) - 1

    # ---- the trial count -------------------------------------------------------------------------
    def configs_for_epochs(self, epochs: int) -> int:
        """The most configs whose rungs fit in ``epochs`` once decided: n at rung 0, n // eta**k at rung k,
        each promotion adding r_k - r_{k-1} epochs to its trial."""
        def cost(n: int) -> int:
            total, prev, at = 0, 0, n
            for b in self.budgets:
                total += at * (b - prev)
                prev, at = b, at // self.factor
            return total

        n = 0
        while cost(n + 1) <= epochs:
            n += 1
        return n

    def _cap(self) -> int:
        cap = self.trial_cap()
        if cap is not None:
            return cap
        if self.open_ended:  # a time budget ends it: new configs whenever nothing can be promoted
            return OPEN_ENDED
        return max(self.factor, self.factor**self.top)

    def total(self) -> int | None:
        return None if self.open_ended else self._cap()

    def budget_left(self) -> bool:
        return self.n_created < self._cap()

    def _fits(self, epochs: int) -> bool:
        """Whether a run of that many more epochs fits in ``total_epochs`` beside the epochs trained and those
        the running (and interrupted) trials will reach. Asynchronous promotions may outnumber the planned
        floor(n_k / eta) (a trial promoted early can later fall out of the top), so the cap alone could overshoot."""
        if self.total_epochs is None:
            return True
        committed = sum(t.budget if t.state in _PENDING else t.last_epoch for t in self._trials.values())
        return committed + epochs <= self.total_epochs

    # ---- reading the records ----------------------------------------------------------------------
    def _rung_of(self, t: TrialRecord) -> int | None:
        r = t.meta.get("rung")
        return r if isinstance(r, int) and _whole(r) and 0 <= r <= self.top else None

    def _raw_value(self, t: TrialRecord, k: int) -> float | None:
        """The trial's metric at rung k: its epoch rows, else its value at its own rung, else the stored one."""
        v = t.value_at(self.budgets[k], self.metric, self.direction) if t.epochs else None
        if v is None and t.meta.get("rung") == k:
            v = t.value
        if v is None:
            stored = t.meta.get("rung_values")
            if isinstance(stored, list) and k < len(stored) and isinstance(stored[k], (int, float)):
                v = stored[k]
        return v

    def _finished(self, t: TrialRecord, budget: int) -> bool:
        """Whether the trial has finished the rung of that budget (the sampler's model reads it)."""
        r, k = self._rung_of(t), self.budgets.index(budget)
        return r is not None and (r > k or (r == k and t.state not in _PENDING))

    def _value_at_budget(self, t: TrialRecord, budget: int) -> float | None:
        v = self._raw_value(t, self.budgets.index(budget))
        return float(v) if v is not None and math.isfinite(float(v)) else None

    def _key(self, t: TrialRecord, k: int) -> RankKey:
        if not (t.state == TrialState.FAILED and t.meta.get("rung") == k):
            v = self._raw_value(t, k)
            if v is not None and math.isfinite(float(v)):
                return (0, self.score(float(v)), t.number)
        return (_NO_VALUE, 0.0, t.number)

    def restore(self, trials: Iterable[TrialRecord]) -> None:
        super().restore(trials)
        self._rungs = None

    def tell(self, trial: TrialRecord) -> None:
        super().tell(trial)
        self._dirty.add(trial.number)

    def _place(self, rungs: list[_Rung], t: TrialRecord) -> None:
        r = self._rung_of(t)
        if r is None:
            return
        for k in range(r + 1):
            if k == r and t.state in _PENDING:
                rungs[k].pending.add(t.number)
                continue
            key = self._key(t, k)
            bisect.insort(rungs[k].order, key)
            rungs[k].keys[t.number] = key
            if k == r and t.state == TrialState.PAUSED:
                rungs[k].paused.add(t.number)

    def _ladder(self) -> list[_Rung]:
        """Every rung: who has finished it (ranked), who is on the way, who waits there."""
        if self._rungs is None:
            self._rungs = [_Rung() for _ in self.budgets]
            self._dirty = set(self._trials)
        changed = bool(self._dirty)
        for n in sorted(self._dirty):
            for rung in self._rungs:
                rung.drop(n)
            self._place(self._rungs, self._trials[n])
        self._dirty.clear()
        if changed and not self.objectives.plain:
            for k, rung in enumerate(self._rungs):
                self._rerank(rung, k)
        return self._rungs

    def _rerank(self, rung: _Rung, k: int) -> None:
        """Several objectives or constraints: a rung ranks as MOASHA does (records.nondominated_order: Pareto
        layer, then crowding distance), the feasible trials before the infeasible ones."""
        goal, budget = self.objectives, self.budgets[k]
        groups: dict[bool, list[tuple[int, tuple[float, ...]]]] = {True: [], False: []}
        for flag, _, n in sorted(rung.order, key=lambda key: key[2]):  # by number: ties never hang on history
            if flag == _NO_VALUE:
                continue
            t = self._trials[n]
            losses = goal.losses(t, upto=budget) if t.epochs else goal.losses(t)
            if losses is None:
                rung.keys[n] = (_NO_VALUE, 0.0, n)
                continue
            groups[goal.feasible(t, upto=budget) if t.epochs else goal.feasible(t)].append((n, losses))
        pos = 0
        for ok in (True, False):
            members = groups[ok]
            for i in nondominated_order([p for _, p in members]):
                rung.keys[members[i][0]] = (0, float(pos), members[i][0])
                pos += 1
        rung.order = sorted(rung.keys.values())

    def _promotable(self, rung: _Rung, k: int) -> TrialRecord | None:
        """The best trial of rung k in its top floor(n_k / eta) that has not been promoted."""
        for flag, _, n in rung.order[: len(rung.order) // self.factor]:
            t = self._trials[n]
            if flag != _NO_VALUE and t.meta.get("rung") == k and t.state in _PROMOTABLE:
                return t
        return None

    # ---- contract ---------------------------------------------------------------------------------
    def ask(self) -> Suggestion | Wait | None:
        rungs = self._ladder()
        interrupted = [n for rung in rungs for n in rung.pending if self._trials[n].state == TrialState.INTERRUPTED]
        if interrupted:
            t = self._trials[min(interrupted)]
            return Suggestion(config=dict(t.config), budget=t.budget, trial=t.number, meta=dict(t.meta))
        for k in range(self.top - 1, -1, -1):
            best = self._promotable(rungs[k], k)
            if best is not None and self._fits(self.budgets[k + 1] - self.budgets[k]):
                values = list(best.meta.get("rung_values") or [])[:k]
                values += [self._raw_value(best, i) for i in range(len(values), k + 1)]
                meta = {**best.meta, "rung": k + 1, "rung_values": values}
                return Suggestion(config=dict(best.config), budget=self.budgets[k + 1], trial=best.number, meta=meta)
        if self.budget_left() and self._fits(self.budgets[0]):
            trials = self.trials if self.sampler == "bayes" else []  # the model's data; random needs none
            config, how = new_config(
                self, self.sampler, trials, self.budgets, reached=self._finished, value_at=self._value_at_budget
            )
            return Suggestion(config=config, budget=self.budgets[0], meta={"rung": 0, **how})
        if any(rung.pending for rung in rungs):
            return WAIT
        return None

    def state_after(self, trial: TrialRecord) -> TrialState:
        """PAUSED below the top rung (it may be promoted), else COMPLETE."""
        r = self._rung_of(trial)
        if r is not None and r < self.top:
            return TrialState.PAUSED
        return TrialState.COMPLETE

    def settle(self) -> dict[int, TrialState]:
        """PAUSED -> PRUNED for the trials no future result can promote (see the module docstring)."""
        out: dict[int, TrialState] = {}
        # How many trials may still finish rung k: those running there plus every one that may still arrive.
        future = max(0, self._cap() - self.n_created) if self._fits(self.budgets[0]) else 0
        for rung in self._ladder()[:-1]:
            future += len(rung.pending)
            slots = (len(rung.order) + future) // self.factor
            # Ranks only grow: a trial at rank >= slots now stays there, and so does one with no value.
            first_no_value = bisect.bisect_left(rung.order, (_NO_VALUE, 0.0, -1))
            pruned = [n for _, _, n in rung.order[min(slots, first_no_value) :] if n in rung.paused]
            out.update((n, TrialState.PRUNED) for n in pruned)
            future += len(rung.paused) - len(pruned)  # the paused trials left may still be promoted
        for n, state in out.items():
            self.tell(dataclasses.replace(self._trials[n], state=state))
        return out

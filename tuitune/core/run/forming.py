"""Provides how the Runner forms jobs under ``--fuse``: trials held for arrays, grouped by architecture.

A mixin of ``Runner`` (``tuitune.core.run.runner``). Fusing, the Runner asks up to ``LOOK_AHEAD`` x the
array size of suggestions ahead of the workers, opens each as its trial row when asked (the strategy is
told of it, so a random draw, a rung's place or bayes's pending points count it; ``info["held"]`` marks
it until a worker takes it) and gives a free worker the largest group of one key (``Runner._key``: the
objective's ``fuse_key`` and the budget). A running array whose members left asks for more (``Refill``),
and gets held trials of its key (``Join``). Trials held when the run ends are parked interrupted, so a
resume runs them first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.search.strategies.base import Suggestion, Wait

if TYPE_CHECKING:
    from tuitune.core.run.protocol import Join, Refill, TrialSpec
    from tuitune.core.run.workers import Worker

log = logging.getLogger(__name__)

# Job forming under --fuse: the runner asks up to LOOK_AHEAD x the array size ahead of the workers (halving
# that while nothing groups), and a held trial passed over by HOLD_JOBS jobs goes with the next one
# (JobForming._next_job).
LOOK_AHEAD = 2
HOLD_JOBS = 2


@dataclass(eq=False)
class _Held:
    """A trial asked for an array and opened (its row 'running', the strategy told), not started yet."""

    rec: TrialRecord
    key: Hashable | None  # Runner._key: None trains alone
    continued: bool  # a promotion or a re-run (the suggestion named its trial)
    passed: int = 0  # jobs formed since it was opened, without it


def _unheld(info: dict) -> dict:
    """A trial's info without the mark of a trial held for an array (``Runner._open_row``)."""
    return {k: v for k, v in info.items() if k != "held"}


def _pick_group(held: list[_Held], limit: int) -> list[_Held]:
    """The next array out of the held trials (oldest first): the oldest one's group once it was passed over
    HOLD_JOBS times, else the largest group of one key (ties: the one holding the oldest trial), up to
    ``limit`` trials, oldest first. A trial whose key is None is a group of its own."""
    groups: dict[Any, list[_Held]] = {}
    for i, h in enumerate(held):
        groups.setdefault(("alone", i) if h.key is None else ("key", h.key), []).append(h)
    oldest = held[0]
    if oldest.passed >= HOLD_JOBS:
        group = next(g for g in groups.values() if g[0] is oldest)
    else:
        group = max(groups.values(), key=len)  # the first largest: dicts keep the order of first appearance
    return group[:limit]


class JobForming:
    """The Runner's job forming (the attributes and the stubs below are the Runner's)."""

    fuse: int
    fuse_auto: bool
    fuse_key: Callable[[dict], Hashable | None] | None
    max_failures: int
    _queued: list[_Held]
    _array_keys: dict[int, Hashable]
    _depth: int | None  # how many trials to hold now (None: LOOK_AHEAD x the array size)
    _failures: int
    _spent: str | None
    _array_limit: Callable[[Any, int], int]  # Packing's (an annotation only: no stub here to shadow it)

    @property
    def stopping(self) -> bool:  # pragma: no cover - the Runner's
        raise NotImplementedError

    @property
    def paused(self) -> bool:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _ask(self) -> Suggestion | Wait | None:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _budget_spent_now(self) -> bool:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _open_row(self, sugg: Suggestion, slot: Any = None, *, held: bool = False) -> TrialRecord:  # pragma: no cover
        raise NotImplementedError

    def _open_trial(self, sugg: Suggestion, slot: Any) -> TrialRecord:  # pragma: no cover - the Runner's
        raise NotImplementedError

    def _announce(self, rec: TrialRecord, slot: Any, *, continued: bool, fresh: bool) -> TrialRecord:  # pragma: no cover
        raise NotImplementedError

    def _specs(self, w: Worker, records: list[TrialRecord]) -> tuple[TrialSpec, ...]:  # pragma: no cover
        raise NotImplementedError

    def _finish_record(
        self, number: int, state: TrialState, value: float | None, reason: str | None, trace: str | None, info: dict
    ) -> TrialRecord:  # pragma: no cover - TrialEnding's
        raise NotImplementedError

    def _key(self, sugg: Suggestion) -> Hashable | None:
        if self.fuse_key is None:
            return None
        key = self.fuse_key(dict(sugg.config))
        return None if key is None else (key, sugg.budget)

    def _next_job(self, w: Worker) -> list[TrialRecord] | Wait | None:
        """The trials worker ``w`` runs next: one when fusing is off, else the largest group of one key
        (``_key``: architecture and budget) among the held trials, up to the worker's array size.

        Fusing, the runner holds up to ``LOOK_AHEAD`` x the array size of asked suggestions (fewer while
        nothing groups: see ``_depth``), each opened as its trial row ('running', told to the strategy) before
        the next is asked, so the strategy counts it (a random draw, a rung's place, bayes's pending points). A free worker never waits for a group to grow:
        it takes the largest group there is, a single trial if nothing groups, and a trial passed over by
        ``HOLD_JOBS`` jobs goes with the next one. Held trials the run never starts are parked interrupted
        (``_park_queued``), so a resume runs them first. Wait or None: nothing to start now."""
        limit = self._array_limit(w, getattr(w, "fuse", 1) if self.fuse_auto else self.fuse)
        if self._queued and (self._spent is not None or self._budget_spent_now()):
            return None  # held trials start no more: they are parked when the run ends
        if limit <= 1 or self.fuse_key is None:
            if self._queued:  # held for another worker's array (--fuse auto sizes differ): it goes first
                return self._take([self._queued[0]], w)
            first = self._ask()
            if first is None or isinstance(first, Wait):
                return first
            return [self._open_trial(first, w)]
        top = LOOK_AHEAD * limit
        depth = min(self._depth or top, top)
        last = self._hold(depth)
        if not self._queued:
            return last
        full = len(self._queued) >= depth
        group = _pick_group(self._queued, limit)
        if len(group) > 1 and group[0].key is not None:
            self._array_keys[group[0].rec.number] = group[0].key  # a Refill names the array by its first trial
        # The look-ahead adapts: it halves while a full pool groups nothing (every config its own architecture:
        # holding them only keeps results from the strategy, bayes's model above all), and doubles back up to
        # LOOK_AHEAD x the array size as soon as a group forms.
        if len(group) > 1:
            self._depth = min(top, depth * 2)
        elif full:
            self._depth = max(1, depth // 2)
        return self._take(group, w)

    def _hold(self, depth: int) -> Wait | None:
        """Asks the strategy until ``depth`` trials are held, each opened as its row; what ended the asking
        (Wait, None) if anything did."""
        while len(self._queued) < depth:
            sugg = self._ask()
            if sugg is None or isinstance(sugg, Wait):
                return sugg
            self._queued.append(_Held(self._open_row(sugg, held=True), self._key(sugg), sugg.trial is not None))
        return None

    def _join(self, w: Worker, msg: Refill) -> Join:
        """Trials for the ``msg.free`` places that members left in the array trial ``msg.trial`` opened on
        ``w``: held trials of its key and budget, asked ahead as for a job (``_next_job``); none while the
        run is paused or stopping, has given up, or has spent its budget, nor once a held trial of another
        key was passed over ``HOLD_JOBS`` times (a refill passes the others over as a job does)."""
        from tuitune.core.run.protocol import Join

        key = self._array_keys.get(msg.trial)
        if key is None or self.stopping or self.paused or self._failures >= self.max_failures or msg.free < 1:
            return Join()
        if self._spent is not None or self._budget_spent_now():
            return Join()
        limit = self._array_limit(w, getattr(w, "fuse", 1) if self.fuse_auto else self.fuse)
        self._hold(min(self._depth or LOOK_AHEAD * limit, LOOK_AHEAD * limit))
        if self._queued and self._queued[0].passed >= HOLD_JOBS and self._queued[0].key != key:
            return Join()  # a trial of another key waited long enough: this array ends, its group goes next
        group = [h for h in self._queued if h.key == key][: msg.free]
        if not group:
            return Join()
        specs = self._specs(w, self._take(group, w))
        w.trials.extend(spec.number for spec in specs)
        return Join(specs)

    def _take(self, group: list[_Held], w: Worker) -> list[TrialRecord]:
        """Starts the held trials of ``group`` on worker ``w``: out of the pool, their rows naming the worker,
        announced; every other held trial was passed over once more."""
        for h in group:
            self._queued.remove(h)
        for h in self._queued:
            h.passed += 1
        return [self._announce(h.rec, w, continued=h.continued, fresh=False) for h in group]

    def _park_queued(self) -> None:
        """A trial held for an array but never started ends interrupted: the strategy was told of it, and the
        next resume runs it first (as if it had been stopped at once)."""
        while self._queued:
            h = self._queued.pop(0)
            try:
                self._finish_record(h.rec.number, TrialState.INTERRUPTED, None, "the run ended before it started", None, {})
            except Exception:  # noqa: BLE001 - the store may be what failed; resume interrupts a 'running' row anyway
                log.exception("could not keep a held trial")

"""Provides Hyperband (Li et al., JMLR 2018): successive halving over brackets of budgets, resumable.

The plan
    R = ``max_epochs``, eta = ``factor``, s_max = the largest s with eta**s <= R (integer arithmetic, no
    float log). One Hyperband iteration runs the brackets s = s_max, ..., 0 one after the other. Bracket s
    samples n = ceil((s_max + 1) * eta**s / (s + 1)) configs uniformly from the space and runs successive
    halving on them: rung i (i = 0..s) trains ``n_i = n // eta**i`` trials to r_i = R / eta**(s - i) epochs
    (rounded to a whole epoch, at least 1; the top rung is always R), and the best n_{i+1} at rung i go on
    to rung i + 1. For R = 81, eta = 3 this is the paper's table, 143 configs per iteration:

        bracket 4: 81 @ 1, 27 @ 3, 9 @ 9, 3 @ 27, 1 @ 81
        bracket 3: 34 @ 3, 11 @ 9, 3 @ 27, 1 @ 81
        bracket 2: 15 @ 9, 5 @ 27, 1 @ 81
        bracket 1:  8 @ 27, 2 @ 81
        bracket 0:  5 @ 81

    When R < eta, s_max = 0 and Hyperband degenerates to random search at the full budget.

Options
    ``factor`` (eta, a whole number >= 2), ``bracket`` (None: every bracket; s: that bracket alone, i.e.
    plain successive halving, s in 0..s_max), ``iterations`` (how many Hyperband iterations to run when the
    session sets no trial count), ``sampler`` (how new configs are drawn, below).

Sampler
    ``"random"``: uniformly from the space (the paper). ``"bayes"`` (the default since it beat Optuna's TPE +
    HyperbandPruner at equal epochs, benchmarks/results/hyperband-bayes.md): BOHB-like, a GP fitted at the
    highest rung budget that enough trials have reached; the rule is shared with asha and lives in
    ``fidelity.py``. Each new trial's meta says ``"chosen_by": "model" | "random"``.

Trial count
    ``n_trials`` (``--trials N``) caps the number of NEW trials (configs); promotions do not count. With it,
    brackets are run in order (s_max..0, then again from s_max) until N configs exist, and the last bracket
    gets only the remaining configs. Rung sizes are ``max(1, n // eta**i)`` of the bracket's actual n, so a
    truncated bracket still takes its best config to the full budget R; for untruncated brackets the
    ``max(1, ...)`` never changes the paper's numbers (n >= eta**s). Without ``n_trials`` the plan is
    ``iterations`` full iterations. ``total()`` is the number of configs the plan creates.

Order
    With one worker (nothing runs when ``ask`` is called) a bracket finishes (all rungs) before the next
    starts. With several workers the brackets run concurrently: while the current bracket's rung waits for
    its running trials, ``ask`` starts the next bracket's configs (or promotes in a later bracket that has
    already started), and answers ``WAIT`` only when no bracket of the plan can start anything. Within a
    rung, new configs and promotions run in trial-number order. A promoted trial keeps its number and config: the suggestion names it
    (``trial=N``) with the next rung's budget and the full new meta, and the objective continues it from its
    checkpoint.

Meta
    Every trial carries ``{"bracket": s, "rung": i, "iteration": k}``: the rung it is at now. Everything
    the strategy knows derives from the records (their meta, states, values and epoch rows) and the seed,
    so ``restore(records)`` on a fresh object continues exactly as the uninterrupted run would.

States (the runner's side of the contract)
    ``state_after(record)``: a run that ended without error at a rung below its bracket's top is PAUSED
    (waiting for its rung's decision), at the top rung COMPLETE. ``settle()``: once every trial of a rung
    has reported, the rung is decided; the PAUSED trials at it that are not promoted become PRUNED. Only
    PAUSED -> PRUNED is ever returned (promoted trials stay PAUSED until they are continued). The runner
    applies the result after each ``tell`` (and should call it once after ``restore`` too, in case the
    process died between a ``tell`` and applying its decisions; ``settle`` is idempotent).

Ranking at a rung of budget r
    ``record.value_at(r, metric, direction)`` over the epoch rows (the best of epochs 1..r), else the
    record's own value while it is still at that rung. FAILED trials, and trials with no finite value, are
    the worst at their rung and never promoted. Ties go to the lower trial number. A COMPLETE trial below
    its top rung (a runner that ignored ``state_after``) is ranked like a PAUSED one.

Pending trials
    RUNNING and INTERRUPTED trials are pending: their rung waits for them. ``ask`` re-suggests an
    INTERRUPTED trial of the current bracket (``trial=N``, its own budget and meta, lowest number first)
    before anything else, so a resumed session re-runs it from its checkpoint. A bracket that waits only on
    RUNNING trials is passed over for the next one (see Order); None means finished: every bracket of the
    plan has been decided.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tuitune.core.errors import StrategyError
from tuitune.core.records import TrialRecord, TrialState, nondominated_order
from tuitune.core.search.strategies.base import WAIT, Strategy, Suggestion, Wait
from tuitune.core.search.strategies.fidelity import check_sampler, new_config

_PENDING = (TrialState.RUNNING, TrialState.INTERRUPTED)
OPEN_ENDED = 2**62  # the config count of an open-ended plan (a time budget ends the session)


def _whole(x: Any) -> bool:
    return type(x) is int or (isinstance(x, int) and not isinstance(x, bool))


def s_max_of(max_epochs: int, factor: int) -> int:
    """The largest s with factor**s <= max_epochs (integer arithmetic: float log misses exact powers)."""
    s = 0
    while factor ** (s + 1) <= max_epochs:
        s += 1
    return s


def bracket_size(s: int, s_max: int, factor: int) -> int:
    """Hyperband's n for bracket s: ceil((s_max + 1) / (s + 1) * factor**s), in integers."""
    return -(-((s_max + 1) * factor**s) // (s + 1))


def rung_budgets(s: int, max_epochs: int, factor: int) -> list[int]:
    """The epochs of rungs 0..s of bracket s: max_epochs / factor**(s - i), rounded half up, at least 1."""
    out = []
    for i in range(s + 1):
        d = factor ** (s - i)
        out.append(max(1, (2 * max_epochs + d) // (2 * d)))
    return out


def rung_sizes(n: int, s: int, factor: int) -> list[int]:
    """How many trials reach rungs 0..s of a bracket of n configs (at least 1 past rung 0 when n > 0)."""
    if n <= 0:
        return [0] * (s + 1)
    return [n] + [max(1, n // factor**i) for i in range(1, s + 1)]


@dataclass(frozen=True)
class BracketPlan:
    """One bracket run of the plan.

    Attributes:
        iteration: the Hyperband iteration (with ``bracket=s``, each repetition is an iteration).
        bracket: s; its rungs are 0..s.
        budgets: the epochs of each rung.
        sizes: the planned number of trials at each rung (fewer where trials fail).
    """

    iteration: int
    bracket: int
    budgets: tuple[int, ...]
    sizes: tuple[int, ...]

    @property
    def n(self) -> int:
        return self.sizes[0]


@dataclass
class _Walk:
    """What one bracket needs next, and the decided trials it no longer needs."""

    action: str  # "new", "resume", "promote", "wait" or "done"
    trial: TrialRecord | None = None
    rung: int = 0
    pruned: list[int] = dataclasses.field(default_factory=list)


class HyperbandStrategy(Strategy):
    """Hyperband: brackets of successive halving over random configs (see the module docstring).

    Args:
        factor: eta, the halving rate: each rung keeps 1/factor of its trials and trains them factor
            times longer. A whole number >= 2.
        bracket: None to run every bracket; a bracket s (0..s_max) to run that bracket alone, i.e. plain
            successive halving with n configs starting at R / factor**s epochs.
        iterations: how many Hyperband iterations to run when the session sets no trial count.
        sampler: ``"bayes"`` (the default: new configs from a GP fitted at the highest rung with enough
            trials; see the module docstring) or ``"random"`` (the paper's).
    """

    name = "hyperband"

    def __init__(
        self,
        space,
        *,
        factor: int = 3,
        bracket: int | None = None,
        iterations: int = 1,
        sampler: str = "bayes",
        **kw: Any,
    ) -> None:
        super().__init__(space, **kw)
        self.sampler = check_sampler("hyperband", sampler)
        if not _whole(factor) or factor < 2:
            raise StrategyError(f"hyperband option factor must be a whole number >= 2 (3 is usual), got {factor!r}")
        if not _whole(iterations) or iterations < 1:
            raise StrategyError(f"hyperband option iterations must be a whole number >= 1, got {iterations!r}")
        self.factor = factor
        self.iterations = iterations
        self.s_max = s_max_of(self.max_epochs, factor)
        if bracket is not None and (not _whole(bracket) or not 0 <= bracket <= self.s_max):
            raise StrategyError(
                f"hyperband option bracket must be a whole number from 0 to {self.s_max} "
                f"(max_epochs {self.max_epochs}, factor {factor}), or None for every bracket; got {bracket!r}"
            )
        self.bracket = bracket
        self._values: dict[tuple[int, int], tuple[TrialRecord, float | None]] = {}

    # ---- the plan --------------------------------------------------------------------------------
    def _cycle(self) -> list[int]:
        return [self.bracket] if self.bracket is not None else list(range(self.s_max, -1, -1))

    def configs_for_epochs(self, epochs: int) -> int:
        """The configs of the brackets (in plan order, the last one truncated) whose epochs fit in ``epochs``.

        A bracket of n configs costs the sum over its rungs of (trials at the rung) x (the epochs the rung
        adds): a promotion continues its trial, so rung i adds r_i - r_{i-1} epochs to each trial there.
        """
        cycle, made, left, j = self._cycle(), 0, epochs, 0
        while True:
            s = cycle[j % len(cycle)]
            n = bracket_size(s, self.s_max, self.factor)
            while n > 0 and self.bracket_epochs(n, s) > left:
                n -= 1
            if n == 0:
                return made
            made, left, j = made + n, left - self.bracket_epochs(n, s), j + 1

    def bracket_epochs(self, n: int, s: int) -> int:
        """The epochs a bracket s of n configs trains when every trial reaches its rungs."""
        budgets = rung_budgets(s, self.max_epochs, self.factor)
        return sum(k * (b - prev) for k, b, prev in zip(rung_sizes(n, s, self.factor), budgets, [0, *budgets]))

    def _cap(self) -> int:
        cap = self.trial_cap()
        if cap is not None:
            return cap
        if self.open_ended:  # a time budget ends it: iteration after iteration (plan() is lazy)
            return OPEN_ENDED
        return self.iterations * sum(bracket_size(s, self.s_max, self.factor) for s in self._cycle())

    def plan(self) -> Iterator[BracketPlan]:
        """The bracket runs in order, the last one truncated to the trial count."""
        cycle, cap, made, j = self._cycle(), self._cap(), 0, 0
        while made < cap:
            s = cycle[j % len(cycle)]
            n = min(bracket_size(s, self.s_max, self.factor), cap - made)
            yield BracketPlan(
                iteration=j // len(cycle),
                bracket=s,
                budgets=tuple(rung_budgets(s, self.max_epochs, self.factor)),
                sizes=tuple(rung_sizes(n, s, self.factor)),
            )
            made += n
            j += 1

    def total(self) -> int | None:
        return None if self.open_ended else self._cap()

    # ---- reading the records ----------------------------------------------------------------------
    @staticmethod
    def _is_ours(t: TrialRecord) -> bool:
        m = t.meta
        return _whole(m.get("bracket")) and _whole(m.get("rung")) and _whole(m.get("iteration"))

    def _groups(self) -> dict[tuple[int, int], list[TrialRecord]]:
        groups: dict[tuple[int, int], list[TrialRecord]] = {}
        for t in self.trials:
            if self._is_ours(t):
                groups.setdefault((t.meta["iteration"], t.meta["bracket"]), []).append(t)
        return groups

    def _rank_value(self, t: TrialRecord, rung: int, budget: int) -> float | None:
        """The trial's value at a rung, as a loss; None when it cannot be promoted."""
        # Records are frozen snapshots: a value is computed once per (record object, rung).
        hit = self._values.get((t.number, rung))
        if hit is not None and hit[0] is t:
            return hit[1]
        v = self._compute_value(t, rung, budget)
        self._values[(t.number, rung)] = (t, v)
        return v

    def _compute_value(self, t: TrialRecord, rung: int, budget: int) -> float | None:
        if t.state == TrialState.FAILED:
            return None
        v = t.value_at(budget, self.metric, self.direction) if t.epochs else None
        if v is None and t.meta["rung"] == rung:
            v = t.value
        if v is None or not math.isfinite(float(v)):
            return None
        return self.score(float(v))

    def _moasha_order(self, trials: list[TrialRecord], budget: int) -> list[tuple[float, int, TrialRecord]]:
        """Several objectives or constraints: the rung's trials as MOASHA ranks them (records.nondominated_order:
        Pareto layer, then crowding distance), the feasible before the infeasible; no value: left out."""
        goal = self.objectives
        groups: dict[bool, list[tuple[TrialRecord, tuple[float, ...]]]] = {True: [], False: []}
        for t in trials:
            losses = goal.losses(t, upto=budget) if t.epochs else goal.losses(t)
            if losses is not None:
                groups[goal.feasible(t, upto=budget) if t.epochs else goal.feasible(t)].append((t, losses))
        out: list[tuple[float, int, TrialRecord]] = []
        for ok in (True, False):
            members = groups[ok]
            out += [(float(len(out)), members[i][0].number, members[i][0])
                    for i in nondominated_order([p for _, p in members])]
        return out

    def _walk(self, plan: BracketPlan, members: list[TrialRecord]) -> _Walk:
        """Works out a bracket's next step from its trials' records."""
        walk = _Walk("done")
        interrupted = [t for t in members if t.state == TrialState.INTERRUPTED]
        if interrupted:
            walk = _Walk("resume", interrupted[0], interrupted[0].meta["rung"])
        elif len(members) < plan.n:
            walk = _Walk("new")
        size = plan.n
        for i, budget in enumerate(plan.budgets):
            arrived = [t for t in members if t.meta["rung"] >= i]
            here = [t for t in arrived if t.meta["rung"] == i]
            if len(arrived) < size:
                break  # still filling (new configs are being created)
            if any(t.state in _PENDING for t in here):
                if walk.action == "done":
                    walk.action = "wait"
                break
            if i == len(plan.budgets) - 1:
                break
            ahead = [t for t in arrived if t.meta["rung"] > i]
            ranked = sorted(
                ((v, t.number, t) for t in here if (v := self._rank_value(t, i, budget)) is not None),
                key=lambda x: (x[0], x[1]),
            )
            if not self.objectives.plain:
                ranked = self._moasha_order([t for _, _, t in ranked], budget)
            keep = {t.number for t in ahead}
            keep |= {t.number for _, _, t in ranked[: max(0, plan.sizes[i + 1] - len(ahead))]}
            walk.pruned += [t.number for t in here if t.number not in keep and t.state == TrialState.PAUSED]
            waiting = [t for t in here if t.number in keep]
            if waiting:
                if walk.action == "done":
                    walk = _Walk("promote", waiting[0], i + 1, walk.pruned)
                break
            size = len(keep)
            if size == 0:
                break  # every trial at this rung failed: the bracket ends here
        return walk

    # ---- contract ---------------------------------------------------------------------------------
    def ask(self) -> Suggestion | Wait | None:
        groups = self._groups()
        waiting = False
        for plan in self.plan():
            walk = self._walk(plan, groups.get((plan.iteration, plan.bracket), []))
            if walk.action == "done":
                continue
            if walk.action == "wait":
                waiting = True  # its rung waits for running trials: the next bracket may start meanwhile
                continue
            meta: dict[str, Any] = {"bracket": plan.bracket, "rung": walk.rung, "iteration": plan.iteration}
            if walk.action == "new":
                config, how = new_config(self, self.sampler, [t for t in self.trials if self._is_ours(t)], self._budgets())
                return Suggestion(config=config, budget=plan.budgets[0], meta={**meta, **how})
            t = walk.trial
            assert t is not None
            return Suggestion(config=dict(t.config), budget=plan.budgets[walk.rung], trial=t.number, meta=meta)
        return WAIT if waiting else None

    def _budgets(self) -> list[int]:
        """Every rung budget of the plan's brackets (the sampler's model is fitted at one of them)."""
        return sorted({b for s in self._cycle() for b in rung_budgets(s, self.max_epochs, self.factor)})

    def state_after(self, trial: TrialRecord) -> TrialState:
        """PAUSED below the top rung of the trial's bracket (waiting for the rung's decision), else COMPLETE."""
        if self._is_ours(trial) and trial.meta["rung"] < trial.meta["bracket"]:
            return TrialState.PAUSED
        return TrialState.COMPLETE

    def settle(self) -> dict[int, TrialState]:
        """The PAUSED trials of decided rungs that were not promoted: each -> PRUNED."""
        groups = self._groups()
        out: dict[int, TrialState] = {}
        for plan in self.plan():
            members = groups.get((plan.iteration, plan.bracket))
            if not members:
                break  # brackets run in order: nothing has started past here
            for n in self._walk(plan, members).pruned:
                out[n] = TrialState.PRUNED
        for n, state in out.items():
            self._trials[n] = dataclasses.replace(self._trials[n], state=state)
        return out

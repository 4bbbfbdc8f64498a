"""Provides the Python API behind ``tuitune.tune``: sessions created or resumed, run, and read back."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuitune.core import events as ev
from tuitune.core.budget import Budget
from tuitune.core.errors import SessionError, SessionExistsError, SpaceError, TooManyFailuresError
from tuitune.core.records import (
    Objectives,
    SessionRecord,
    TrialRecord,
    best_by,
    pareto_set,
    ranked_by,
)
from tuitune.core.search.space import Space
from tuitune.core.search.strategies import make_strategy, strategy_class
from tuitune.core.search.strategies.base import Strategy
from tuitune.core.store.export import export_document, write_json_atomic
from tuitune.core.store.safefs import check_name
from tuitune.core.store.store import Store, default_db_path

_ADJ = "amber brisk calm deft eager fair gentle hardy keen lucid mellow nimble quiet rapid steady swift tidy vivid warm witty".split()
_NOUN = "otter heron lynx finch badger falcon marten puffin raven wren ibex koala tapir gecko bison crane egret moth newt yak".split()


def check_session_name(name: str) -> str:
    """``name`` when it is a valid session name (the rule lives in safefs.check_name), else SessionError."""
    return check_name(name)


def new_session_name(store: Store) -> str:
    """A readable name not yet used in the store, like ``swift-otter-42``."""
    rnd = random.Random()
    for _ in range(1000):
        name = f"{rnd.choice(_ADJ)}-{rnd.choice(_NOUN)}-{rnd.randint(1, 99)}"
        if not store.session_exists(name):
            return name
    raise SessionError("could not find a free session name; pass one with session=...")


def open_store(db: str | os.PathLike[str] | Store | None) -> Store:
    if isinstance(db, Store):
        return db
    return Store(db if db is not None else default_db_path())


class Session:
    """A tuning session in a database: its settings, its trials, its best trial, export."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name

    @property
    def record(self) -> SessionRecord:
        return self.store.session(self.name)

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def trials(self) -> list[TrialRecord]:
        return self.store.trials(self.name)

    @property
    def objectives(self) -> Objectives:
        """The session's metrics, directions and constraints."""
        rec = self.record
        return Objectives.of(rec.metric, rec.direction, rec.options)

    def leaderboard(self) -> list[TrialRecord]:
        """Complete feasible trials, best first (ties: the earlier trial first; several objectives: by
        Pareto layer, then by the first metric)."""
        return ranked_by(self.trials, self.objectives)

    @property
    def best(self) -> TrialRecord | None:
        """The best complete trial (a failed, pruned, unfinished or infeasible trial is never best; several
        objectives: the Pareto trial best in the first metric)."""
        return best_by(self.trials, self.objectives)

    @property
    def pareto(self) -> list[TrialRecord]:
        """The non-dominated feasible complete trials, by the first metric (one metric: the best trial)."""
        return pareto_set(self.trials, self.objectives)

    def export(self, path: str | os.PathLike[str] = "best.json", trial: int | None = None) -> Path:
        """Writes the best config (several objectives: the Pareto set; ``trial``: that trial) and its
        provenance to ``path`` as JSON, atomically."""
        return write_json_atomic(path, export_document(
            self.record, self.best, self.store.path, pareto=self.pareto, trial=self._pick(trial),
        ))

    def _pick(self, number: int | None) -> TrialRecord | None:
        """The trial the user asked to export: complete and feasible, else an ExportError naming it."""
        if number is None:
            return None
        from tuitune.core.errors import ExportError
        from tuitune.core.records import TrialState

        trials = {t.number: t for t in self.trials}
        if number not in trials:
            raise ExportError(
                f"session '{self.name}' has no trial {number}; its trials are 0-{max(trials)}" if trials
                else f"session '{self.name}' has no trials yet"
            )
        t = trials[number]
        if t.state != TrialState.COMPLETE or t.value is None:
            raise ExportError(f"trial {number} of session '{self.name}' is {t.state.value}: only a complete trial is exported")
        if not self.objectives.rankable(t):
            raise ExportError(
                f"trial {number} of session '{self.name}' breaks a constraint "
                f"({', '.join(str(c) for c in self.objectives.constraints)}): an infeasible trial is never exported"
            )
        return t

    def __repr__(self) -> str:
        return f"Session({self.name!r}, db={str(self.store.path)!r})"


PRIOR_KINDS = ("defaults",)
# The strategies a prior acts on (grid walks its grid, manual runs the user's change).
PRIOR_STRATEGIES = ("random", "bayes", "hyperband", "asha")


def with_prior(space: Space, prior: str | None, defaults: Mapping[str, Any] | None, strategy: str,
               key: str = "prior") -> Space:
    """The space with the priors a ``prior=`` setting asks for (``"defaults"``: the defaults' values)."""
    if prior is None:
        return space
    if prior not in PRIOR_KINDS:
        raise SpaceError(f"{key} {prior!r} is unknown; use 'defaults' (or give a parameter prior=VALUE)")
    if strategy not in PRIOR_STRATEGIES:
        raise SpaceError(f"{key} {prior!r} acts on the {', '.join(PRIOR_STRATEGIES)} strategies, not on {strategy}")
    if not defaults:
        raise SpaceError(f"{key} 'defaults' needs defaults: pass defaults={{...}} (a preset's [defaults])")
    return space.with_priors(defaults)


def warm_data(
    store: Store, names: str | Sequence[str] | None, space: Space, defaults: Mapping[str, Any] | None, this: str,
    strategy: str, key: str = "warm_start",
) -> list[dict[str, Any]] | None:
    """The warm start from earlier sessions of the store (``tuitune.core.search.warm``), checked: each name must be
    another session of this database."""
    from tuitune.core.search.warm import warm_trials

    if names is None:
        return None
    if strategy == "manual":
        raise SessionError(f"{key}: manual mode runs the changes you ask for; warm-start another strategy")
    wanted = [names] if isinstance(names, str) else list(names)
    sources = []
    for n in wanted:
        if not isinstance(n, str) or not store.session_exists(n):
            known = ", ".join(r.name for r in store.sessions()) or "none"
            raise SessionError(f"{key} {n!r}: no such session in {store.path}; its sessions: {known}")
        if n == this:
            raise SessionError(f"{key} {n!r} is this session itself; name an earlier one")
        rec = store.session(n)
        sources.append((n, rec.direction, store.trials(n, with_epochs=False)))
    return warm_trials(space, defaults, sources)


def strategy_for(record: SessionRecord, trials: Sequence[TrialRecord] | None = None, **overrides: Any) -> Strategy:
    """Rebuilds a session's strategy from its stored settings (the one place this is done).

    ``overrides`` replace options (``n_trials`` replaces the trial budget; ``strategy`` another strategy over
    the session's space, without its options: manual mode from any session); given ``trials``, the strategy
    is restored from them.
    """
    space = Space.from_dict(record.space)
    n_trials = overrides.pop("n_trials", record.n_trials)
    kind = overrides.pop("strategy", record.strategy)
    options = {**record.options, **overrides} if kind == record.strategy else dict(overrides)
    if kind in ("hyperband", "asha"):
        # Sessions stored before these had a sampler drew their configs at random: they go on that way.
        options.setdefault("sampler", "random")
    strat = make_strategy(
        kind,
        space,
        seed=record.seed,
        max_epochs=record.max_epochs,
        metric=record.metric,
        direction=record.direction,
        n_trials=n_trials,
        defaults=record.defaults or None,
        total_epochs=Budget.of(record).total_epochs,
        warm_start=record.info.get("warm_start") or None,
        open_ended=Budget.of(record).timeout is not None,
        **options,
    )
    if trials is not None:
        strat.restore(list(trials))
    return strat


# Options that are one run's request, not a setting of the session (manual mode's next change).
_PER_RUN_OPTIONS = {"changes"}


def _differences(rec: SessionRecord, asked: Mapping[str, Any], given: Iterable[str] | None = None) -> list[str]:
    """What differs between a stored session and the settings asked for, in words. An option the stored
    session lacks (stored before it existed) differs only when the user set it (``given``; None: all)."""
    out = []
    for key, value in asked.items():
        if key == "options":
            for k, v in value.items():
                if k not in rec.options and given is not None and k not in set(given):
                    continue  # a default the user never typed: resumed as stored
                if k not in _PER_RUN_OPTIONS and v is not None and v != rec.options.get(k):
                    out.append(f"option {k} {rec.options.get(k)!r} (you asked {v!r})")
        elif key == "space":
            if value != rec.space:
                out.append("a different search space")
        elif key == "preset":
            # The same TOML by another path, or with another budget (a budget is extended, not a new setting).
            mine = {k: v for k, v in dict(rec.preset).items() if k not in ("path", "budget")}
            if value is not None and {k: v for k, v in dict(value).items() if k not in ("path", "budget")} != mine:
                out.append("a different preset")
        elif value is not None and value != getattr(rec, key):
            out.append(f"{key} {getattr(rec, key)!r} (you asked {value!r})")
    return out


def open_session(
    store: Store,
    name: str,
    *,
    strategy: str,
    space: Space,
    metric: str,
    direction: str,
    seed: int,
    max_epochs: int,
    trials: int | None,
    options: Mapping[str, Any],
    preset: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
    budget: Budget | None = None,
    given_options: Iterable[str] | None = None,
) -> tuple[SessionRecord, bool]:
    """The one rule of "new session, resume, or refuse", for ``tt.tune`` and ``tuitune run``.

    A new name creates the session. An existing name with the same settings (strategy, space, metric,
    direction, seed, epoch budget, strategy options, preset) is resumed, and a larger ``trials``
    extends its budget, and each limit of ``budget`` given (time, total epochs, target) replaces the stored
    one; other settings are refused with a SessionExistsError naming each difference.
    Returns the record and whether the session existed.
    """
    budget = budget or Budget()
    if store.session_exists(name):
        rec = store.session(name)
        diffs = _differences(rec, {
            "strategy": strategy, "space": space.to_dict(), "metric": metric, "direction": direction,
            "seed": seed, "max_epochs": max_epochs, "options": options, "preset": preset,
        }, given_options)
        if diffs:
            from tuitune.core.text import resume_command

            raise SessionExistsError(
                f"session '{name}' already exists with other settings: {', '.join(diffs)}; continue it with "
                f"'{resume_command(name, store.path)}' (Python: the same settings) or choose another session name"
            )
        if trials is not None and (rec.n_trials is None or trials > rec.n_trials):
            store.update_session(name, n_trials=trials)
            rec = store.session(name)
        stored = Budget.of(rec)
        if budget and stored.merged(budget) != stored:
            store.update_session(name, info={**rec.info, "budget": stored.merged(budget).to_dict()})
            rec = store.session(name)
        return rec, True
    if budget:
        info = {**(info or {}), "budget": budget.to_dict()}
    store.create_session(
        name, strategy=strategy, options=dict(options), space=space.to_dict(), metric=metric, direction=direction,
        seed=seed, max_epochs=max_epochs, n_trials=trials, preset=dict(preset or {}), defaults=dict(defaults or {}),
        info=dict(info) if info is not None else None,
    )
    return store.session(name), False


def tune(
    objective: Callable[..., Any],
    space: Space | Mapping[str, Any],
    *,
    strategy: str = "random",
    trials: int | None = None,
    max_epochs: int = 1,
    metric: str | Sequence[str] = "val_loss",
    direction: str | Sequence[str] = "minimize",
    constraints: Sequence[str] | None = None,
    seed: int = 0,
    db: str | os.PathLike[str] | Store | None = None,
    session: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    preset: Mapping[str, Any] | None = None,
    max_failures: int = 3,
    trial_timeout: float | None = None,
    listeners: Iterable[Callable[[Any], None]] = (),
    workers: int | str | None = None,
    devices: str | Sequence[str] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    gpus_per_trial: float | None = None,
    timeout: float | str | None = None,
    total_epochs: int | None = None,
    target: float | None = None,
    prior: str | None = None,
    warm_start: str | Sequence[str] | None = None,
    fuse: int | str = 1,
    fuse_key: Callable[[dict], Hashable | None] | None = None,
    quiet: bool = False,
    **options: Any,
) -> Session:
    """Runs (or resumes) a tuning session and returns it.

    Args:
        objective: ``objective(config, trial) -> float | None``; report epochs with ``trial.report``. Or a
            ``tt.Command("python train.py --lr {lr}")``: a script run per trial (``tuitune.core.run.command``).
        space: a ``Space`` (or a mapping of name to parameter).
        strategy: ``manual``, ``grid``, ``random``, ``bayes``, ``hyperband`` or ``asha``.
        trials: how many trials to create (grid and Hyperband default to their full plan). On an
            existing session, a larger number extends it.
        max_epochs: the epoch budget of a trial (Hyperband's R).
        metric, direction: what ranks trials; ``direction`` is ``minimize`` or ``maximize``. Several
            objectives: a list of each (``metric=["val_loss", "params"], direction=["minimize", "minimize"]``);
            trials then rank by Pareto layer and ``session.pareto`` is the non-dominated set.
        constraints: ``["params <= 1e6", "latency_ms <= 5"]`` on reported metrics, read at the epoch the
            first metric is best: a trial that breaks one is never best, on the Pareto set or exported.
        seed: every random choice of the strategy derives from it.
        db: the database file (default ``$TUITUNE_DB`` or the user data directory).
        session: the session's name; an existing name resumes that session.
        defaults: a config where manual mode starts (and fixed values for parameters not searched).
        max_failures: stop after this many trials fail in a row.
        trial_timeout: seconds one trial may run, checked between epochs.
        workers: worker processes per device. None (the default): one. A function at the top level of a module
            is sent by reference, any other (a closure, a lambda, a notebook's, stdin's) by value with cloudpickle;
            when what it captures cannot be pickled it runs in this thread and a warning names it. 0: always in
            this thread (for pdb). ``"auto"``: one per device to start, more while the memory and utilisation
            its trials measured allow, one fewer after an out-of-memory error (the trial runs again).
        devices: ``"cpu"``, ``["cuda:0", "cuda:1"]``, ``"all"`` (every visible GPU); each worker is pinned to
            one (it sees its GPU as ``cuda:0``). None: workers are not pinned.
        backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (one Ray actor per worker, on a
            cluster; ``workers`` is then the number of actors, ``devices`` is not used).
        ray_address: ``"HOST:PORT"`` or ``"auto"`` joins a running Ray cluster; None starts a local Ray on
            127.0.0.1 for this run.
        gpus_per_trial: each Ray actor's GPUs (fractions share a GPU); None: 1 when the cluster has GPUs, else 0.
        timeout: how long the session may run, in seconds or as ``"8h"``, ``"30m"``, ``"1h30m"``: no trial
            starts once spent (a running one finishes). Counted over every run of the session.
        total_epochs: the session's total of epochs; hyperband and asha fill it with brackets and rungs, the
            others run whole trials of ``max_epochs``.
        target: the session ends once a trial's value reaches it (<= when minimizing, >= when maximizing).
        prior: ``"defaults"``: each searched parameter's value in ``defaults`` becomes its prior (as
            ``tt.Float(..., prior=1e-3)`` does): bayes weights its acquisition by the prior (piBO), random,
            hyperband and asha draw a fading share of configs around it.
        warm_start: an earlier session's name in the same database, or a list of them: their complete
            trials inform bayes's model (ranked within their session, so a shifted metric still helps) without
            counting as this session's trials, and their best configs (fitted to this space) run first.
            Taken when the session is created and stored with it (its resumes see the same data).
        fuse: trials one worker may train at once as one array (1: off); the objective then has a method
            ``train_array(configs, trials) -> list`` (one return value per trial, or its exception).
        fuse_key: ``fuse_key(config)``: configs with equal keys (and budgets) may share an array; None for a
            config that trains alone. Default: the objective's own ``fuse_key`` method, if it has one.
        quiet: no progress lines on stderr (by default a line when the session starts, before the workers
            do, and one per finished trial, as the command line prints).
        **options: the strategy's options (``factor=3`` for Hyperband, ``changes=[...]`` for manual, ...).

    Raises:
        TooManyFailuresError: the session stopped because ``max_failures`` trials in a row failed.
    """
    from tuitune.core.run.placement import Placement

    if not isinstance(space, Space):
        space = Space(dict(space))
    space = with_prior(space, prior, defaults, strategy)
    from tuitune.core.run.command import Command

    if isinstance(objective, Command):
        objective.check(list(space))  # a {placeholder} the space does not have fails before any trial
    try:
        goal = Objectives.build(metric, direction, constraints)
    except ValueError as e:
        raise SpaceError(str(e)) from None
    metric, direction = goal.metrics[0], goal.directions[0]
    options = {**options, **goal.to_options()}
    store = open_store(db)
    name = check_session_name(session) if session else new_session_name(store)
    strategy_class(strategy)  # an unknown name fails before anything is written
    placement = Placement.parse(
        devices=devices, workers=workers, backend=backend, ray_address=ray_address, gpus_per_trial=gpus_per_trial,
        max_failures=max_failures, trial_timeout=trial_timeout, fuse=fuse,
    )
    run_options = dict(options)
    budget = Budget.make(timeout, total_epochs, target)
    budget.check_epochs(max_epochs)
    warm = None if store.session_exists(name) else warm_data(store, warm_start, space, defaults, name, strategy)
    strat = make_strategy(
        strategy, space, seed=seed, max_epochs=max_epochs, metric=metric, direction=direction,
        n_trials=trials, defaults=defaults, total_epochs=budget.total_epochs, warm_start=warm,
        open_ended=budget.timeout is not None, **run_options,
    )
    rec, existed = open_session(
        store, name, strategy=strategy, space=space, metric=metric, direction=direction, seed=seed,
        max_epochs=max_epochs, trials=trials, options={**strat.options(), **goal.to_options()},
        preset=preset, defaults=defaults,
        info={**placement.to_info(), **({"warm_start": warm} if warm else {})}, budget=budget,
        given_options=set(run_options),
    )
    if existed:
        strat = strategy_for(rec, **run_options)
    listeners, started = _progress(list(listeners), quiet, store, rec, existed)
    result = placement.runner(store, name, objective, strat, fuse_key=fuse_key, listeners=listeners).run()
    if existed and rec.state == "finished" and not started:
        _warn_untouched(store, name)
    if result.state == "failed":
        raise TooManyFailuresError(f"session '{name}': {result.message}")
    return Session(store, name)


def _progress(
    listeners: list[Callable[[Any], None]], quiet: bool, store: Store, rec: SessionRecord, existed: bool
) -> tuple[list[Callable[[Any], None]], list[int]]:
    """tt.tune's listeners with its progress lines (none when ``quiet``; the first is said now), and the
    list that fills as trials start (empty after the run: it returned the session as it was)."""
    if not quiet:
        listeners.append(_Lines(rec.metric))
        what = f"{rec.strategy}" + ("" if rec.n_trials is None else f", {rec.n_trials} trials")
        _say(f"{'resuming' if existed else 'starting'} session '{rec.name}' ({what}) in {store.path}")
    started: list[int] = []
    listeners.append(lambda e: started.append(1) if isinstance(e, ev.TrialStarted) else None)
    return listeners, started


def _warn_untouched(store: Store, name: str) -> None:
    """The warning of a tt.tune call that returned a finished session as it was (nothing ran)."""
    import warnings

    warnings.warn(
        f"session '{name}' had already finished with these settings: nothing ran, and it is returned as it was; "
        f"pass trials= more than {len(store.trials(name, with_epochs=False))} to extend it, or another session name",
        stacklevel=3,  # tt.tune's caller
    )


def _say(text: str) -> None:
    """One progress line of tt.tune on stderr (where the command line's go too)."""
    import sys

    try:
        print(f"tuitune: {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # a closed stderr never stops a run
        pass


class _Lines:
    """tt.tune's progress: a line per finished trial and each notice (``quiet=True``: none)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def __call__(self, event: Any) -> None:
        from tuitune.core.text import fmt

        if isinstance(event, ev.TrialFinished):
            t = event.trial
            _say(f"trial {t.number} {t.state.value} {self.metric}={fmt(t.value)} epochs={t.last_epoch}/{t.budget}")
        elif isinstance(event, ev.Notice):
            _say(f"note: {event.text}")
        elif isinstance(event, ev.SessionFinished):
            _say(f"session '{event.session}' {event.state}" + (f": {event.message}" if event.message else ""))
def load(session: str, db: str | os.PathLike[str] | Store | None = None) -> Session:
    """Opens an existing session for reading (trials, best, export)."""
    store = open_store(db)
    store.session(session)  # raises SessionNotFoundError with the names there are
    return Session(store, session)

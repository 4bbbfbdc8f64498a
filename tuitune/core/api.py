"""Provides the Python API behind ``tuitune.tune``: sessions created or resumed, run, and read back."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tuitune.core.errors import SessionError, SessionExistsError, SpaceError, TooManyFailuresError
from tuitune.core.export import export_document, write_json_atomic
from tuitune.core.records import DIRECTIONS, SessionRecord, TrialRecord, best_trial, ranked
from tuitune.core.space import Space
from tuitune.core.store import Store, default_db_path
from tuitune.core.strategies import make_strategy, strategy_class
from tuitune.core.strategies.base import Strategy

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ADJ = "amber brisk calm deft eager fair gentle hardy keen lucid mellow nimble quiet rapid steady swift tidy vivid warm witty".split()
_NOUN = "otter heron lynx finch badger falcon marten puffin raven wren ibex koala tapir gecko bison crane egret moth newt yak".split()


def check_session_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SessionError(
            f"session name {name!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


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

    def leaderboard(self) -> list[TrialRecord]:
        """Complete trials, best first (ties: the earlier trial first)."""
        return ranked(self.trials, self.record.direction)

    @property
    def best(self) -> TrialRecord | None:
        """The best complete trial (a failed, pruned or unfinished trial is never best)."""
        return best_trial(self.trials, self.record.direction)

    def export(self, path: str | os.PathLike[str] = "best.json") -> Path:
        """Writes the best config and its provenance to ``path`` as JSON, atomically."""
        return write_json_atomic(path, export_document(self.record, self.best, self.store.path))

    def __repr__(self) -> str:
        return f"Session({self.name!r}, db={str(self.store.path)!r})"


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
        **options,
    )
    if trials is not None:
        strat.restore(list(trials))
    return strat


# Options that are one run's request, not a setting of the session (manual mode's next change).
_PER_RUN_OPTIONS = {"changes"}


def _differences(rec: SessionRecord, asked: Mapping[str, Any]) -> list[str]:
    out = []
    for key, value in asked.items():
        if key == "options":
            for k, v in value.items():
                if k not in _PER_RUN_OPTIONS and v is not None and v != rec.options.get(k):
                    out.append(f"option {k} {rec.options.get(k)!r} (you asked {v!r})")
        elif key == "space":
            if value != rec.space:
                out.append("a different search space")
        elif key == "preset":
            mine = {k: v for k, v in dict(rec.preset).items() if k != "path"}  # the same TOML by another path
            if value is not None and {k: v for k, v in dict(value).items() if k != "path"} != mine:
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
) -> tuple[SessionRecord, bool]:
    """The one rule of "new session, resume, or refuse", for ``tt.tune`` and ``tuitune run``.

    A new name creates the session. An existing name with the same settings (strategy, space, metric,
    direction, seed, epoch budget, strategy options, preset) is resumed, and a larger ``trials``
    extends its budget; other settings are refused with a SessionExistsError naming each difference.
    Returns the record and whether the session existed.
    """
    if store.session_exists(name):
        rec = store.session(name)
        diffs = _differences(rec, {
            "strategy": strategy, "space": space.to_dict(), "metric": metric, "direction": direction,
            "seed": seed, "max_epochs": max_epochs, "options": options, "preset": preset,
        })
        if diffs:
            from tuitune.core.store import resume_command

            raise SessionExistsError(
                f"session '{name}' already exists with other settings: {', '.join(diffs)}; continue it with "
                f"'{resume_command(name, store.path)}' (Python: the same settings) or choose another session name"
            )
        if trials is not None and (rec.n_trials is None or trials > rec.n_trials):
            store.update_session(name, n_trials=trials)
            rec = store.session(name)
        return rec, True
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
    metric: str = "val_loss",
    direction: str = "minimize",
    seed: int = 0,
    db: str | os.PathLike[str] | Store | None = None,
    session: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    preset: Mapping[str, Any] | None = None,
    max_failures: int = 3,
    trial_timeout: float | None = None,
    listeners: Iterable[Callable[[Any], None]] = (),
    workers: int | None = None,
    devices: str | Sequence[str] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    gpus_per_trial: float | None = None,
    fuse: int | str = 1,
    fuse_key: Callable[[dict], Hashable | None] | None = None,
    **options: Any,
) -> Session:
    """Runs (or resumes) a tuning session and returns it.

    Args:
        objective: ``objective(config, trial) -> float | None``; report epochs with ``trial.report``.
        space: a ``Space`` (or a mapping of name to parameter).
        strategy: ``manual``, ``grid``, ``random``, ``bayes``, ``hyperband`` or ``asha``.
        trials: how many trials to create (grid and Hyperband default to their full plan). On an
            existing session, a larger number extends it.
        max_epochs: the epoch budget of a trial (Hyperband's R).
        metric, direction: what ranks trials; ``direction`` is ``minimize`` or ``maximize``.
        seed: every random choice of the strategy derives from it.
        db: the database file (default ``$TUITUNE_DB`` or the user data directory).
        session: the session's name; an existing name resumes that session.
        defaults: a config where manual mode starts (and fixed values for parameters not searched).
        max_failures: stop after this many trials fail in a row.
        trial_timeout: seconds one trial may run, checked between epochs.
        workers: worker processes per device. None (the default): one, when the objective can be sent to a
            process (a function at the top level of a module), else the objective runs in this thread and a
            warning says so once. 0: always in this thread (for pdb).
        devices: ``"cpu"``, ``["cuda:0", "cuda:1"]``, ``"all"`` (every visible GPU); each worker is pinned to
            one (it sees its GPU as ``cuda:0``). None: workers are not pinned.
        backend: ``"local"`` (worker processes on this machine) or ``"ray"`` (one Ray actor per worker, on a
            cluster; ``workers`` is then the number of actors, ``devices`` is not used).
        ray_address: ``"HOST:PORT"`` or ``"auto"`` joins a running Ray cluster; None starts a local Ray on
            127.0.0.1 for this run.
        gpus_per_trial: each Ray actor's GPUs (fractions share a GPU); None: 1 when the cluster has GPUs, else 0.
        fuse: trials one worker may train at once as one array (1: off); the objective then has a method
            ``train_array(configs, trials) -> list`` (one return value per trial, or its exception).
        fuse_key: ``fuse_key(config)``: configs with equal keys (and budgets) may share an array; None for a
            config that trains alone. Default: the objective's own ``fuse_key`` method, if it has one.
        **options: the strategy's options (``factor=3`` for Hyperband, ``changes=[...]`` for manual, ...).

    Raises:
        TooManyFailuresError: the session stopped because ``max_failures`` trials in a row failed.
    """
    from tuitune.core.placement import Placement

    if not isinstance(space, Space):
        space = Space(dict(space))
    if direction not in DIRECTIONS:
        raise SpaceError(f"direction {direction!r} is unknown; use 'minimize' or 'maximize'")
    store = open_store(db)
    name = check_session_name(session) if session else new_session_name(store)
    strategy_class(strategy)  # an unknown name fails before anything is written
    placement = Placement.parse(
        devices=devices, workers=workers, backend=backend, ray_address=ray_address, gpus_per_trial=gpus_per_trial,
        max_failures=max_failures, trial_timeout=trial_timeout, fuse=fuse,
    )
    run_options = dict(options)
    strat = make_strategy(
        strategy, space, seed=seed, max_epochs=max_epochs, metric=metric, direction=direction,
        n_trials=trials, defaults=defaults, **run_options,
    )
    rec, existed = open_session(
        store, name, strategy=strategy, space=space, metric=metric, direction=direction, seed=seed,
        max_epochs=max_epochs, trials=trials, options=strat.options(),
        preset=preset, defaults=defaults, info=placement.to_info(),
    )
    if existed:
        strat = strategy_for(rec, **run_options)
    result = placement.runner(store, name, objective, strat, fuse_key=fuse_key, listeners=listeners).run()
    if result.state == "failed":
        raise TooManyFailuresError(f"session '{name}': {result.message}")
    return Session(store, name)


def load(session: str, db: str | os.PathLike[str] | Store | None = None) -> Session:
    """Opens an existing session for reading (trials, best, export)."""
    store = open_store(db)
    store.session(session)  # raises SessionNotFoundError with the names there are
    return Session(store, session)

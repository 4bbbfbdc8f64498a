"""Provides the starting of sessions from presets: new runs and resumes, shared by the CLI and the TUI.

It turns what a user typed (a preset, a strategy, ``--set KEY=VALUE``) into a stored session, its
strategy and its objective, ready for a Runner.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.api import (
    check_session_name,
    new_session_name,
    open_session,
    open_store,
    strategy_for,
    warm_data,
    with_prior,
)
from tuitune.core.budget import Budget
from tuitune.core.errors import ManualError, PresetError, SetupError
from tuitune.core.records import SessionRecord
from tuitune.core.run.placement import DEFAULT_MAX_FAILURES, Placement  # noqa: F401 - the CLI's default
from tuitune.core.run.runner import Runner, RunResult
from tuitune.core.run.workers import ObjectiveRef
from tuitune.core.search.strategies import make_strategy, strategy_class
from tuitune.core.search.strategies.base import Strategy
from tuitune.core.store.store import Store, default_db_path
from tuitune.core.text import resume_command
from tuitune.training.objective import build_objective

DEFAULT_TRIALS = 20  # random and bayes have no natural end (unless --time or --total-epochs); grid, Hyperband their plan
# Fused arrays for the built-in trainer unless --fuse or the preset's ``fuse`` says otherwise (a preset with
# the user's own objective: one trial per worker). Measured end to end on a 2-core CPU: README, fused-cpu.md.
DEFAULT_FUSE: int | str = "auto"


@dataclass
class Launch:
    """Everything a Runner needs, plus what the display shows."""

    store: Store
    name: str
    strategy: Strategy
    objective: Callable[..., Any]
    record: SessionRecord
    resumed: bool = False
    notes: list[str] = field(default_factory=list)
    updates: dict[str, Any] = field(default_factory=dict)  # session fields written once the run lock is held
    placement: Placement = field(default_factory=Placement)  # where trials run, and the run's limits
    objective_ref: ObjectiveRef | None = None  # how a worker process loads the objective
    fuse_key: Callable[[dict], Any] | None = None  # which configs may train as one array (the training layer's)
    pool: Any = None  # workers started before the session (a WarmPool's, adopted): its Runner drives them

    def runner(self, listeners: Iterable[Callable[[Any], None]] = (), **kw: Any) -> Runner:
        """The Runner of this launch, with its run limits (the one place a Runner is configured)."""
        updates = dict(self.updates)

        def apply() -> None:
            if updates:
                self.store.update_session(self.name, **updates)

        pool, self.pool = self.pool, None  # a pool runs one session
        return self.placement.runner(
            self.store, self.name, self.objective, self.strategy, ref=self.objective_ref, fuse_key=self.fuse_key,
            listeners=listeners, on_locked=apply, started=pool, **kw,
        )

    @property
    def where(self) -> str:
        """Where the trials run, in words: '2 workers on cpu', 'in this process on cuda:0'."""
        return self.placement.where(sendable=self.objective_ref is not None)

    def run(self, runner: Runner) -> RunResult:
        """Runs ``runner`` (from ``self.runner()``); a new session whose setup failed before any trial
        got an epoch (a dataset missing offline, say) is deleted rather than left behind as ``failed``:
        the next attempt starts afresh, and the error is reported once, by the caller."""
        try:
            return runner.run()
        except SetupError:
            if not self.resumed and self.store.session_exists(self.name):
                trials = self.store.trials(self.name, with_epochs=True)
                if all(t.last_epoch == 0 and not t.state.is_finished() for t in trials):
                    self.store.delete_session(self.name)  # with its log and checkpoint folders
            raise


def parse_sets(preset: Any, sets: Sequence[str]) -> dict[str, Any]:
    """``["lr=0.01", "units=64"]`` -> ``{"lr": 0.01, "units": 64}``, each value checked for its parameter."""
    from tuitune.training.presets import parse_value

    out: dict[str, Any] = {}
    for item in sets:
        if "=" not in item:
            raise PresetError(f"--set {item!r}: write KEY=VALUE, e.g. --set lr=0.01")
        key, text = item.split("=", 1)
        key = key.strip()
        if key in out:
            raise PresetError(f"--set {key} is given twice; give each parameter once")
        out[key] = parse_value(preset, key, text.strip())
    return out


def _manual_options(values: Mapping[str, Any], base: str | int | None, hint: str) -> dict[str, Any]:
    if len(values) > 1:
        raise ManualError(
            f"manual mode changes one parameter at a time; --set gives {len(values)} ({', '.join(values)}). "
            f"Run one change, then '{hint}' for the next"
        )
    req: dict[str, Any] = {"change": dict(values)}
    if base is not None:
        req["base"] = base
    return {"changes": [req]}


def _db_path(db: str | os.PathLike[str] | Store | None) -> Any:
    if isinstance(db, Store):
        return db.path
    return db if db is not None else default_db_path()


def _objective(preset: Any, placement: Placement, data_dir: str | None, seed: int) -> Callable[..., Any]:
    """The coordinator's own copy of a preset's objective: built now where trials train in this process (or
    the user's code, whose import errors are said now); built on first use where the built-in trainer's trials
    train in workers, which build their own: then the coordinator never imports torch for it, and its workers
    start a second or two sooner (benchmarks/results/worker-start-cpu.md)."""
    from tuitune.training.objective import load_objective

    device = _device(placement)
    if preset.objective is None and not placement.in_process:
        return _Deferred(lambda: load_objective(preset, device=device, data_dir=data_dir, seed=seed),
                         f"preset {preset.name}")
    return load_objective(preset, device=device, data_dir=data_dir, seed=seed)


class _Deferred:
    """An objective built on its first call (or the first look at one of its attributes)."""

    def __init__(self, build: Callable[[], Callable[..., Any]], label: str) -> None:
        self._build: Callable[[], Callable[..., Any]] | None = build
        self._fn: Callable[..., Any] | None = None
        self.__qualname__ = label

    def _built(self) -> Callable[..., Any]:
        if self._fn is None:
            assert self._build is not None
            self._fn, self._build = self._build(), None
        return self._fn

    def __call__(self, config: dict[str, Any], trial: Any) -> Any:
        return self._built()(config, trial)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_build", "_fn"):
            raise AttributeError(name)
        return getattr(self._built(), name)


def new_run(
    preset_ref: str,
    *,
    strategy: str = "random",
    trials: int | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    session: str | None = None,
    db: str | os.PathLike[str] | Store | None = None,
    data_dir: str | None = None,
    sets: Sequence[str] = (),
    base: str | int | None = None,
    options: Mapping[str, Any] | None = None,
    placement: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
    prior: str | None = None,
    warm_start: Sequence[str] | None = None,
) -> Launch:
    """A new session of a preset (or, when the name exists with the very same settings, its resume).

    ``placement``: the values of ``Placement.parse`` that were asked for (``{"devices": "cpu", "workers": 2}``);
    the rest are the preset's (its ``backend``) or the defaults. The placement is stored with the session
    for its resumes.
    ``budget``: ``time``, ``total_epochs``, ``target`` (the flags; None ones take the preset's).
    ``prior``: ``"defaults"`` makes the preset's ``[defaults]`` the priors of the searched parameters.
    ``warm_start``: earlier sessions of the database whose trials start this one (``tt.tune``'s warm_start).
    """
    from tuitune.training.presets import load_preset

    preset = load_preset(preset_ref)
    strategy_class(strategy)
    # The preset's [strategy.NAME] options, then the caller's (flags, the new-session form) over them.
    options = {**preset.strategy.get(strategy, {}), **{k: v for k, v in dict(options or {}).items() if v is not None}}
    values = parse_sets(preset, sets)
    space = preset.space
    defaults = dict(preset.defaults)
    if strategy == "manual":
        hint = resume_command(session or "NAME", _db_path(db), "--set", "KEY=VALUE")
        options.update(_manual_options(values, base, hint))
    elif values:
        space = space.with_fixed(values)
        defaults.update(values)
    space = with_prior(space, prior, defaults, strategy, key="--prior")
    max_epochs = max_epochs or preset.max_epochs
    if session:
        check_session_name(session)
    given = _budget_flags(budget)
    session_budget = Budget.from_dict(preset.budget).merged(given)
    session_budget.check_epochs(max_epochs, "--total-epochs")
    # A time or a total of epochs is the session's end: random and bayes then have no trial count of their own.
    if trials is None and strategy in ("random", "bayes") and session_budget.timeout is None \
            and session_budget.total_epochs is None:
        trials = DEFAULT_TRIALS
    warm = None
    if warm_start:  # read from the database (the rest is checked before it is touched)
        wstore = open_store(db)
        if not (session and wstore.session_exists(session)):
            warm = warm_data(wstore, list(warm_start), space, defaults, session or "", strategy, key="--warm-start")
    strat = make_strategy(
        strategy, space, seed=seed, max_epochs=max_epochs, metric=preset.metric, direction=preset.direction,
        n_trials=trials, defaults=defaults, total_epochs=session_budget.total_epochs, warm_start=warm,
        open_ended=session_budget.timeout is not None, **options, **preset.goal_options(),
    )
    # Everything a user can get wrong is checked before the database is touched.
    where = _new_placement(preset, placement)
    _check_data_dir(data_dir)
    objective = _objective(preset, where, data_dir, seed)
    if strategy == "manual":
        strat.plan(values, base)
    store = open_store(db)
    name = session or new_session_name(store)
    before = None
    if store.session_exists(name):
        check_not_running(store, name)  # refused before anything is said or changed
        before = store.session(name)
    rec, existed = open_session(
        store, name, strategy=strategy, space=space, metric=preset.metric, direction=preset.direction, seed=seed,
        max_epochs=max_epochs, trials=trials, options={**strat.options(), **preset.goal_options()}, preset=preset.to_dict(), defaults=defaults,
        info={"data_dir": data_dir, **where.to_info(), **({"warm_start": warm} if warm else {})},
        budget=session_budget, given_options=set(options),
    )
    if existed:
        launch = resume_run(
            name, db=store, data_dir=data_dir, sets=sets if strategy == "manual" else (), base=base, placement=placement,
        )
        launch.notes.insert(0, _resuming_note(before or rec, rec, launch, trials))
        return launch
    launch = Launch(
        store, name, strat, objective, rec, placement=where,
        objective_ref=_objective_ref(preset, data_dir, seed, where.fuse), fuse_key=_fuse_key(preset),
    )
    launch.notes += _fuse_notes(launch, preset)
    return launch


def _new_placement(preset: Any, placement: Mapping[str, Any] | None) -> Placement:
    """Where a new session of ``preset`` runs: the values asked for (``new_run``'s ``placement``) over the
    preset's backend and array size, else the defaults."""
    asked = _fuse_asked(placement)
    fuse = asked.pop("fuse", None) or (preset.fuse if preset.fuse is not None else _default_fuse(preset, asked))
    stored = Placement(backend=preset.backend or "local", workers=preset.workers if preset.workers is not None else 1)
    return Placement.parse(**asked, fuse=fuse, stored=stored, best_device=True, cli=True)


# ------------------------------------------------------------------------------------------ warm workers


@dataclass(eq=False)
class WarmPool:
    """Worker processes started before their session exists (the new-session form starts them while the
    user fills it in): each builds the objective, puts its dataset on its device and says ``Ready``; a new
    session whose objective and worker slots are the same adopts them (``adopt``), else they are closed.

    Their logs start in a folder of their own beside the sessions' (``<db>.d/logs/.warm-PID-N``, a name no
    session can have) and move to the session's when it adopts them.
    """

    key: tuple[Any, ...]
    pool: Any  # a started workers.WorkerPool
    log_dir: Path

    def adopt(self, launch: Launch) -> bool:
        """Hands the workers to ``launch`` (its Runner drives them) when they fit it; else closes them."""
        if launch.pool is None and _warm_key(launch.placement, launch.objective_ref) == self.key:
            launch.pool = self.pool
            return True
        self.close()
        return False

    def close(self) -> None:
        """Ends the workers (none is left behind) and removes their folder."""
        import shutil

        self.pool.close(grace=1.0)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self.pool.workers.values()]


def _warm_key(placement: Placement, ref: ObjectiveRef | None) -> tuple[Any, ...]:
    """What a pool's workers are: where they run (backend, devices, workers per device) and what they built."""
    return (placement.backend, placement.devices, placement.workers, ref)


_warm_count = 0


def prewarm(
    preset_ref: str, *, db: str | os.PathLike[str] | Store | None = None, seed: int = 0, data_dir: str | None = None,
    placement: Mapping[str, Any] | None = None,
) -> WarmPool | None:
    """Starts the workers a new session of ``preset_ref`` would start (``new_run``'s arguments), before it
    exists; None where nothing is worth starting early: the user's own objective (its import is its own
    business, done when the session starts), a dataset not downloaded yet (Start downloads it), training
    in this process, or Ray."""
    global _warm_count
    from tuitune.core.store.files import files_dir
    from tuitune.core.store.safefs import secure_dir
    from tuitune.training.catalog import on_disk
    from tuitune.training.presets import load_preset

    preset = load_preset(preset_ref)
    where = _new_placement(preset, placement)
    if preset.objective is not None or where.in_process or where.backend != "local":
        return None
    if not on_disk(preset.data, data_dir):
        return None  # a worker's start would download it: never behind the user's back, only once Start is pressed
    ref = _objective_ref(preset, data_dir, seed, where.fuse)
    _warm_count += 1
    logs = secure_dir(files_dir(_db_path(db)), "logs", f".warm-{os.getpid()}-{_warm_count}")
    pool = where.pool(None, logs, ref=ref)  # type: ignore[arg-type] # the ref says how the workers build it
    pool.start(logs)
    return WarmPool(_warm_key(where, ref), pool, logs)


def _device(placement: Placement) -> str:
    """The device the coordinator's own copy of a preset's objective is built for (its first)."""
    return placement.devices[0] if placement.devices else "cpu"


def _budget_flags(budget: Mapping[str, Any] | None) -> Budget:
    """The budget given on the command line (or the new-session form), checked with the flags' names."""
    b = dict(budget or {})
    return Budget.make(b.get("time"), b.get("total_epochs"), b.get("target"),
                       keys=("--time", "--total-epochs", "--target"))


def _fuse_key(preset: Any) -> Callable[[dict], Any] | None:
    """Which of a preset's configs may train as one array: the training layer's answer (issue 20), else none."""
    from tuitune.training import objective as training

    make = getattr(training, "fuse_key_of", None)
    return make(preset.to_dict()) if make is not None else None


def check_not_running(store: Store, name: str) -> None:
    """Raises the session lock's SessionLockedError (naming its owner) when another process runs ``name``."""
    from tuitune.core.store.lock import SessionLock

    SessionLock(store.path, name).acquire().release()


# What makes `run --session NAME` the same session as the stored one (open_session compares them): the
# search. Where trials run (devices, workers, backend) and the trial budget may change on a resume.
SAME_SETTINGS = "strategy and its options, search space, preset, metric, seed and epochs"


def _resuming_note(before: SessionRecord, after: SessionRecord, launch: Launch, trials: int | None) -> str:
    """'session NAME exists with the same settings (...): resuming it; trial budget 40 -> 80; 2 workers (was 1)'."""
    out = [f"session '{after.name}' exists with the same settings ({SAME_SETTINGS}): resuming it"]
    if after.n_trials != before.n_trials:
        out.append(f"trial budget raised from {before.n_trials} to {after.n_trials}")
    elif trials is not None and before.n_trials is not None and trials < before.n_trials:
        out.append(f"its trial budget stays {before.n_trials} (--trials is the total; it is not lowered)")
    was, now = Placement.from_info(before.info), launch.placement
    if now.devices != was.devices and was.devices:
        out.append(f"devices {','.join(now.devices or [])} (were {','.join(was.devices)})")
    if now.workers != was.workers and was.workers is not None:
        out.append(f"{now.workers} worker{'s' * (now.workers != 1)} per device (was {was.workers})")
    if now.backend != was.backend:
        out.append(f"backend {now.backend} (was {was.backend})")
    return "; ".join(out)


def _check_data_dir(data_dir: str | None) -> None:
    """A ``--data-dir`` that is a folder is used as it is (read-only is fine for datasets already there);
    one that does not exist yet must be creatable, for the downloads."""
    if data_dir is None or Path(data_dir).expanduser().is_dir():
        return
    from tuitune.core.store.fs import why_not_writable

    why = why_not_writable(data_dir, folder=True)
    if why:
        raise PresetError(f"--data-dir {data_dir}: cannot create it: {why}; give a writable folder")


def _fuse_notes(launch: Launch, preset: Any) -> list[str]:
    """A line when arrays were asked for but the preset's objective cannot train them (one trial at a time)."""
    if launch.placement.fuse == 1 or launch.fuse_key is not None or getattr(launch.objective, "fuse_key", None):
        return []
    return [f"--fuse {launch.placement.fuse}: {preset.objective} has no fuse_key and train_array, so its trials "
            "train one at a time (arrays are the built-in trainer's, or an objective's that has both)"]


def _fuse_asked(placement: Mapping[str, Any] | None) -> dict[str, Any]:
    """The asked placement; training in this process (``--in-process``) turns arrays off unless --fuse is given."""
    asked = dict(placement or {})
    if asked.get("workers") == 0 and asked.get("fuse") is None:
        asked["fuse"] = 1
    return asked


def _default_fuse(preset: Any, asked: Mapping[str, Any]) -> int | str:
    """The array size when neither --fuse nor the preset gives one: DEFAULT_FUSE for the built-in trainer on
    the local backend, else 1 (the user's own objective keeps one trial per worker)."""
    local = (asked.get("backend") or preset.backend or "local") == "local"
    return DEFAULT_FUSE if preset.objective is None and local else 1


def _objective_ref(preset: Any, data_dir: str | None, seed: int, fuse: int | str = 1) -> ObjectiveRef:
    kwargs: dict[str, Any] = {"data_dir": data_dir, "seed": seed}
    if fuse == "auto":
        kwargs["fuse"] = "auto"  # each worker measures its device's step and says its array size
    return ObjectiveRef(
        factory=build_objective, args=(preset.to_dict(),), kwargs=kwargs,
        device_kw="device", label=f"preset {preset.name}" + (f" ({preset.objective})" if preset.objective else ""),
    )


def resume_run(
    name: str,
    *,
    db: str | os.PathLike[str] | Store | None = None,
    more_trials: int | None = None,
    trials: int | None = None,
    data_dir: str | None = None,
    sets: Sequence[str] = (),
    base: str | int | None = None,
    placement: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
) -> Launch:
    """The stored session ``name``, ready to continue with its own strategy, budget and seed.

    Its placement is the stored one, with the values in ``placement`` (as for ``new_run``) over it.

    ``trials`` sets its trial budget (the total, as ``run --trials`` and ``tt.tune(trials=)``); ``more_trials``
    extends it by that many (``--more``). For a manual session ``sets`` is the next change.
    ``budget`` (``time``, ``total_epochs``, ``target``): each one given replaces the stored one.
    """
    from tuitune.training.presets import Preset

    store = open_store(db)
    rec = store.session(name)
    check_not_running(store, name)  # refused before anything is said or changed
    preset = Preset.from_dict(rec.preset) if rec.preset else None
    if preset is None:
        raise PresetError(
            f"session '{name}' was run from Python code (tt.tune), not from a preset; resume it the same way"
        )
    notes = []
    updates: dict[str, Any] = {}
    n_trials = _trial_budget(store, rec, trials, more_trials)
    if n_trials is not None and n_trials != rec.n_trials:
        updates["n_trials"] = n_trials
        was = "" if rec.n_trials is None else f" from {rec.n_trials}"
        notes.append(f"trial budget {'raised' if (rec.n_trials or 0) < n_trials else 'set'}{was} to {n_trials}")
        rec = dataclasses.replace(rec, n_trials=n_trials)
    given = _budget_flags(budget)
    if given:
        merged = Budget.of(rec).merged(given)
        merged.check_epochs(rec.max_epochs, "--total-epochs")
        rec = dataclasses.replace(rec, info={**rec.info, "budget": merged.to_dict()})
        updates["info"] = rec.info
        notes.append(f"budget now {merged.describe()}")
    overrides: dict[str, Any] = {}
    if sets:
        if rec.strategy != "manual":
            raise PresetError(
                f"--set on resume is for manual sessions; session '{name}' uses {rec.strategy}. "
                "Start a new session to fix a parameter"
            )
        overrides.update(_manual_options(parse_sets(preset, sets), base, resume_command(name, store.path, "--set", "KEY=VALUE")))
    strat = strategy_for(rec, **overrides)
    where = Placement.parse(**_fuse_asked(placement), stored=Placement.from_info(rec.info), best_device=True, cli=True)
    if rec.info.get("placement") != where.to_info()["placement"]:
        updates["info"] = {**rec.info, **where.to_info()}
    _check_data_dir(data_dir)
    data_dir = data_dir or rec.info.get("data_dir")
    objective = _objective(preset, where, data_dir, rec.seed)
    if sets:
        strat.restore(store.trials(name))
        strat.plan(*_one_change(overrides))
    launch = Launch(
        store, name, strat, objective, rec, resumed=True, notes=notes, updates=updates, placement=where,
        objective_ref=_objective_ref(preset, data_dir, rec.seed, where.fuse), fuse_key=_fuse_key(preset),
    )
    launch.notes += _fuse_notes(launch, preset)
    return launch


def _trial_budget(store: Store, rec: SessionRecord, trials: int | None, more: int | None) -> int | None:
    """The trial budget a resume asks for: ``trials`` is the total, ``more`` adds to it; None: unchanged."""
    if trials is not None and more:
        raise PresetError("give --trials N (the total) or --more N (that many more), not both")
    if trials is None and not more:
        return None
    created = len(store.trials(rec.name, with_epochs=False))
    if more:
        return max(rec.n_trials if rec.n_trials is not None else created, created) + more
    assert trials is not None
    if trials < created:
        raise PresetError(
            f"--trials {trials} is the session's total and '{rec.name}' has {created} trials already; "
            f"give {created + 1} or more, or --more N for N more"
        )
    return trials


def _one_change(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    req = overrides["changes"][0]
    return req.get("change", {}), req.get("base")

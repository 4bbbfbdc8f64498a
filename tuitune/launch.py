"""Provides the starting of sessions from presets: new runs and resumes, shared by the CLI and the TUI.

It turns what a user typed (a preset, a strategy, ``--set KEY=VALUE``) into a stored session, its
strategy and its objective, ready for a Runner.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.api import check_session_name, new_session_name, open_session, open_store, strategy_for
from tuitune.core.errors import ManualError, PresetError, SetupError
from tuitune.core.placement import DEFAULT_MAX_FAILURES, Placement  # noqa: F401 - the CLI's default
from tuitune.core.records import SessionRecord
from tuitune.core.runner import Runner, RunResult
from tuitune.core.store import Store, default_db_path, resume_command
from tuitune.core.strategies import make_strategy, strategy_class
from tuitune.core.strategies.base import Strategy
from tuitune.core.workers import ObjectiveRef
from tuitune.training.objective import build_objective

DEFAULT_TRIALS = 20  # random and bayes have no natural end; grid and Hyperband run their plan
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

    def runner(self, listeners: Iterable[Callable[[Any], None]] = (), **kw: Any) -> Runner:
        """The Runner of this launch, with its run limits (the one place a Runner is configured)."""
        updates = dict(self.updates)

        def apply() -> None:
            if updates:
                self.store.update_session(self.name, **updates)

        return self.placement.runner(
            self.store, self.name, self.objective, self.strategy, ref=self.objective_ref, fuse_key=self.fuse_key,
            listeners=listeners, on_locked=apply, **kw,
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
                    self.store.delete_session(self.name)
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


def _objective(preset: Any, device: str | None, data_dir: str | None, seed: int) -> Callable[..., Any]:
    from tuitune.training.objective import load_objective

    return load_objective(preset, device=device, data_dir=data_dir, seed=seed)


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
) -> Launch:
    """A new session of a preset (or, when the name exists with the very same settings, its resume).

    ``placement``: the values of ``Placement.parse`` that were asked for (``{"devices": "cpu", "workers": 2}``);
    the rest are the preset's (its ``backend``) or the defaults. The placement is stored with the session
    for its resumes.
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
    if trials is None and strategy in ("random", "bayes"):
        trials = DEFAULT_TRIALS
    max_epochs = max_epochs or preset.max_epochs
    if session:
        check_session_name(session)
    strat = make_strategy(
        strategy, space, seed=seed, max_epochs=max_epochs, metric=preset.metric, direction=preset.direction,
        n_trials=trials, defaults=defaults, **options,
    )
    # Everything a user can get wrong is checked before the database is touched.
    asked = _fuse_asked(placement)
    fuse = asked.pop("fuse", None) or (preset.fuse if preset.fuse is not None else _default_fuse(preset, asked))
    where = Placement.parse(**asked, fuse=fuse, stored=Placement(backend=preset.backend or "local"),
                            best_device=True, cli=True)
    objective = _objective(preset, _device(where), data_dir, seed)
    if strategy == "manual":
        strat.plan(values, base)
    store = open_store(db)
    name = session or new_session_name(store)
    rec, existed = open_session(
        store, name, strategy=strategy, space=space, metric=preset.metric, direction=preset.direction, seed=seed,
        max_epochs=max_epochs, trials=trials, options=strat.options(), preset=preset.to_dict(), defaults=defaults,
        info={"data_dir": data_dir, **where.to_info()},
    )
    if existed:
        launch = resume_run(
            name, db=store, data_dir=data_dir, sets=sets if strategy == "manual" else (), base=base, placement=placement,
        )
        launch.notes.append(f"session '{name}' exists with the same settings: resuming it")
        return launch
    launch = Launch(
        store, name, strat, objective, rec, placement=where,
        objective_ref=_objective_ref(preset, data_dir, seed, where.fuse), fuse_key=_fuse_key(preset),
    )
    launch.notes += _fuse_notes(launch, preset)
    return launch


def _device(placement: Placement) -> str:
    """The device the coordinator's own copy of a preset's objective is built for (its first)."""
    return placement.devices[0] if placement.devices else "cpu"


def _fuse_key(preset: Any) -> Callable[[dict], Any] | None:
    """Which of a preset's configs may train as one array: the training layer's answer (issue 20), else none."""
    from tuitune.training import objective as training

    make = getattr(training, "fuse_key_of", None)
    return make(preset.to_dict()) if make is not None else None


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
    data_dir: str | None = None,
    sets: Sequence[str] = (),
    base: str | int | None = None,
    placement: Mapping[str, Any] | None = None,
) -> Launch:
    """The stored session ``name``, ready to continue with its own strategy, budget and seed.

    Its placement is the stored one, with the values in ``placement`` (as for ``new_run``) over it.

    ``more_trials`` extends its trial budget by that many; for a manual session ``sets`` is the next change.
    """
    from tuitune.training.presets import Preset

    store = open_store(db)
    rec = store.session(name)
    preset = Preset.from_dict(rec.preset) if rec.preset else None
    if preset is None:
        raise PresetError(
            f"session '{name}' was run from Python code (tt.tune), not from a preset; resume it the same way"
        )
    notes = []
    updates: dict[str, Any] = {}
    if more_trials:
        done = len(store.trials(name, with_epochs=False))
        base_n = rec.n_trials if rec.n_trials is not None else done
        updates["n_trials"] = max(base_n, done) + more_trials
        notes.append(f"trial budget raised to {updates['n_trials']}")
        rec = dataclasses.replace(rec, n_trials=updates["n_trials"])
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
    data_dir = data_dir or rec.info.get("data_dir")
    objective = _objective(preset, _device(where), data_dir, rec.seed)
    if sets:
        strat.restore(store.trials(name))
        strat.plan(*_one_change(overrides))
    launch = Launch(
        store, name, strat, objective, rec, resumed=True, notes=notes, updates=updates, placement=where,
        objective_ref=_objective_ref(preset, data_dir, rec.seed, where.fuse), fuse_key=_fuse_key(preset),
    )
    launch.notes += _fuse_notes(launch, preset)
    return launch


def _one_change(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    req = overrides["changes"][0]
    return req.get("change", {}), req.get("base")

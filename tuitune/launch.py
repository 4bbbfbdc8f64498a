"""Provides the starting of sessions from presets: new runs and resumes, shared by the CLI and the TUI.

It turns what a user typed (a preset, a strategy, ``--set KEY=VALUE``) into a stored session, its
strategy and its objective, ready for a Runner.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.api import check_session_name, new_session_name, open_session, open_store, strategy_for
from tuitune.core.errors import ManualError, PresetError, SetupError
from tuitune.core.records import SessionRecord
from tuitune.core.runner import Runner, RunResult
from tuitune.core.store import Store, default_db_path, resume_command
from tuitune.core.strategies import make_strategy, strategy_class
from tuitune.core.strategies.base import Strategy
from tuitune.core.workers import ObjectiveRef, WorkerPool, plan_slots
from tuitune.training.objective import build_objective

DEFAULT_TRIALS = 20  # random and bayes have no natural end; grid and Hyperband run their plan
DEFAULT_MAX_FAILURES = 3


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
    max_failures: int = DEFAULT_MAX_FAILURES  # the run stops after this many failed trials in a row
    trial_timeout: float | None = None  # seconds one trial may run; None: no limit
    objective_ref: ObjectiveRef | None = None  # how a worker process loads the objective
    devices: list[str] | None = None  # one entry per device; None: not pinned
    workers: int = 1  # worker processes per device; 0: the objective runs in the runner's thread
    backend: str = "local"  # "ray": one Ray actor per worker (``workers`` of them), on a cluster
    ray_address: str | None = None  # None: a local Ray instance for the run
    gpus_per_trial: float | None = None  # None: 1 when the Ray cluster has GPUs, else 0

    def runner(self, listeners: Iterable[Callable[[Any], None]] = (), **kw: Any) -> Runner:
        """The Runner of this launch, with its run limits (the one place a Runner is configured)."""
        updates = dict(self.updates)

        def apply() -> None:
            if updates:
                self.store.update_session(self.name, **updates)

        pool: Any = None
        if self.backend == "ray" and self.objective_ref is not None:
            from tuitune.core.ray_backend import RayPool

            pool = RayPool(
                self.objective_ref, plan_slots(None, self.workers or 1), _logs(self.store, self.name),
                address=self.ray_address, gpus_per_trial=self.gpus_per_trial,
            )
        elif self.workers and self.objective_ref is not None:
            pool = WorkerPool(self.objective_ref, plan_slots(self.devices, self.workers), _logs(self.store, self.name))
        return Runner(
            self.store, self.name, self.objective, self.strategy, listeners=listeners, on_locked=apply, pool=pool,
            max_failures=self.max_failures, trial_timeout=self.trial_timeout, **kw,
        )

    @property
    def where(self) -> str:
        """Where the trials run, in words: '2 workers on cpu', 'in this process on cuda:0'."""
        devs = ", ".join(self.devices or ["the best device"])
        if self.backend == "ray":
            n = self.workers or 1
            at = f"the Ray cluster at {self.ray_address}" if self.ray_address else "a local Ray instance (127.0.0.1)"
            return f"{n} Ray actor{'s' * (n != 1)} on {at}"
        if not self.workers or self.objective_ref is None:
            return f"in this process on {devs}"
        n = self.workers * max(1, len(self.devices or []))
        return f"{n} worker{'s' * (n != 1)} on {devs}"

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


def _logs(store: Store, name: str) -> Any:
    from tuitune.core.store import files_dir

    return files_dir(store.path) / "logs" / name


def resolve_devices(spec: str | Sequence[str] | None, *, flag: str = "--devices") -> list[str]:
    """``"cuda:0,cuda:1"``, ``"all"`` (every visible GPU), ``"cpu"``, a list, or None (the best device).

    Each device is checked here, so a typo or a missing GPU is one clear line before anything runs.
    """
    # Where the answer is the CPU, it is given without torch (seconds to import; a worker imports it when
    # its objective trains): the coordinator of a run needs it for nothing else.
    if spec is None and not _gpu_possible():
        return ["cpu"]
    if spec == "cpu" or (isinstance(spec, Sequence) and not isinstance(spec, str) and list(spec) == ["cpu"]):
        return ["cpu"]
    from tuitune.training.devices import DeviceError, resolve_device

    if spec is None:
        return [_name(resolve_device(None))]
    items = [x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x and x.strip()]
    if not items:
        raise DeviceError("--devices is empty; give cpu, cuda:0,cuda:1 or all")
    if items == ["all"]:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise DeviceError(
                f"--devices all: no GPU is visible here (torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}); "
                "use --devices cpu"
            )
        return [f"cuda:{i}" for i in range(n)]
    out = [_name(resolve_device(x, flag=flag)) for x in items]
    dup = sorted({d for d in out if out.count(d) > 1})
    if dup:
        raise DeviceError(f"--devices names {dup[0]} twice; for several workers on one device use --workers N")
    return out


def _gpu_possible() -> bool:
    """False only where no GPU can be: Linux without the device files of NVIDIA's or AMD's drivers (or
    WSL's GPU bridge). Elsewhere (macOS: MPS, Windows) only torch can tell."""
    if not sys.platform.startswith("linux"):
        return True
    dev = Path("/dev")
    return any(dev.glob("nvidia[0-9]*")) or (dev / "kfd").exists() or (dev / "dxg").exists()


def _name(dev: Any) -> str:
    return f"{dev.type}:{dev.index}" if dev.type == "cuda" and dev.index is not None else dev.type


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
    device: str | None = None,
    data_dir: str | None = None,
    sets: Sequence[str] = (),
    base: str | int | None = None,
    options: Mapping[str, Any] | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    trial_timeout: float | None = None,
    workers: int | None = None,
    devices: str | Sequence[str] | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
    gpus_per_trial: float | None = None,
) -> Launch:
    """A new session of a preset (or, when the name exists with the very same settings, its resume).

    ``devices`` (``--devices``; ``device`` is its one-device form) and ``workers`` per device (0: in
    this process) say where trials run; they are stored with the session for its resumes.
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
    devs = resolve_devices(devices if devices is not None else device, flag="--devices" if devices is not None else "--device")
    n_workers = _check_workers(workers)
    where = _check_backend(backend or preset.backend or "local", n_workers, ray_address, gpus_per_trial)
    _check_data_dir(data_dir)
    objective = _objective(preset, devs[0], data_dir, seed)
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
        max_epochs=max_epochs, trials=trials, options=strat.options(), preset=preset.to_dict(), defaults=defaults,
        info={"device": devs[0], "devices": devs, "workers": n_workers, "data_dir": data_dir, **where},
        given_options=set(options),
    )
    if existed:
        launch = resume_run(
            name, db=store, device=device, data_dir=data_dir, sets=sets if strategy == "manual" else (), base=base,
            max_failures=max_failures, trial_timeout=trial_timeout, workers=workers, devices=devices,
            backend=backend, ray_address=ray_address, gpus_per_trial=gpus_per_trial,
        )
        launch.notes.insert(0, _resuming_note(before or rec, rec, launch, trials))
        return launch
    return Launch(
        store, name, strat, objective, rec, objective_ref=_objective_ref(preset, data_dir, seed),
        devices=devs, workers=n_workers, max_failures=max_failures, trial_timeout=trial_timeout, **where,
    )


def check_not_running(store: Store, name: str) -> None:
    """Raises the session lock's SessionLockedError (naming its owner) when another process runs ``name``."""
    from tuitune.core.lock import SessionLock

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
    was = before.info
    if launch.devices != was.get("devices") and was.get("devices"):
        out.append(f"devices {','.join(launch.devices or [])} (were {','.join(was['devices'])})")
    if launch.workers != was.get("workers") and was.get("workers") is not None:
        out.append(f"{launch.workers} worker{'s' * (launch.workers != 1)} per device (was {was['workers']})")
    if launch.backend != (was.get("backend") or "local"):
        out.append(f"backend {launch.backend} (was {was.get('backend') or 'local'})")
    return "; ".join(out)


def _check_backend(backend: str, workers: int, address: str | None, gpus: float | None) -> dict[str, Any]:
    """Where trials run, checked: ``backend`` (and for Ray its address and GPUs per trial), as stored in info."""
    from tuitune.core.workers import BACKENDS

    if backend not in BACKENDS:
        raise PresetError(f"--backend {backend!r}: use {' or '.join(BACKENDS)}")
    if backend == "local":
        if address is not None or gpus is not None:
            raise PresetError("--ray-address and --gpus-per-trial are options of --backend ray")
        return {"backend": "local"}
    from tuitune.core.ray_backend import check_address, check_gpus

    if workers == 0:
        raise PresetError("--backend ray runs trials in Ray actors: --workers 0 (--in-process) is for --backend local")
    return {"backend": "ray", "ray_address": check_address(address), "gpus_per_trial": check_gpus(gpus)}


def _check_data_dir(data_dir: str | None) -> None:
    """A ``--data-dir`` that is a folder is used as it is (read-only is fine for datasets already there);
    one that does not exist yet must be creatable, for the downloads."""
    if data_dir is None or Path(data_dir).expanduser().is_dir():
        return
    from tuitune.core.fs import why_not_writable

    why = why_not_writable(data_dir, folder=True)
    if why:
        raise PresetError(f"--data-dir {data_dir}: cannot create it: {why}; give a writable folder")


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise PresetError(f"--workers {workers!r}: give a whole number >= 1 (or 0 to train in this process)")
    if workers:
        plan_slots(None, workers)  # the sanity limit, with its message
    return workers


def _objective_ref(preset: Any, data_dir: str | None, seed: int) -> ObjectiveRef:
    return ObjectiveRef(
        factory=build_objective, args=(preset.to_dict(),), kwargs={"data_dir": data_dir, "seed": seed},
        device_kw="device", label=f"preset {preset.name}" + (f" ({preset.objective})" if preset.objective else ""),
    )


def resume_run(
    name: str,
    *,
    db: str | os.PathLike[str] | Store | None = None,
    more_trials: int | None = None,
    trials: int | None = None,
    device: str | None = None,
    data_dir: str | None = None,
    sets: Sequence[str] = (),
    base: str | int | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    trial_timeout: float | None = None,
    workers: int | None = None,
    devices: str | Sequence[str] | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
    gpus_per_trial: float | None = None,
) -> Launch:
    """The stored session ``name``, ready to continue with its own strategy, budget and seed.

    Its devices and workers are the stored ones unless ``devices``/``device``/``workers`` are given.

    ``trials`` sets its trial budget (the total, as ``run --trials`` and ``tt.tune(trials=)``); ``more_trials``
    extends it by that many (``--more``). For a manual session ``sets`` is the next change.
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
    overrides: dict[str, Any] = {}
    if sets:
        if rec.strategy != "manual":
            raise PresetError(
                f"--set on resume is for manual sessions; session '{name}' uses {rec.strategy}. "
                "Start a new session to fix a parameter"
            )
        overrides.update(_manual_options(parse_sets(preset, sets), base, resume_command(name, store.path, "--set", "KEY=VALUE")))
    strat = strategy_for(rec, **overrides)
    spec = devices if devices is not None else device
    flag = "--devices" if devices is not None or device is None else "--device"
    if spec is None:
        spec = rec.info.get("devices") or rec.info.get("device")
    devs = resolve_devices(spec, flag=flag)
    n_workers = _check_workers(workers if workers is not None else rec.info.get("workers"))
    backend = backend or rec.info.get("backend") or "local"
    if backend == "ray" and backend == rec.info.get("backend"):  # the stored cluster, unless another is given
        ray_address = ray_address if ray_address is not None else rec.info.get("ray_address")
        gpus_per_trial = gpus_per_trial if gpus_per_trial is not None else rec.info.get("gpus_per_trial")
    where = _check_backend(backend, n_workers, ray_address, gpus_per_trial)
    if (devs != rec.info.get("devices") or n_workers != rec.info.get("workers")
            or any(rec.info.get(k) != v for k, v in where.items())):
        updates["info"] = {**rec.info, "device": devs[0], "devices": devs, "workers": n_workers, **where}
    _check_data_dir(data_dir)
    data_dir = data_dir or rec.info.get("data_dir")
    objective = _objective(preset, devs[0], data_dir, rec.seed)
    if sets:
        strat.restore(store.trials(name))
        strat.plan(*_one_change(overrides))
    return Launch(
        store, name, strat, objective, rec, resumed=True, notes=notes, updates=updates,
        max_failures=max_failures, trial_timeout=trial_timeout,
        objective_ref=_objective_ref(preset, data_dir, rec.seed), devices=devs, workers=n_workers, **where,
    )


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

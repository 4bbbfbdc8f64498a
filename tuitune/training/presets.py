"""Provides preset loading: TOML files that name a search space and the data, model or code it tunes.

A preset either describes the built-in trainer (``[data]`` and ``[model]``) or names the user's own
objective (``objective = "package.module:function"``). Everything is validated when the file is loaded,
before any trial runs; each ``PresetError`` names the file and the key. Importing this module does not
import torch: the command line lists presets without paying for it.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import PresetError, SpaceError, TuituneError
from tuitune.core.records import Objectives
from tuitune.core.run.placement import check_workers
from tuitune.core.search.space import Choice, Fixed, Float, Int, Param, Space, param_from_dict
from tuitune.core.text import did_you_mean
from tuitune.training.catalog import (  # noqa: F401 - re-exported: presets are validated against the catalog
    _ALL,
    _DATA_KEYS,
    _DATA_ONLY,
    _MODEL_KEYS,
    _TOP_KEYS,
    ACTIVATIONS,
    DATASETS,
    DIRECTIONS,
    INITS,
    METRICS_BUILTIN,
    MODEL_KINDS,
    OPTIMIZERS,
    SCHEDULES,
    TRAINER_PARAMS,
    DatasetInfo,
    TrainerParam,
    trainer_params,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

def _preset_dir() -> Path:
    """The bundled presets: the repository's top-level ``presets/`` folder, which a wheel (and an editable
    install) ships as the data-only package ``tuitune.presets`` (pyproject's package-dir)."""
    source = Path(__file__).resolve().parent.parent.parent / "presets"  # a source checkout on the path
    if (source / "digits-mlp.toml").is_file():
        return source
    from importlib.util import find_spec

    spec = find_spec("tuitune.presets")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location).resolve()
    return source


PRESET_DIR = _preset_dir()

@dataclass
class Preset:
    """A loaded, validated preset.

    Attributes:
        name, description: as in the file.
        metric, direction: what trials are ranked by (the first objective when there are several).
        objectives: ``[[metric, direction], ...]`` when ``metric`` and ``direction`` are lists in the file.
        constraints: ``["params <= 1e6", ...]``: the file's ``constraints``.
        max_epochs: a trial's epoch budget (the learning-rate schedules span it).
        space: every parameter: the searched ones from ``[space]``, the others ``Fixed`` at their default.
        defaults: a full config (every parameter of the space), where manual mode starts.
        data, model: the ``[data]`` and ``[model]`` tables, completed with their defaults (built-in trainer).
        objective: ``"package.module:function"`` for the user's own code, ``{"command": "python train.py
            --lr {lr}", "shell": False}`` for a script run as it is (``tt.Command``), else None.
        path: the file it was loaded from.
    """

    name: str
    description: str
    metric: str
    direction: str
    max_epochs: int
    space: Space
    defaults: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    objective: str | dict[str, Any] | None = None
    path: str = ""
    backend: str | None = None  # where trials run by default: "local" or "ray" (--backend overrides it)
    fuse: int | str | None = None  # trials per fused array by default: N, "auto" (1: off; --fuse overrides it)
    workers: int | str | None = None  # workers per device by default: N or "auto" (--workers overrides it)
    # [strategy.NAME] tables: a strategy's options when the session runs that strategy (flags override them)
    strategy: dict[str, dict[str, Any]] = field(default_factory=dict)
    # time, total_epochs, target: the session's budget by default (Budget.to_dict; flags override them)
    budget: dict[str, Any] = field(default_factory=dict)
    objectives: list[list[str]] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)

    def goal_options(self) -> dict[str, Any]:
        """The session options its several objectives and constraints add (records.Objectives.to_options)."""
        out: dict[str, Any] = {}
        if self.objectives:
            out["objectives"] = [list(p) for p in self.objectives]
        if self.constraints:
            out["constraints"] = list(self.constraints)
        return out

    @property
    def objective_label(self) -> str:
        """What runs the trials, in words: ``pkg.mod:fn``, ``command python train.py ...``, or ""."""
        if isinstance(self.objective, dict):
            cmd = self.objective["command"]
            return "command " + (cmd if isinstance(cmd, str) else shlex.join(cmd))
        return self.objective or ""

    @property
    def bundled(self) -> bool:
        return Path(self.path).resolve().parent == PRESET_DIR

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, stored with the session so it resumes without the file."""
        return {
            "name": self.name,
            "description": self.description,
            "metric": self.metric,
            "direction": self.direction,
            "max_epochs": self.max_epochs,
            "space": self.space.to_dict(),
            "defaults": dict(self.defaults),
            "data": dict(self.data),
            "model": dict(self.model),
            "objective": dict(self.objective) if isinstance(self.objective, dict) else self.objective,
            "path": self.path,
            **({"backend": self.backend} if self.backend is not None else {}),
            **({"fuse": self.fuse} if self.fuse is not None else {}),
            **({"workers": self.workers} if self.workers is not None else {}),
            **({"strategy": {k: dict(v) for k, v in self.strategy.items()}} if self.strategy else {}),
            **({"budget": dict(self.budget)} if self.budget else {}),
            **self.goal_options(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preset:
        """A preset read back from a database: what runs as code is checked again, as when it was typed."""
        objective, path = d.get("objective"), d.get("path", "")
        if objective is not None and not isinstance(objective, (str, dict)):
            raise PresetError(
                f"stored preset: objective {objective!r} is not a string like \"package.module:function\" "
                "nor a command table; the database was altered"
            )
        if isinstance(objective, str):
            _check_objective_path(_Err(Path(str(path) or "stored preset")), objective)
        if not isinstance(path, str) or "\0" in path or (path and not os.path.isabs(path)):
            raise PresetError(f"stored preset: path {path!r} is not an absolute file path; the database was altered")
        try:
            space = Space.from_dict(d["space"])
            if isinstance(objective, dict):  # a command table: checked again as when it was typed
                objective = _check_command(_Err(Path(str(path) or "stored preset")), objective, space)
            return cls(
                name=d["name"],
                description=d.get("description", ""),
                metric=d["metric"],
                direction=d["direction"],
                max_epochs=int(d["max_epochs"]),
                space=space,
                defaults=dict(d["defaults"]),
                data=dict(d.get("data") or {}),
                model=dict(d.get("model") or {}),
                objective=objective,
                path=d.get("path", ""),
                backend=d.get("backend"),
                fuse=d.get("fuse"),
                workers=d.get("workers"),
                strategy={k: dict(v) for k, v in (d.get("strategy") or {}).items()},
                budget=dict(d.get("budget") or {}),
                objectives=[list(p) for p in d.get("objectives") or []],
                constraints=list(d.get("constraints") or []),
            )
        except (KeyError, TypeError, SpaceError) as e:
            raise PresetError(f"stored preset is incomplete or damaged ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------------- loading


def list_presets() -> list[Preset]:
    """The bundled presets, sorted by name."""
    return [load_preset(str(p)) for p in sorted(PRESET_DIR.glob("*.toml"), key=lambda p: p.stem)]


def bundled_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> Preset:
    """Loads and validates a bundled preset by name (``"digits-mlp"``) or a ``.toml`` file by path."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    looks_like_path = s.endswith(".toml") or os.sep in s or "/" in s
    if looks_like_path or (p.is_file() and not (PRESET_DIR / f"{s}.toml").is_file()):
        if not p.is_file():
            raise PresetError(f"{s}: no such preset file; check the path")
        return _load_file(p)
    bundled = PRESET_DIR / f"{s}.toml"
    if not bundled.is_file():
        raise PresetError(
            f"unknown preset {s!r}{did_you_mean(s, bundled_names())}; bundled presets: {', '.join(bundled_names())} "
            "(or give a path to a .toml file)"
        )
    return _load_file(bundled)


def _load_file(path: Path) -> Preset:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise PresetError(f"{path}: not valid TOML: its arrays or tables are nested too deeply; flatten them") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PresetError(f"{path}: cannot be read: {e}") from None
    return _validate(raw, path)


class _Err:
    """Builds messages that name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, key: str, what: str) -> PresetError:
        return PresetError(f"{self.path}: key '{key}': {what}")


def _type_name(v: Any) -> str:
    return {
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        str: "a string",
        dict: "a table",
        list: "an array",
    }.get(type(v), type(v).__name__)


def _want(err: _Err, key: str, v: Any, types: tuple[type, ...], what: str) -> Any:
    ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
    if not ok and float in types and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if not ok:
        raise err(key, f"expected {what}, got {_type_name(v)} ({v!r})")
    return v


def _validate(raw: dict[str, Any], path: Path) -> Preset:
    err = _Err(path)
    for k in raw:
        if k not in _TOP_KEYS:
            raise err(k, f"unknown key{did_you_mean(k, _TOP_KEYS)}; a preset has {', '.join(_TOP_KEYS)}")
    for k in ("name", "metric", "direction", "max_epochs"):
        if k not in raw:
            raise err(k, "missing; every preset needs name, metric, direction and max_epochs")
    name = _want(err, "name", raw["name"], (str,), "a string")
    if not name.strip():
        raise err("name", "is empty")
    description = _want(err, "description", raw.get("description", ""), (str,), "a string")
    metric_raw = _want(err, "metric", raw["metric"], (str, list), "a string or a list of strings")
    direction_raw = _want(err, "direction", raw["direction"], (str, list), "a string or a list of strings")
    if isinstance(direction_raw, str) and direction_raw not in DIRECTIONS:
        raise err("direction", f"{direction_raw!r} is not minimize or maximize")
    try:
        goal = Objectives.build(metric_raw, direction_raw, raw.get("constraints"))
    except ValueError as e:
        key = next((k for k in ("direction", "constraint", "metric") if str(e).startswith(k)), "metric")
        raise err("constraints" if key == "constraint" else key, str(e)) from None
    metric, direction = goal.metrics[0], goal.directions[0]
    max_epochs = _want(err, "max_epochs", raw["max_epochs"], (int,), "a whole number")
    if max_epochs < 1:
        raise err("max_epochs", f"must be >= 1, got {max_epochs}")
    defaults_raw = _want(err, "defaults", raw.get("defaults", {}), (dict,), "a table [defaults]")
    space_raw = _want(err, "space", raw.get("space", {}), (dict,), "a table [space]")
    objective = raw.get("objective")
    backend = raw.get("backend")
    if backend is not None:
        from tuitune.core.run.workers import BACKENDS

        _want(err, "backend", backend, (str,), "a string")
        if backend not in BACKENDS:
            raise err("backend", f"{backend!r} is not {' or '.join(BACKENDS)}")
    fuse = raw.get("fuse")
    if fuse is not None:
        from tuitune.training.fusing import parse_fuse

        try:
            fuse = parse_fuse(fuse, where="fuse")
        except ValueError as e:
            raise err("fuse", str(e).partition(": ")[2]) from None

    workers = raw.get("workers")
    try:
        workers = check_workers(workers)  # None stays None
    except TuituneError as e:
        raise err("workers", f"{workers!r} is not a worker count; " + str(e).partition(": ")[2]) from None
    if objective is not None:
        _want(err, "objective", objective, (str, dict),
              'a string like "package.module:function" or a table like { command = "python train.py --lr {lr}" }')
        for k in ("data", "model"):
            if k in raw:
                raise err(
                    k, "a preset with objective = ... runs your code; drop [data] and [model] (or drop objective)"
                )
        if not isinstance(objective, dict):
            _check_objective_path(err, objective)
        data: dict[str, Any] = {}
        model: dict[str, Any] = {}
        known: dict[str, TrainerParam] | None = None
    else:
        for k in ("data", "model"):
            if k not in raw:
                raise err(
                    k, 'missing; give [data] and [model] for the built-in trainer, or objective = "module:function"'
                )
        for m in goal.metrics:
            if m not in METRICS_BUILTIN:
                raise err(
                    "metric", f"{m!r} is not reported by the built-in trainer; use one of {', '.join(METRICS_BUILTIN)}"
                )
        data = _validate_data(err, _want(err, "data", raw["data"], (dict,), "a table [data]"), path)
        model = _validate_model(err, _want(err, "model", raw["model"], (dict,), "a table [model]"))
        known = trainer_params(model["kind"])

    params: dict[str, Param] = {}
    for pname, d in space_raw.items():
        key = f"space.{pname}"
        if known is not None and pname not in known:
            raise err(
                key,
                f"the built-in trainer has no parameter {pname!r} for model {model['kind']!r}; "
                f"it knows {', '.join(known)}",
            )
        try:
            p = param_from_dict(pname, d)
        except SpaceError as e:
            raise err(key, str(e)) from None
        if known is not None:
            _check_space_against_trainer(err, key, p, known[pname])
        params[pname] = p

    defaults: dict[str, Any] = {}
    for pname, v in defaults_raw.items():
        key = f"defaults.{pname}"
        if known is not None:
            if pname not in known:
                raise err(
                    key,
                    f"the built-in trainer has no parameter {pname!r} for model {model['kind']!r}; "
                    f"it knows {', '.join(known)}",
                )
            tp = known[pname]
            v = _coerce_trainer_value(err, key, v, tp)
        elif not isinstance(v, (str, int, float, bool)) or (isinstance(v, float) and not math.isfinite(v)):
            raise err(key, f"expected a string, number or boolean, got {_type_name(v)} ({v!r})")
        defaults[pname] = v

    full: dict[str, Any] = {}
    if known is not None:
        info = DATASETS[data["dataset"]]
        for pname, tp in known.items():
            if pname in defaults:
                full[pname] = defaults[pname]
            elif pname == "image_size":
                full[pname] = info.size
            else:
                full[pname] = tp.default
    else:
        full = dict(defaults)
        for pname in params:
            if pname not in full:
                raise err(
                    f"defaults.{pname}",
                    "missing; every parameter in [space] needs a default (manual mode starts there)",
                )

    space_params: dict[str, Param] = {}
    for pname, v in full.items():
        p = params.get(pname)
        if p is None:
            space_params[pname] = Fixed(v)
            continue
        try:
            full[pname] = p.check(v)
        except SpaceError as e:
            src = f"defaults.{pname}" if pname in defaults else f"space.{pname}"
            hint = "" if pname in defaults else f" (the trainer's default {v!r}; give defaults.{pname})"
            raise err(src, f"the default {v!r} is outside the space{hint}: {e}") from None
        space_params[pname] = p
    # Searched parameters keep the order of [space]; fixed ones follow.
    ordered = {k: space_params[k] for k in params}
    ordered.update({k: v for k, v in space_params.items() if k not in ordered})
    try:
        space = Space(ordered)
    except SpaceError as e:  # a when condition the space refuses (names the entry), or a fixed value
        src = next((f"space.{k}" for k in params if str(e).startswith(f"parameter '{k}'")), "defaults")
        raise err(src, str(e)) from None
    if isinstance(objective, dict):
        objective = _check_command(err, objective, space)
    return Preset(
        name=name,
        description=description,
        metric=metric,
        direction=direction,
        max_epochs=max_epochs,
        space=space,
        defaults={k: full[k] for k in space},
        data=data,
        model=model,
        objective=objective,
        path=str(path.resolve()),
        objectives=goal.to_options().get("objectives", []),
        constraints=goal.to_options().get("constraints", []),
        backend=backend,
        fuse=fuse,
        workers=workers,
        strategy=_validate_strategy_options(err, raw.get("strategy", {})),
        budget=_validate_budget(err, raw, max_epochs),
    )


def _validate_budget(err: _Err, raw: dict[str, Any], max_epochs: int) -> dict[str, Any]:
    """The top-level ``time``, ``total_epochs`` and ``target`` keys, as a stored Budget."""
    from tuitune.core.budget import Budget, BudgetError

    try:
        budget = Budget.make(raw.get("time"), raw.get("total_epochs"), raw.get("target"), keys=("time", "total_epochs", "target"))
        budget.check_epochs(max_epochs)
    except BudgetError as e:
        key = next(k for k in ("time", "total_epochs", "target") if str(e).startswith(k))
        raise err(key, str(e).split(" ", 1)[1]) from None
    return budget.to_dict()


def _validate_strategy_options(err: _Err, raw: Any) -> dict[str, dict[str, Any]]:
    """``[strategy.NAME]`` tables: each names a strategy, and each key one of its options (core's STRATEGY_OPTIONS)
    with a value of the right kind; the strategy checks ranges when it is built."""
    from tuitune.core.search.strategies import STRATEGY_NAMES, STRATEGY_OPTIONS

    tables = _want(err, "strategy", raw, (dict,), "tables like [strategy.asha] holding a strategy's options")
    out: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        if name not in STRATEGY_NAMES:
            raise err(f"strategy.{name}", f"{name!r} is not a strategy; use one of {', '.join(STRATEGY_NAMES)}")
        table = _want(err, f"strategy.{name}", table, (dict,), f"a table [strategy.{name}] of its options")
        known = {o.name: o for o in STRATEGY_OPTIONS if name in o.strategies}
        for key, v in table.items():
            where = f"strategy.{name}.{key}"
            o = known.get(key)
            if o is None:
                opts = ", ".join(known) or "none"
                raise err(where, f"{name} has no option {key!r}; its options: {opts}")
            if o.choices:
                _want(err, where, v, (str,), "a string")
                if v not in o.choices:
                    raise err(where, f"{v!r} is not one of {', '.join(o.choices)}")
            else:
                _want(err, where, v, (int,), "a whole number")
                if o.positive and v < 1:
                    raise err(where, f"must be >= 1, got {v}")
        out[name] = dict(table)
    return out


def _check_command(err: _Err, table: dict[str, Any], space: Space) -> dict[str, Any]:
    """``objective = { command = "...", shell = false }``: a script run per trial (``tt.Command``), its
    ``{placeholders}`` each a parameter of the space (or trial, budget, checkpoint_dir)."""
    from tuitune.core.errors import ObjectiveError
    from tuitune.core.run.command import Command

    for k in table:
        if k not in ("command", "shell"):
            raise err(f"objective.{k}", "unknown key; objective = { command = \"...\", shell = false } has command and shell")
    if "command" not in table:
        raise err("objective.command", 'missing; give the script to run, like command = "python train.py --lr {lr}"')
    command = table["command"]
    if not (isinstance(command, str) or isinstance(command, list) and all(isinstance(a, str) for a in command)):
        raise err("objective.command", 'must be a string like "python train.py --lr {lr}" or a list of strings')
    shell = _want(err, "objective.shell", table.get("shell", False), (bool,), "true or false")
    if shell and not isinstance(command, str):
        raise err("objective.shell", "shell = true runs a string through /bin/sh; give command as one string")
    try:
        Command(command, shell=shell).check(list(space), where="objective.command")
    except ObjectiveError as e:
        msg = str(e).removeprefix("objective.command: ")
        raise err("objective.command", msg) from None
    return {"command": command, "shell": shell}


def _check_objective_path(err: _Err, objective: str) -> None:
    mod, sep, fn = objective.partition(":")
    if not sep or not mod or not fn or not all(part.isidentifier() for part in mod.split(".")) or not fn.isidentifier():
        raise err("objective", f'{objective!r} is not of the form "package.module:function"')


def _validate_data(err: _Err, d: dict[str, Any], path: Path) -> dict[str, Any]:
    if "dataset" not in d:
        raise err("data.dataset", f"missing; use one of {', '.join(DATASETS)}")
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"data.{k}"
        if k not in _DATA_KEYS:
            raise err(key, f"unknown key{did_you_mean(key, _DATA_KEYS)}; [data] has {', '.join(_DATA_KEYS)}")
        types, ok, what = _DATA_KEYS[k]
        v = _want(err, key, v, types, what)
        if not ok(v):
            if k == "dataset":
                raise err(key, f"dataset {v!r} does not exist; use one of {', '.join(DATASETS)}")
            raise err(key, f"{v!r} is not {what}")
        out[k] = v
    ds = out["dataset"]
    for k in out:
        only = _DATA_ONLY.get(k)
        if only and ds not in only:
            raise err(f"data.{k}", f"applies only to dataset {', '.join(only)}, not {ds!r}")
    out.setdefault("val_fraction", 0.1)
    out.setdefault("split_seed", 0)
    out.setdefault("augment", ds == "cifar10")
    if ds in _DATA_ONLY["download"]:
        out.setdefault("download", True)
    if ds == "imagefolder":
        root = Path(os.path.expanduser(out.get("root", "images")))
        if not root.is_absolute():
            # A user's file: relative to the file; a bundled preset: relative to where tuitune runs.
            base = Path.cwd() if path.resolve().parent == PRESET_DIR else path.resolve().parent
            root = base / root
        out["root"] = str(root)
        out.setdefault("num_workers", min(8, os.cpu_count() or 1))
    return out


def _validate_model(err: _Err, d: dict[str, Any]) -> dict[str, Any]:
    if "kind" not in d:
        raise err("model.kind", f"missing; use one of {', '.join(MODEL_KINDS)}")
    kind = _want(err, "model.kind", d["kind"], (str,), "a string")
    if kind not in MODEL_KINDS:
        raise err("model.kind", f"model {kind!r} does not exist; use one of {', '.join(MODEL_KINDS)}")
    out: dict[str, Any] = {"kind": kind}
    allowed = _MODEL_KEYS[kind]
    for k, v in d.items():
        if k == "kind":
            continue
        key = f"model.{k}"
        if k not in allowed:
            keys = ", ".join(["kind", *allowed])
            raise err(key, f"unknown key for model {kind!r}{did_you_mean(k, allowed)}; [model] has {keys}")
        types, ok, what = allowed[k]
        v = _want(err, key, v, types, what)
        if not ok(v):
            raise err(key, f"{v!r} is not {what}")
        out[k] = v
    if kind == "cnn":
        out.setdefault("batchnorm", True)
    if kind == "resnet18":
        out.setdefault("stem", "auto")
    return out


def _coerce_trainer_value(err: _Err, key: str, v: Any, tp: TrainerParam) -> Any:
    name = key.split(".", 1)[1]
    if tp.type is float:
        v = _want(err, key, v, (float,), "a number")
    elif tp.type is int:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        v = _want(err, key, v, (int,), "a whole number")
    elif tp.type is bool:
        v = _want(err, key, v, (bool,), "true or false")
    else:
        v = _want(err, key, v, (str,), "a string")
    if not tp.valid(v):
        raise err(key, f"{v!r} is not valid for {name}: it must be {tp.domain()}")
    return v


def _check_space_against_trainer(err: _Err, key: str, p: Param, tp: TrainerParam) -> None:
    name = p.name
    if isinstance(p, (Float, Int)):
        if tp.type not in (int, float):
            raise err(key, f'{name} is {tp.domain()}; use {{ type = "choice", values = [...] }}')
        if isinstance(p, Float) and tp.type is int:
            raise err(key, f'{name} is a whole number; use type = "int" (or a choice of whole numbers)')
        for v in (p.low, p.high):
            if not tp.valid(v):
                raise err(key, f"the range {p.describe()} leaves what {name} accepts: {tp.domain()}")
    elif isinstance(p, Choice):
        for v in p.values:
            if tp.type is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            ok = tp.valid(v) and (tp.type is not str or isinstance(v, str))
            if tp.type is float and not isinstance(v, float):
                ok = False
            if tp.type is int and (isinstance(v, bool) or not isinstance(v, int)):
                ok = False
            if not ok:
                raise err(key, f"choice {v!r} is not valid for {name}: it must be {tp.domain()}")
    elif isinstance(p, Fixed) and not tp.valid(p.value):
        raise err(key, f"{p.value!r} is not valid for {name}: it must be {tp.domain()}")


# ---------------------------------------------------------------------------------------------- --set


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# Options of `run` a user may try to give as `--set KEY=VALUE`.
_RUN_FLAGS = ("--max-epochs", "--trials", "--seed", "--strategy", "--workers", "--devices", "--session")


def parse_value(preset: Preset, key: str, text: str) -> Any:
    """Converts the text of ``--set KEY=VALUE`` to the type of that parameter (int, float, bool or str).

    Raises:
        PresetError: an unknown key, or text that is not of the parameter's type (or, for the built-in
            trainer, not a value it accepts).
    """
    if key not in preset.space:
        hint = did_you_mean(key, preset.space)
        flags = [f for f in _RUN_FLAGS if did_you_mean("--" + key.replace("_", "-"), [f])]
        if not hint and flags:  # `--set max_epoch=3`: an option of run, not a parameter
            hint = f" (did you mean {flags[0]} {text}?)"
        raise PresetError(
            f"--set {key}={text}: preset {preset.name!r} has no parameter {key!r}{hint}; it has {', '.join(preset.space)}"
        )
    p = preset.space[key]
    t = text.strip()
    tp = TRAINER_PARAMS.get(key) if preset.objective is None else None
    if isinstance(p, Choice):
        for v in p.values:  # an exact spelling of a choice wins
            if t == str(v) or (isinstance(v, bool) and t.lower() == str(v).lower()):
                return v
        kinds = {bool if isinstance(v, bool) else (float if isinstance(v, (int, float)) else str) for v in p.values}
        want: type = kinds.pop() if len(kinds) == 1 else str
        if want is float and all(isinstance(v, int) and not isinstance(v, bool) for v in p.values):
            want = int
        if tp is not None:
            want = tp.type
    elif isinstance(p, Int):
        want = int
    elif isinstance(p, Float):
        want = float
    else:
        v = p.value
        want = (
            tp.type
            if tp is not None
            else (bool if isinstance(v, bool) else type(v) if isinstance(v, (int, float)) else str)
        )
    value = _convert(key, t, want)
    if tp is not None and not tp.valid(value):
        raise PresetError(f"--set {key}={text}: {key} must be {tp.domain()}")
    if isinstance(p, Choice) and want is str and tp is None and value not in p.values:
        raise PresetError(f"--set {key}={text}: {key} must be one of {p.describe()}")
    return value


def _convert(key: str, t: str, want: type) -> Any:
    bad = PresetError(f"--set {key}={t}: {key} takes {_type_name(want()) if want is not bool else 'true or false'}")
    if want is bool:
        if t.lower() in _TRUE:
            return True
        if t.lower() in _FALSE:
            return False
        raise bad
    if want is int:
        try:
            return int(t)
        except ValueError:
            try:
                f = float(t)
            except ValueError:
                raise bad from None
            if math.isfinite(f) and f.is_integer():
                return int(f)
            raise bad from None
    if want is float:
        try:
            f = float(t)
        except ValueError:
            raise bad from None
        if not math.isfinite(f):
            raise bad
        return f
    return t

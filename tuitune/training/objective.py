"""Provides ``load_objective``: the callable ``objective(config, trial)`` of a preset, the user's own
function or the built-in trainer (kept apart from presets.py, which must import without torch and
without the training loop)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuitune.core.errors import PresetError
from tuitune.training.presets import Preset


def build_objective(preset: dict[str, Any], *, device: str | None, data_dir: str | None, seed: int) -> Callable[..., Any]:
    """A preset's objective, built inside a worker process (its device is the worker's).

    The factory a worker calls (``ObjectiveRef.factory``, sent by reference): it lives here, not in
    ``tuitune.launch``, so a worker imports the presets and not the coordinator's Runner, store and strategies.
    """
    return load_objective(Preset.from_dict(preset), device=device, data_dir=data_dir, seed=seed)


def load_objective(preset: Preset, **kwargs: Any) -> Callable[[dict[str, Any], Any], float | None]:
    """The callable ``objective(config, trial)`` of a preset.

    For ``objective = "pkg.mod:fn"`` the module is imported with the current directory and the preset
    file's directory on ``sys.path``. For the built-in trainer it is ``make_objective(preset, **kwargs)``
    (keyword arguments ``device``, ``data_dir``, ``seed``).
    """
    if preset.objective is None:
        from tuitune.training.loop import make_objective

        return make_objective(preset, **kwargs)
    if isinstance(preset.objective, dict):  # a script run as it is, from the preset's folder
        from tuitune.core.run.command import Command

        return Command(preset.objective["command"], shell=bool(preset.objective.get("shell", False)),
                       cwd=str(Path(preset.path).resolve().parent) if preset.path else None)
    where = f"{preset.path or preset.name}: key 'objective'"
    mod_name, _, fn_name = preset.objective.partition(":")
    for d in (str(Path(preset.path).resolve().parent) if preset.path else None, os.getcwd()):
        if d and d not in sys.path:
            sys.path.insert(0, d)
    try:
        module = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - any failure of the user's import is reported the same way
        raise PresetError(f"{where}: cannot import module {mod_name!r} ({type(e).__name__}: {e})") from e
    fn = getattr(module, fn_name, None)
    if fn is None:
        raise PresetError(f"{where}: module {mod_name!r} has no function {fn_name!r}")
    if not callable(fn):
        raise PresetError(f"{where}: {preset.objective!r} is not a function")
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        raise PresetError(
            f"{where}: {preset.objective} must accept (config, trial); its signature is {inspect.signature(fn)}"
        ) from None
    except ValueError:  # builtins without a signature: let the call decide
        pass
    return fn

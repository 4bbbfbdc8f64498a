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


def build_objective(
    preset: dict[str, Any], *, device: str | None, data_dir: str | None, seed: int, fuse: int | str | None = None
) -> Callable[..., Any]:
    """A preset's objective, built inside a worker process (its device is the worker's).

    The factory a worker calls (``ObjectiveRef.factory``, sent by reference): it lives here, not in
    ``tuitune.launch``, so a worker imports the presets and not the coordinator's Runner, store and strategies.

    ``fuse="auto"``: the worker measures one training step of the preset's default architecture on its own
    device, here, before it says it is ready; the array size that gives (``fusing.auto_members``) is the
    objective's ``fuse_auto``, which the worker reports in ``Ready.facts["fuse"]``. Measured in the worker
    because only it holds the device (the coordinator may have no GPU context, or another GPU), and once per
    worker because a step's time is the device's and the architecture's, not the trial's.

    The built-in trainer's dataset is put on the device here (``data.preload``: the device initialises while
    the dataset is read) and a few steps of the defaults' model are taken (what a process pays on its first step),
    so the first trial starts training at once; ``objective.start_phases`` says how long each took (seconds by
    name), for the worker's log.
    """
    p = Preset.from_dict(preset)
    objective = load_objective(p, device=device, data_dir=data_dir, seed=seed)
    if p.objective is None:
        # Warm: the device's context and the dataset on it now, before the worker says it is ready, not in
        # its first trial; the two overlap (data.preload). The phases go to the worker's log (workers.py).
        from tuitune.training.data import preload

        phases = preload(p.data, data_dir=data_dir, device=objective.device)  # type: ignore[attr-defined]
        import time

        from tuitune.training.fused import resolve_fuse, step_seconds

        # A few steps of the defaults' model: what a process pays once, on its first optimizer (torch._dynamo's
        # import: 1-2 s), its first kernels and library handles (cuBLAS, cuDNN), is paid here, not by trial 1.
        t = time.perf_counter()
        try:
            step_seconds(p, dict(p.defaults), device=objective.device, data_dir=data_dir, steps=1)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001 - only a warm-up: the trials say what is wrong with the model
            print(f"--- warm-up step failed ({type(e).__name__}: {e}); the first trial pays the start instead", flush=True)
        phases["warm step"] = time.perf_counter() - t
        if fuse == "auto":
            t = time.perf_counter()
            objective.fuse_auto = resolve_fuse(  # type: ignore[attr-defined]
                "auto", p, dict(p.defaults), device=objective.device, data_dir=data_dir,  # type: ignore[attr-defined]
            )
            phases["fuse auto"] = time.perf_counter() - t
        objective.start_phases = phases  # type: ignore[attr-defined]
    return objective


def fuse_key_of(preset: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
    """Which configs of a stored preset may train as one array: ``fuse_key(config)`` (equal keys share an
    array; None trains alone), or None for a preset that runs the user's own objective (one trial per
    worker). Without torch: the coordinator groups suggestions with it and never trains."""
    from tuitune.training.fusing import fuse_key

    p = Preset.from_dict(preset)
    if p.objective is not None:
        return None
    return lambda config: fuse_key(p, config)


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

"""Provides what the TUI tests share: tiny presets with their objective, fixed databases, polling."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

OBJECTIVE = """
import math, os, random, time

SLEEP = {sleep}
FAIL_UNITS = {fail_units}
HOLD = {hold!r}  # a path prefix: trial N waits after each epoch while the file HOLD-N exists

def objective(config, trial):
    rnd = random.Random(trial.number)
    if config["units"] == FAIL_UNITS:
        raise ValueError("units {fail_units} always fails in this test")
    for e in trial.epochs():
        if SLEEP:
            time.sleep(SLEEP)
        v = abs(math.log10(config["lr"]) + 2.5) / 3 + 6.4 / config["units"] + 1.0 / e + rnd.random() * 0.05
        trial.report(val_loss=v, train_loss=v * 0.9, val_acc=1 - v / 3)
        while HOLD and os.path.exists(f"{{HOLD}}-{{trial.number}}"):
            time.sleep(0.01)
"""

PRESET = """
name = "{name}"
description = "A tiny objective for the TUI tests"
objective = "{module}:objective"
metric = "val_loss"
direction = "minimize"
max_epochs = {epochs}
[defaults]
lr = 0.001
units = 64
[space]
lr = {{ type = "float", low = 1e-5, high = 1e-1, scale = "log" }}
units = {{ type = "int", low = 32, high = 256, step = 32 }}
"""


def make_preset(
    folder: Path,
    *,
    sleep: float = 0.0,
    epochs: int = 4,
    name: str = "mine",
    fail_units: int = -1,
    module: str | None = None,
    hold: Path | None = None,
) -> Path:
    """Writes a preset TOML and its objective module (a unique module name: tests share one process).

    With ``hold``, trial N waits after each reported epoch while the file ``<hold>-N`` exists: a test
    holds a trial where it wants it, whatever the machine's load, and lets it go by deleting the file.
    """
    module = module or f"tuitune_test_obj_{uuid.uuid4().hex[:10]}"
    (folder / f"{module}.py").write_text(
        OBJECTIVE.format(sleep=sleep, fail_units=fail_units, hold=str(hold) if hold else "")
    )
    path = folder / f"{name}.toml"
    path.write_text(PRESET.format(name=name, module=module, epochs=epochs))
    return path


def run_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Runs an async test in its own event loop (no asyncio plugin needed); fixtures pass through."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 120.0, what: str = "condition") -> None:
    """Polls ``cond`` while the app runs, until it holds or ``timeout`` seconds pass (generous: with both
    cores busy a worker's start and first epoch took over 20 s)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def settled(pilot: Any, timeout: float = 120.0) -> None:
    """Waits until the screen shows everything it was told, whatever the machine's load: every message
    handled, a dashboard's throttled redraw done (nothing left dirty), and each chart on show drawn for its
    current height (its value axis's ticks are laid out for the height it had when drawn)."""
    from tuitune.ui.widgets.charts import _Chart

    end = time.monotonic() + timeout
    while True:
        await pilot.pause()  # the messages posted so far, handled
        screen = pilot.app.screen
        charts = [c for c in screen.query(_Chart) if c.size.height and c._axis_rows is not None]
        if not getattr(screen, "_dirty", None) and all(c._axis_rows == c._rows() for c in charts):
            break
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {type(screen).__name__} to settle")
        await pilot.pause(0.05)
    await pilot.pause()


class FixedClock:
    """A clock for ``Store(path, clock=FixedClock().time)`` that advances by a fixed step each time it is read."""

    def __init__(self, start: float = 1_767_225_600.0, step: float = 0.25) -> None:  # 2026-01-01 00:00 UTC
        self.now, self.step = start, step

    def time(self) -> float:
        self.now += self.step
        return self.now


def build_fixed_db(path: Path, preset_path: Path) -> str:
    """A database with one session of fixed trials, times and values (for snapshots). Returns its name."""
    return _build(path, preset_path, FixedClock().time)


def _build(path: Path, preset_path: Path, clock: Callable[[], float]) -> str:
    import math

    from tuitune.core.store.store import Store
    from tuitune.training.presets import load_preset

    preset = load_preset(str(preset_path))
    store = Store(path, clock=clock)
    name = "steady-heron-7"
    store.create_session(
        name,
        strategy="random",
        options={},
        space=preset.space.to_dict(),
        metric="val_loss",
        direction="minimize",
        seed=0,
        max_epochs=6,
        n_trials=10,
        preset=preset.to_dict(),
        defaults=dict(preset.defaults),
        info={"device": "cpu"},
    )
    rows = [
        # lr, units, epochs, state, reason, meta
        (0.001, 64, 6, "complete", None, {}),
        (0.02, 128, 6, "complete", None, {}),
        (3e-5, 32, 2, "pruned", "aborted by the user", {}),
        (0.004, 192, 6, "complete", None, {}),
        (0.09, 256, 1, "failed", "ValueError: loss became nan", {}),
        (0.004, 256, 6, "complete", None, {"base": 3, "change": {"units": 256}}),
        (0.001, 64, 6, "complete", None, {"base": "defaults", "change": {}}),
        (0.0004, 96, 3, "interrupted", "the TUI was closed at epoch 3", {}),
    ]
    for i, (lr, units, n, state, reason, meta) in enumerate(rows):
        store.new_trial(name, config={"lr": lr, "units": units}, budget=6, meta=meta, info={"device": "cpu"})
        best = None
        for e in range(1, n + 1):
            v = round(abs(math.log10(lr) + 2.5) / 3 + 6.4 / units + 1.0 / e + (i % 3) * 0.01, 4)
            store.add_epoch(
                name, i, e, {"train_loss": round(v * 0.9, 4), "val_loss": v, "val_acc": round(1 - v / 3, 4)}
            )
            best = v if best is None else min(best, v)
        tb = None
        if state == "failed":
            tb = 'Traceback (most recent call last):\n  File "obj.py", line 9, in objective\nValueError: loss became nan\n'
        store.finish_trial(
            name, i, state=state, value=best if state in ("complete", "pruned") else None, reason=reason, traceback=tb
        )
    store.update_session(name, state="stopped", message="the TUI was closed")
    store.close()
    return name


def add_running_trial(path: Path, name: str = "steady-heron-7") -> int:
    """Adds trial 8, running at epoch 3 of 6 (its owner is not alive: the UI makes it live). Returns 8."""
    from tuitune.core.store.store import Store

    store = Store(path, clock=FixedClock(start=1_767_226_000.0).time)
    t = store.new_trial(name, config={"lr": 0.003, "units": 160}, budget=6, info={"device": "cpu"})
    for e in (1, 2, 3):
        v = round(0.5 / e + 0.2, 4)
        store.add_epoch(name, t.number, e, {"train_loss": v * 0.9, "val_loss": v, "val_acc": round(1 - v / 3, 4)})
    store.close()
    return t.number


def build_hyperband_db(path: Path, preset_path: Path) -> str:
    """A Hyperband session of fixed trials: rungs at 2 and 6 epochs, promoted and pruned ones."""
    return _build_hyperband(path, preset_path, FixedClock().time)


def _build_hyperband(path: Path, preset_path: Path, clock: Callable[[], float]) -> str:
    import math

    from tuitune.core.store.store import Store
    from tuitune.training.presets import load_preset

    preset = load_preset(str(preset_path))
    store = Store(path, clock=clock)
    name = "brisk-wren-3"
    store.create_session(
        name, strategy="hyperband", options={"factor": 3}, space=preset.space.to_dict(), metric="val_loss",
        direction="minimize", seed=0, max_epochs=6, n_trials=9, preset=preset.to_dict(),
        defaults=dict(preset.defaults), info={"device": "cpu"},
    )
    for i in range(9):
        lr, units = 10 ** (-4 + (i * 7 % 9) / 3), 32 * (1 + i % 8)
        promoted = i in (2, 5, 7)
        budget = 6 if promoted else 2
        store.new_trial(name, config={"lr": lr, "units": units}, budget=budget, meta={"bracket": 0, "rung": 1 if promoted else 0})
        best = None
        for e in range(1, budget + 1):
            v = round(abs(math.log10(lr) + 2.5) / 3 + 6.4 / units + 1.0 / e, 4)
            store.add_epoch(name, i, e, {"train_loss": round(v * 0.9, 4), "val_loss": v, "epoch_seconds": 0.25})
            best = v if best is None else min(best, v)
        state = "complete" if promoted else "pruned"
        store.finish_trial(name, i, state=state, value=best, reason=None if promoted else "not promoted at rung 2")
    store.update_session(name, state="finished")
    store.close()
    return name

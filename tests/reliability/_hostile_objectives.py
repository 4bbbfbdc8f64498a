"""Objectives of the hostile-user tests (tests/reliability/test_hostile.py): copied next to their TOML files."""

from __future__ import annotations

import os
import time


def quick(config, trial):
    """Epochs of ``epoch_s`` seconds (default 0); appends "<trial> <epoch>" to ``log`` after each commit."""
    delay = float(config.get("epoch_s", 0.0))
    for epoch in trial.epochs():
        time.sleep(delay)
        trial.report(val_loss=(float(config["x"]) - 0.3) ** 2 + 1.0 / epoch)
        if config.get("log"):
            with open(config["log"], "a") as f:
                f.write(f"{trial.number} {epoch}\n")
    return None


def checkpointing(config, trial):
    """A checkpoint of ``kb`` KiB each epoch (torch), restored on resume."""
    import torch

    state = trial.restore()
    w = state["w"] if state is not None else torch.zeros(int(config.get("kb", 64)) * 256)
    for epoch in trial.epochs():
        w = w + 1.0
        trial.report(val_loss=(float(config["x"]) - 0.3) ** 2 + 1.0 / epoch)
        trial.checkpoint({"w": w})
    return None


def _fork_sleeper(pidfile):
    pid = os.fork()
    if pid == 0:  # the grandchild: holds every descriptor the worker had, and sleeps
        try:
            time.sleep(120)
        finally:
            os._exit(0)
    with open(pidfile, "a") as f:
        f.write(f"{pid}\n")


def fork_and_die(config, trial):
    """Forks a child that sleeps 120 s, then the worker process dies at once."""
    for epoch in trial.epochs():
        trial.report(val_loss=float(epoch))
        _fork_sleeper(config["pidfile"])
        os._exit(7)


def fork_and_finish(config, trial):
    """Forks a child that sleeps 120 s, then finishes its epochs normally."""
    _fork_sleeper(config["pidfile"])
    for epoch in trial.epochs():
        trial.report(val_loss=float(epoch))
    return None

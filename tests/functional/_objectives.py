"""Synthetic objectives for the functional tests of the command line.

The tests copy this file next to the TOML files they write (``objective = "_objectives:quadratic"``),
so it is imported the way a user's own module is: from the TOML's folder / the current directory.
Every objective is fast and deterministic; the ones that sleep take their epoch time from the config
(a fixed parameter in ``[defaults]``), so one module serves quick and slow tests alike.
"""

from __future__ import annotations

import os
import time


def quadratic(config, trial):
    """A bowl around x = 0.3 that improves with epochs; reports val_loss and val_acc every epoch."""
    delay = float(config.get("epoch_s", 0.0))
    for epoch in trial.epochs():
        if delay:
            time.sleep(delay)
        loss = (float(config["x"]) - 0.3) ** 2 + 1.0 / epoch + 0.001 * int(config.get("units", 0))
        trial.report(val_loss=loss, val_acc=1.0 - loss / 4.0, train_loss=loss * 0.9)
    return None


def with_torch(config, trial):
    """quadratic, with torch imported and a tensor checkpoint each epoch (as a real objective would)."""
    import torch

    state = trial.restore()
    w = state["w"] if state is not None else torch.zeros(1)
    for _epoch in trial.epochs():
        w = w + 1.0
        loss = (float(config["x"]) - 0.3) ** 2 + 1.0 / float(w.item())
        trial.report(val_loss=loss, train_loss=loss)
        trial.checkpoint({"w": w})
    return None


def slow(config, trial):
    """Epochs of ``epoch_s`` seconds (default 0.3), slept in short steps; logs each committed epoch.

    With ``log`` in the config, a line ``<trial> <epoch> <pid>`` is appended (fsync'd) after each
    ``trial.report`` returned, so a test can wait for "an epoch is committed" without polling SQLite.
    """
    delay = float(config.get("epoch_s", 0.3))
    log = config.get("log")
    for epoch in trial.epochs():
        end = time.monotonic() + delay
        while time.monotonic() < end:
            time.sleep(min(0.02, max(0.0, end - time.monotonic())))
        trial.report(val_loss=(float(config["x"]) - 0.3) ** 2 + 1.0 / epoch)
        if log:
            append_line(log, f"{trial.number} {epoch} {os.getpid()}")
    return None


def long_sleep(config, trial):
    """One long uninterruptible-looking sleep per epoch (``epoch_s``), for the second Ctrl+C."""
    log = config.get("log")
    for epoch in trial.epochs():
        if log:
            append_line(log, f"{trial.number} {epoch} {os.getpid()} start")
        time.sleep(float(config.get("epoch_s", 60.0)))
        trial.report(val_loss=1.0 / epoch)
    return None


def flaky(config, trial):
    """Raises after its first epoch when ``x`` is above ``fail_above`` (a fixed parameter; 0: always)."""
    for epoch in trial.epochs():
        trial.report(val_loss=float(config["x"]) + 1.0 / epoch)
        if float(config["x"]) > float(config.get("fail_above", 0.0)):
            raise RuntimeError(f"synthetic failure at x={float(config['x']):.3f}")
    return None


def wrong_signature(config):
    """Takes one argument: refused when the TOML is loaded."""
    return 0.0


NOT_A_FUNCTION = 42


def _owner_pid() -> int:
    """The pid of the process that owns the session: the coordinator, when this runs in its worker."""
    import multiprocessing

    if os.environ.get("TUITUNE_COORDINATOR_PID"):  # a Ray actor: its coordinator is not its parent
        return int(os.environ["TUITUNE_COORDINATOR_PID"])
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def killable(config, trial):
    """The objective of the kill test: restores a tensor checkpoint, reports, logs, checkpoints.

    The state is a running sum ``acc``; after epoch ``e`` (counted from scratch) it is exactly
    ``e * x + e * (e + 1) / 2``, so a row computed from a wrongly restored state is visible in the
    database. Lines appended to ``config["log"]`` (each fsync'd before the next step):

    - ``S <trial> <pid> <restored_epoch>`` when the trial (re)starts, 0 when nothing was restored;
    - ``C <trial> <epoch> <pid> <acc>`` after ``trial.report`` returned, i.e. the row is committed;
    - ``BAD ...`` when epochs() does not continue right after the restored checkpoint.
    """
    import torch

    log = config["log"]
    x = float(config["x"])
    state = trial.restore()
    if state is None:
        acc, start = torch.zeros((), dtype=torch.float64), 0
    else:
        acc, start = state["acc"], int(state["epoch"])
    append_line(log, f"S {trial.number} {_owner_pid()} {start}")
    expected = start + 1
    for epoch in trial.epochs():
        if epoch != expected:
            append_line(log, f"BAD {trial.number} epoch {epoch} after restored {start}, expected {expected}")
        expected = epoch + 1
        time.sleep(float(config["epoch_s"]))
        acc = acc + (x + epoch)
        value = float(acc.item())
        trial.report(val_loss=value / (epoch * epoch) + (x - 0.3) ** 2, acc=value, pid=float(_owner_pid()))
        append_line(log, f"C {trial.number} {epoch} {_owner_pid()} {value!r}")
        trial.checkpoint({"acc": acc, "epoch": epoch})
    return None


def append_line(path, line):
    """Appends one line with a single write and fsyncs it (it survives a SIGKILL right after)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def setup_fails(config, trial):
    """Fails its setup before any epoch, as the real trainer does offline without its dataset."""
    from tuitune.core.errors import SetupError

    raise SetupError("dataset 'synthetic' is not in /nowhere; put it there or run once with internet access")


def size_vs_loss(config, trial):
    """Two costs that pull apart: val_loss falls with x, params rise with it; latency_ms = 10 x."""
    x = float(config["x"])
    for epoch in trial.epochs():
        loss = (1.0 - x) ** 2 + 0.5 / epoch
        trial.report(val_loss=loss, params=1e6 * x + 1000.0 * epoch, latency_ms=10.0 * x)
    return None

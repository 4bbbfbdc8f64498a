"""Objectives (and one writer loop) of the reliability tests, imported the way a user's module is.

The tests copy this file next to the TOML files they write (``objective = "_rel_objectives:slow"``).
Parameters come from the config (fixed values in ``[defaults]``), so one module serves every test.
Each log line is appended with a single ``write`` and fsync'd before the objective goes on, so a
line in the log means the step before it happened, even when the process is SIGKILLed right after.
"""

from __future__ import annotations

import os
import sys
import threading
import time


def append_line(path, line):
    """Appends one line with a single write and fsyncs it (it survives a SIGKILL right after)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def owner_pid():
    """The pid of the process that owns the session (the coordinator, when this runs in its worker):
    what the tests kill and signal."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def _sleep(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(0.02, max(0.0, end - time.monotonic())))


def slow(config, trial):
    """Epochs of ``epoch_s`` seconds; after each committed epoch logs ``C <trial> <epoch> <pid> <own pid>``.

    ``B <trial> <epoch> <pid> <own pid>`` is logged when an epoch begins, so a test can signal mid-epoch
    (pid: the session's owner; own pid: the process running the trial, a worker or the owner itself).
    """
    delay = float(config.get("epoch_s", 0.3))
    log = config["log"]
    for epoch in trial.epochs():
        append_line(log, f"B {trial.number} {epoch} {owner_pid()} {os.getpid()}")
        _sleep(delay)
        trial.report(val_loss=(float(config["x"]) - 0.3) ** 2 + 1.0 / epoch)
        append_line(log, f"C {trial.number} {epoch} {owner_pid()} {os.getpid()}")
    return None


def big_checkpoint(config, trial):
    """Writes a checkpoint of ``mb`` MB each epoch: a float32 tensor filled with the epoch number.

    A restored state is self-consistent when its tensor is filled with its own ``epoch`` and has the
    full size. Log lines:

    - ``S <trial> <pid> <restored_epoch> <ok>``: the trial (re)starts; ok is 1 when the restored state
      is self-consistent (0: a torn or mixed checkpoint was handed to the objective);
    - ``C <trial> <epoch> <pid>``: after ``trial.report`` returned (the row is committed);
    - ``K <trial> <epoch> <pid>``: after ``trial.checkpoint`` returned;
    - ``BAD ...``: epochs() did not continue right after the restored epoch.
    """
    import torch

    log = config["log"]
    n = int(float(config.get("mb", 4)) * 2**20 / 4)
    state = trial.restore()
    if state is None:
        start, ok = 0, 1
    else:
        start = int(state["epoch"])
        w = state["w"]
        ok = int(w.numel() == n and bool((w == float(start)).all()) and float(state["check"]) == start * 7.0)
    append_line(log, f"S {trial.number} {owner_pid()} {start} {ok}")
    expected = start + 1
    for epoch in trial.epochs():
        if epoch != expected:
            append_line(log, f"BAD {trial.number} epoch {epoch} after restored {start}")
        expected = epoch + 1
        _sleep(float(config.get("epoch_s", 0.0)))
        trial.report(val_loss=(float(config["x"]) - 0.3) ** 2 + 1.0 / epoch)
        append_line(log, f"C {trial.number} {epoch} {owner_pid()}")
        trial.checkpoint({"epoch": epoch, "w": torch.full((n,), float(epoch)), "check": torch.tensor(epoch * 7.0)})
        append_line(log, f"K {trial.number} {epoch} {owner_pid()}")
    return None


def _thread_that_raises():
    raise ValueError("loader worker crashed")


def _wait_for(cond, what, limit=120.0):
    """Polls ``cond`` (a condition, never a duration: the machine may be busy); gives up after ``limit`` s."""
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(0.01)


def _pairs(spec):
    """'0:1,3:2' -> {0: 1, 3: 2}."""
    return {int(a): int(b) for a, b in (item.split(":") for item in str(spec or "").split(",") if item)}


def _trial_state(db, number):
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT state FROM trials WHERE number = ?", (number,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def misbehave(config, trial):
    """Misbehaves as ``plan`` says for this trial number (a comma-separated list, one mode a trial).

    Every trial first reports an epoch that is *better* than any good trial's (val_loss 0 instead of
    >= 1), so a failed trial that were ranked would be the best. Modes:
    good, exception, systemexit, nan (NaN at epoch ``bad_epoch``), inf, return_nan, oom, thread, hang
    (sleeps 600 s inside epoch 2).

    Orderings for several workers (conditions, not delays), before epoch 1: ``wait_begun = "A:B"`` makes
    trial A wait until trial B has begun (in ``log``); ``wait_failed = "A:B"`` makes trial A wait until
    trial B is stored ``failed`` (in the database ``db``).
    """
    plan = [p.strip() for p in str(config["plan"]).split(",")]
    mode = plan[trial.number % len(plan)]
    k = int(config.get("bad_epoch", 2))
    x = float(config["x"])
    log = config.get("log")
    begun = _pairs(config.get("wait_begun")).get(trial.number)
    failed = _pairs(config.get("wait_failed")).get(trial.number)
    for epoch in trial.epochs():
        if log:
            append_line(log, f"B {trial.number} {epoch} {os.getpid()} {mode}")
        if epoch == 1 and begun is not None:
            _wait_for(lambda: any(line.split()[:2] == ["B", str(begun)] for line in open(log)),
                      f"trial {begun} to begin")
        if epoch == 1 and failed is not None:
            _wait_for(lambda: _trial_state(config["db"], failed) == "failed", f"trial {failed} to fail")
        if mode == "good":
            trial.report(val_loss=1.0 + x + 1.0 / epoch)
            continue
        if epoch == 1:
            trial.report(val_loss=0.0)
            continue
        if epoch < k:
            trial.report(val_loss=0.0)
            continue
        if mode == "exception":
            raise RuntimeError(f"synthetic crash in epoch {epoch}")
        if mode == "systemexit":
            sys.exit(3)
        if mode == "nan":
            trial.report(val_loss=float("nan"))
        elif mode == "inf":
            trial.report(val_loss=float("inf"))
        elif mode == "return_nan":
            trial.report(val_loss=0.0)
            if epoch == trial.budget:
                return float("nan")
        elif mode == "oom":
            import torch

            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.15 GiB total capacity)"
            )
        elif mode == "thread":
            th = threading.Thread(target=_thread_that_raises, name="rel-loader")
            th.start()
            th.join()
            trial.report(val_loss=0.0)
        elif mode == "hang":
            marker = config.get("hang_marker")
            if not marker or not os.path.exists(marker):
                if marker:
                    append_line(marker, "hung once")
                if log:
                    append_line(log, f"H {trial.number} {epoch} {os.getpid()}")
                time.sleep(600)
            trial.report(val_loss=1.0 + x)
        else:
            raise AssertionError(f"unknown mode {mode!r}")
    return None


def export_loop(path, docs_file, log):
    """Rewrites ``path`` with the documents of ``docs_file`` (a JSON list) in turn, forever.

    Logs ``W`` once, after the first ``write_json_atomic`` returned (no more: the loop is the writes
    alone, so a random kill lands inside one often). Used by the kill-during-export test.
    """
    import json

    from tuitune.core.store.export import write_json_atomic

    with open(docs_file) as f:
        docs = json.load(f)
    i = 0
    while True:
        write_json_atomic(path, docs[i % len(docs)])
        if i == 0:
            append_line(log, "W")
        i += 1


if __name__ == "__main__":  # python _rel_objectives.py export-loop PATH DOCS LOG
    if sys.argv[1] == "export-loop":
        export_loop(sys.argv[2], sys.argv[3], sys.argv[4])

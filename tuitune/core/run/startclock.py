"""Provides ``StartClock``: where a worker process's start goes (its phases until ``Ready``, then its first job's
first epoch), written to the worker's log and sent to the coordinator in ``Ready.facts["phases"]``."""

from __future__ import annotations

import contextlib
import time
from typing import Any


class StartClock:
    """Where a worker's start goes: its phases until ``Ready`` (sent in ``Ready.facts["phases"]`` and written
    to its log, ``worker-N.log``), then how long its first job took to commit its first epoch.

    Phases, in seconds: ``spawn`` (the coordinator's start of the process to its first line: the interpreter
    and tuitune's imports), ``import`` (building the objective: its code, torch), what the objective measured of
    its own start (the built-in trainer's ``device`` initialisation and ``data`` on the device, which overlap,
    its ``warm step`` and ``fuse auto``), and ``ready`` (from the coordinator's start of the process to
    ``Ready``). The log is opened at once and kept open: a warm worker's log moves to its session's folder.
    """

    def __init__(self, log: str | None, spawned: float, entered: float | None = None) -> None:
        self.log = log
        self.spawned = spawned
        self.entered = entered if entered is not None else spawned
        self.ready_at: float | None = None
        self.job_at: float | None = None
        self.ready_line = ""
        self._file: Any = None
        if log is not None:
            from tuitune.core.errors import StoreError
            from tuitune.core.store.safefs import open_append

            with contextlib.suppress(OSError, StoreError):  # never through a symlink; the log is for reading
                self._file = open_append(log, buffering=1)

    def phases(self, built: float, own: dict[str, float]) -> dict[str, float]:
        """The phases once the objective was built (``built``: seconds it took; ``own``: its own phases)."""
        self.ready_at = time.time()
        out = {"spawn": max(0.0, self.entered - self.spawned), "import": max(0.0, built - sum(own.values()))}
        out.update(own)
        out["ready"] = max(0.0, self.ready_at - self.spawned)
        return out

    def _write(self, line: str) -> None:
        """Appends to the log, through a file kept open: a warm worker's log moves to its session's folder."""
        if self._file is None:
            return
        try:
            self._file.write(line + "\n")
        except OSError:
            pass  # the log is for reading; a full disk must not stop the worker

    def said_ready(self, phases: dict[str, float]) -> None:
        self.ready_line = "--- worker ready: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
        self._write(self.ready_line)

    def job(self, log: str | None = None) -> None:
        """A job arrived; the first one's log (``log``: its first trial's, which ``tuitune show --log`` prints)
        opens with where this worker's start went."""
        if self.job_at is not None:
            return
        self.job_at = time.time()
        if log is not None and self.ready_line:
            from tuitune.core.store.safefs import append_line

            append_line(log, f"{self.ready_line} (this worker's first job; its log: {self.log})")

    def first_epoch(self) -> None:
        now = time.time()
        job = self.job_at if self.job_at is not None else now
        self._write(f"--- first epoch committed: first job {now - job:.2f} s, start {now - self.spawned:.2f} s "
                    f"(from the process's start)")

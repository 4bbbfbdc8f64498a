"""Provides the session lock: one process runs a session at a time.

An exclusive ``flock`` on ``<db>.d/locks/<session>.lock``. The operating system drops it when the
process dies, however it dies, so the lock of a killed process is taken over without any staleness
guess. The file records who holds it, for the message the next process shows.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from tuitune.core.errors import SessionLockedError
from tuitune.core.store import files_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class SessionLock:
    """Holds the run lock of one session until ``release()`` (or the process ends)."""

    def __init__(self, db_path: str | os.PathLike[str], session: str) -> None:
        self.session = session
        self.path = files_dir(db_path) / "locks" / f"{session}.lock"
        self._fd: int | None = None

    def acquire(self) -> SessionLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._read_holder(fd)
                os.close(fd)
                raise SessionLockedError(
                    f"session '{self.session}' is being run by another process ({holder}); "
                    "wait for it to finish, or stop that process and resume"
                ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:200],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def _read_holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            return f"pid {info.get('pid')} on {info.get('host')}, '{info.get('command')}', since {info.get('since')}"
        except (OSError, ValueError):
            return "unknown process"

    def release(self) -> None:
        if self._fd is not None:
            try:
                if fcntl is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> SessionLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

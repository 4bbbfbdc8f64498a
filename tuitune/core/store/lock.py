"""Provides the session lock: one process runs a session at a time, whatever path names its database.

The lock is an open-file-description lock (``F_OFD_SETLK``) on one byte of the *database file itself*,
far past any byte SQLite locks, chosen by the session's name: it follows the file's identity (device and
inode), so a symlink or another spelling of the path meets the same lock, and deleting ``<db>.d`` cannot
lose it. The operating system drops it when the process dies, however it dies, so the lock of a killed
process is taken over without any staleness guess. ``<db>.d/locks/<session>.lock`` records who holds it,
for the message the next process shows.

The descriptor of the database file is kept open for the life of the process: closing any descriptor of
a file drops every POSIX lock the process holds on it, SQLite's included (see store._LIVE).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

from tuitune.core.errors import SessionLockedError, StoreWriteError
from tuitune.core.store.safefs import check_name, open_private, secure_dir
from tuitune.core.store.store import SessionFiles, files_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_OFD = fcntl is not None and hasattr(fcntl, "F_OFD_SETLK")  # Linux
_BASE = 1 << 48  # far past SQLite's lock bytes (1 GiB) and any real file size
_DB_FDS: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> a descriptor kept open (never closed)
_HELD: set[tuple[int, int, str]] = set()  # the sessions this process holds (OFD locks of one fd never conflict)
_GUARD = threading.Lock()


def _flock_struct(kind: int, start: int) -> bytes:
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, 1, 0)


class SessionLock:
    """Holds the run lock of one session until ``release()`` (or the process ends)."""

    def __init__(self, db_path: str | os.PathLike[str], session: str) -> None:
        self.session = check_name(session)
        self.db_path = Path(db_path).expanduser()
        self.path = SessionFiles(self.db_path, self.session).lock
        self._key: tuple[int, int, str] | None = None
        self._fd: int | None = None  # the database's shared descriptor, while held
        self._flock_fd: int | None = None  # the lock file's, where there are no OFD locks

    def _refused(self) -> SessionLockedError:
        holder = self._read_holder()
        if holder is None:  # its holder has the lock but has not written its name yet
            return SessionLockedError(
                f"session '{self.session}': another process is starting it; wait a moment: it will show as live "
                "in tuitune sessions"
            )
        return SessionLockedError(
            f"session '{self.session}' is being run by another process ({holder}); "
            "wait for it to finish, or stop that process and resume"
        )

    def acquire(self) -> SessionLock:
        real = self.db_path.resolve()
        st = os.stat(real)
        ident = (st.st_dev, st.st_ino)
        key = (*ident, self.session)
        with _GUARD:
            if key in _HELD:
                raise self._refused()
            fd = _DB_FDS.get(ident)
            if fd is None:
                try:
                    fd = os.open(real, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
                except PermissionError:
                    raise StoreWriteError(
                        f"could not write to {self.db_path}: it is read-only for you; everything in it is kept. "
                        "Fix its permissions (or copy it), then resume the session"
                    ) from None
                _DB_FDS[ident] = fd
            if _OFD:
                start = _BASE + zlib.crc32(self.session.encode())
                try:
                    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_WRLCK, start))
                except OSError:
                    raise self._refused() from None
            _HELD.add(key)
        self._key, self._fd = key, fd
        try:
            self._write_holder()
        except BaseException:
            self.release()
            raise
        return self

    def _flock_fallback(self) -> None:
        """Without OFD locks (macOS, BSD): an flock on the lock file, as before (not proof against a deleted
        <db>.d or another path naming the database)."""
        if fcntl is None:
            return
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self._refused() from None
        self._flock_fd = fd

    def _write_holder(self) -> None:
        secure_dir(files_dir(self.db_path), "locks")
        if not _OFD:
            self._flock_fallback()
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:200],
        }
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        finally:
            os.close(fd)

    def _read_holder(self) -> str | None:
        """Who holds the lock, in words; None while its holder has created its note but not written its
        name in it (an empty note)."""
        try:
            fd = open_private(self.path, os.O_RDONLY)
            try:
                info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            finally:
                os.close(fd)
            if not isinstance(info, dict) or info.get("pid") is None:
                return None
            return f"pid {info.get('pid')} on {info.get('host')}, '{info.get('command')}', since {info.get('since')}"
        except FileNotFoundError:
            # Not written yet, or removed with <db>.d while the holder runs (the lock is on the database).
            return "its name note is not written yet or was removed"
        except Exception:  # noqa: BLE001 - the message only
            return "unknown process"

    def release(self) -> None:
        if self._key is None:
            return
        if self._flock_fd is not None:
            os.close(self._flock_fd)  # drops the flock
            self._flock_fd = None
        with _GUARD:
            try:
                if self._fd is not None and _OFD:
                    start = _BASE + zlib.crc32(self.session.encode())
                    fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_UNLCK, start))
            finally:
                _HELD.discard(self._key)
                self._key = self._fd = None

    @property
    def held(self) -> bool:
        return self._key is not None

    def __enter__(self) -> SessionLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

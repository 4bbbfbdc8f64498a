"""Provides a database file's identity and lock safety, and the paths beside it (``<db>.d``).

What a tuitune database is (its application id, its schema version, its tables) checked without
writing a byte (``check_file``); the count of this process's live connections per file, which keeps
a plain ``open()`` from dropping their POSIX locks; the default database and the folders beside it.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
from pathlib import Path

from tuitune.core.errors import (
    CorruptDatabaseError,
    NewerDatabaseError,
    NotOurDatabaseError,
    StoreWriteError,
)
from tuitune.core.paths import default_db_path  # noqa: F401 - re-exported
from tuitune.core.store.fs import why_not_writable

APPLICATION_ID = int.from_bytes(b"tTun", "big")
SCHEMA_VERSION = 2

SQLITE_MAGIC = b"SQLite format 3\x00"


# Database files this process has SQLite connections to, with how many Stores hold them. POSIX record
# locks belong to the process: closing *any* descriptor of the file drops them all, so a plain
# open()/close() of a database this process has open would silently drop the locks its live
# connections rely on (another process may then checkpoint and delete the WAL under them, losing
# what they see). SQLite itself defers such closes; we must not open the file outside SQLite then.
_LIVE: dict[str, int] = {}
_LIVE_LOCK = threading.Lock()


def _live_key(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _application_id(p: Path) -> int:
    """The file's application id, read through SQLite (which keeps this process's locks intact)."""
    try:
        conn = sqlite3.connect(f"file:{p.resolve().as_posix()}?mode=ro", uri=True, timeout=30)
        try:
            return int(conn.execute("PRAGMA application_id").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise CorruptDatabaseError(f"{p} cannot be read ({e}); it was left unchanged") from None


def _file_application_id(p: Path) -> int:
    """The file's application id from its header, or through SQLite while this process has it open."""
    with _LIVE_LOCK:
        live = _LIVE.get(_live_key(p), 0) > 0
    if live:  # reading the file outside SQLite would drop the locks of this process's connections
        return _application_id(p)
    with open(p, "rb") as f:
        header = f.read(100)
    if not header.startswith(SQLITE_MAGIC):
        raise NotOurDatabaseError(
            f"{p} is not a tuitune database (not an SQLite file); it was left unchanged. "
            "Point --db or TUITUNE_DB at another file"
        )
    if len(header) < 100:
        raise CorruptDatabaseError(
            f"{p} is a truncated SQLite file; it was left unchanged. Restore it from a backup"
        )
    return int.from_bytes(header[68:72], "big")


def check_file(path: str | os.PathLike[str]) -> bool:
    """Checks, without writing a byte, that ``path`` is a tuitune database or may become one.

    Returns True when the file exists and holds a tuitune schema, False when there is no file (or an
    empty one, or an SQLite file with no tables) that may be initialised. Raises a StoreError subclass
    for a file that is not ours, is corrupt, or is from a newer version.
    """
    p = Path(path)
    if not p.exists():
        return False
    if p.is_dir():
        raise NotOurDatabaseError(f"{p} is a folder, not a database file; give a file path with --db")
    size = p.stat().st_size
    if size == 0:
        return False
    app_id = _file_application_id(p)
    if app_id not in (0, APPLICATION_ID):
        raise NotOurDatabaseError(
            f"{p} is another program's SQLite database (application id {app_id:#x}); it was left unchanged. "
            "Point --db or TUITUNE_DB at another file"
        )
    uri = f"file:{p.resolve().as_posix()}?mode=ro"
    # Even read-only, SQLite makes the -wal and -shm files of a WAL database: those it makes for a file
    # found not to be ours are removed again, so "left unchanged" is true of the folder too.
    sidecars = [p.with_name(p.name + s) for s in ("-wal", "-shm")]
    made = [f for f in sidecars if not f.exists()]
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30)
    except sqlite3.Error as e:
        raise CorruptDatabaseError(f"{p} cannot be opened ({e}); it was left unchanged") from None
    ok = False
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0:
            if not tables:
                return False
            raise NotOurDatabaseError(
                f"{p} is an SQLite database of another program (tables: {', '.join(sorted(tables)[:5])}); "
                "it was left unchanged. Point --db or TUITUNE_DB at another file"
            )
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NewerDatabaseError(
                f"{p} was written by a newer tuitune (schema {version}; this one knows up to {SCHEMA_VERSION}); "
                "it was left unchanged. Upgrade tuitune: pip install -U tuitune"
            )
        result = [r[0] for r in conn.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            raise CorruptDatabaseError(
                f"{p} is damaged ({'; '.join(result[:3])}); it was left unchanged. Restore it from a backup"
            )
        missing = {"sessions", "trials", "epochs"} - tables
        if missing:
            raise CorruptDatabaseError(
                f"{p} is a tuitune database that lacks the tables {', '.join(sorted(missing))}; "
                "it was left unchanged. Restore it from a backup"
            )
        ok = True
        return True
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and "unable to open" in str(e):
            why = why_not_writable(p)
            if why:  # a WAL database's folder must be writable, for its -wal and -shm files
                raise StoreWriteError(
                    f"cannot open the database {p}: {why}; move it to a writable folder (--db or TUITUNE_DB)"
                ) from None
        raise CorruptDatabaseError(f"{p} is damaged ({e}); it was left unchanged. Restore it from a backup") from None
    finally:
        conn.close()
        if not ok:
            _remove_made(made)


def _remove_made(files: list[Path]) -> None:
    """Removes the -wal and -shm files a failed check made (an empty -wal: nothing was written)."""
    wal = [f for f in files if f.name.endswith("-wal")]
    if any(f.exists() and f.stat().st_size > 0 for f in wal):
        return
    for f in files:
        try:
            f.unlink()
        except OSError:
            pass




def files_dir(db_path: str | os.PathLike[str]) -> Path:
    """The folder beside the database file for checkpoints, logs and session lock notes (``<db>.d``).

    Beside the file itself (symlinks resolved): every path naming one database names one folder.
    """
    p = Path(db_path).expanduser()
    try:
        p = p.resolve()
    except OSError:
        pass
    return p.with_name(p.name + ".d")


def session_path(db_path: str | os.PathLike[str], kind: str, session: str) -> Path:
    """``<db>.d/<kind>/<session>`` (kind: logs, checkpoints), the name checked (names read back from a
    database too): nothing is created. ``session_dir`` creates and checks the folders."""
    from tuitune.core.store.safefs import check_name

    return files_dir(db_path) / kind / check_name(session)


def session_dir(db_path: str | os.PathLike[str], kind: str, session: str) -> Path:
    """``session_path``, its folders created or checked to be the user's own (safefs.secure_dir)."""
    from tuitune.core.store.safefs import check_name, secure_dir

    return secure_dir(files_dir(db_path), kind, check_name(session))


@dataclasses.dataclass(frozen=True)
class SessionFiles:
    """The files of one session beside the database (in ``<db>.d``): trial logs, checkpoints, the run lock.

    Built on ``session_path``/``session_dir``: the name is checked when the value is made (a name read back
    from a database too), the properties create nothing, ``make(kind)`` creates or checks a folder."""

    db_path: Path
    session: str

    def __post_init__(self) -> None:
        from tuitune.core.store.safefs import check_name

        check_name(self.session)

    @property
    def logs(self) -> Path:
        return session_path(self.db_path, "logs", self.session)

    @property
    def checkpoints(self) -> Path:
        return session_path(self.db_path, "checkpoints", self.session)

    @property
    def lock(self) -> Path:
        """Names the holder of the run lock (the lock itself is a byte lock on the database file: lock.py)."""
        return files_dir(self.db_path) / "locks" / f"{self.session}.lock"

    @property
    def session_log(self) -> Path:
        """What a ``--detach``ed run prints."""
        return self.logs / "session.log"

    def note(self, text: str) -> None:
        """Appends ``text`` to the session's log, timestamped (the coordinator's notes about itself: packing
        decisions, the time its asks took). The log is for reading: a failure to write it is only logged."""
        import time

        from tuitune.core.store.safefs import append_line

        append_line(self.session_log, f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}")

    def log(self, number: int) -> Path:
        """What trial ``number``'s code printed."""
        return self.logs / f"{number}.log"

    def checkpoint(self, number: int) -> Path:
        return self.checkpoints / f"{number}.pt"

    def make(self, kind: str) -> Path:
        """The session's ``kind`` folder (logs, checkpoints), created or checked to be the user's own."""
        return session_dir(self.db_path, kind, self.session)

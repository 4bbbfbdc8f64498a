"""Provides the SQLite store: every SQL statement of tuitune lives in this module.

One file holds sessions, trials and epoch rows. The file carries an application id and a schema
version; a file that is not ours, is corrupt, or comes from a newer tuitune is refused before
anything is written to it. WAL mode, one connection per thread, one commit per epoch row.
Epoch rows are never deleted: when a trial restarts from an earlier point, the rows after that point
are marked superseded and kept.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from tuitune.core.errors import (
    CorruptDatabaseError,
    NewerDatabaseError,
    NotOurDatabaseError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    StoreError,
    StoreWriteError,
)
from tuitune.core.records import (
    STATE_LAST,
    STATE_ORDER,
    Direction,
    LeaderRow,
    Objectives,
    SessionRecord,
    TrialRecord,
    TrialState,
    TrialSummary,
    best_by,
    is_alive,
    ranked_by,
)
from tuitune.core.store.fs import NetworkFilesystemWarning, network_warning, why_not_writable
from tuitune.core.store.safefs import check_database

APPLICATION_ID = int.from_bytes(b"tTun", "big")
SCHEMA_VERSION = 2


def _schema_2(c: sqlite3.Connection) -> None:
    """Schema 2: liveness (the owner's heartbeat), notes, and commands from other terminals."""
    c.execute("ALTER TABLE sessions ADD COLUMN heartbeat REAL")
    c.execute("ALTER TABLE sessions ADD COLUMN owner TEXT")
    c.execute("ALTER TABLE sessions ADD COLUMN note TEXT")
    c.execute("ALTER TABLE trials ADD COLUMN note TEXT")
    c.execute(
        "CREATE TABLE commands (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL REFERENCES sessions(id),"
        " command TEXT NOT NULL, trial INTEGER, created REAL NOT NULL, done REAL)"
    )
    c.execute("CREATE INDEX idx_commands_pending ON commands (session_id) WHERE done IS NULL")
    c.execute("CREATE INDEX idx_trials_state ON trials (session_id, state)")


# MIGRATIONS[v](conn) takes a database from schema v to v + 1 (inside a transaction); a new file is
# made at schema 1 and taken through every step. tests/reliability keeps a golden file of each version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _schema_2}
COMMANDS = ("pause", "resume", "stop_after_trial", "stop", "abort")
SQLITE_MAGIC = b"SQLite format 3\x00"
DURABLE_EVERY = 1.0  # seconds: epoch rows are fsynced at least this often
# The leaderboard's order of the trials that are not complete (the same as the UI always showed).
_STATE_ORDER = (
    "CASE state " + " ".join(f"WHEN '{state}' THEN {rank}" for state, rank in STATE_ORDER.items())
    + f" ELSE {STATE_LAST} END"
)


def _dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy and torch scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _loads(s: str | None, default: Any = None) -> Any:
    return default if s is None else json.loads(s)


def _reading(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turns what a damaged row does to a read (bad JSON, an unknown state) into a clear error."""
    import functools

    @functools.wraps(fn)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except (sqlite3.DatabaseError, ValueError, TypeError) as e:
            if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
                raise
            raise CorruptDatabaseError(
                f"{self.path} has a damaged row ({type(e).__name__}: {str(e)[:80]}); it was left unchanged. "
                "Restore it from a backup"
            ) from None

    return wrapper


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
    with _LIVE_LOCK:
        live = _LIVE.get(_live_key(p), 0) > 0
    if not live:  # reading the file outside SQLite would drop the locks of this process's connections
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
        app_id = int.from_bytes(header[68:72], "big")
    else:
        app_id = _application_id(p)
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


class Store:
    """The database of one file.

    Thread-safe: each thread gets its own connection. Snapshots returned (records) never change.

    Args:
        path: the database file; created with the schema when it does not exist.
        create: when False, a missing file is an error instead of being created.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        warning = network_warning(self.path)
        if warning:
            warnings.warn(warning, NetworkFilesystemWarning, stacklevel=2)
        check_database(self.path)  # another user's file, or one others can write, is never read as settings
        exists = check_file(self.path)
        if not exists and not create:
            raise StoreError(f"no tuitune database at {self.path}; run a session first or pass --db")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        # Tests inject I/O faults here: called inside each write transaction, just before COMMIT.
        self.fault: Callable[[], None] | None = None
        if not exists:
            why = why_not_writable(self.path)
            if why:
                raise StoreWriteError(
                    f"cannot create the database {self.path}: {why}; give a writable path (--db or TUITUNE_DB)"
                )
            self._create_schema()
        else:
            self.upgrade()
        self._key = _live_key(self.path)
        with _LIVE_LOCK:
            _LIVE[self._key] = _LIVE.get(self._key, 0) + 1
        self._closed = False

    # ---- connections --------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                c.row_factory = sqlite3.Row
                c.execute("PRAGMA busy_timeout = 30000")
                mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as e:
                if "locked" in str(e) or "busy" in str(e):
                    raise
                # WAL needs the -wal and -shm files beside the database: its folder must be writable.
                raise StoreWriteError(
                    f"cannot open the database {self.path}: {why_not_writable(self.path) or e}; "
                    "move it to a writable folder (--db or TUITUNE_DB)"
                ) from None
            if mode.lower() != "wal":
                raise StoreError(
                    f"{self.path}: SQLite refused WAL mode (got {mode}); is it on a network filesystem? "
                    "Put the database on a local disk"
                )
            c.execute("PRAGMA synchronous = FULL")
            self._local.full = True
            c.execute("PRAGMA foreign_keys = ON")
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    @property
    def db(self) -> sqlite_utils.Database:
        d = getattr(self._local, "db", None)
        if d is None:
            d = sqlite_utils.Database(self.conn)
            self._local.db = d
        return d

    def close(self) -> None:
        """Closes every thread's connection (call when no thread uses the store any more)."""
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
            self._conns.clear()
        self._local = threading.local()
        self._release()

    def _release(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        with _LIVE_LOCK:
            n = _LIVE.get(self._key, 0) - 1
            if n > 0:
                _LIVE[self._key] = n
            else:
                _LIVE.pop(self._key, None)

    def __del__(self) -> None:
        # Close the connections now: left to the cycle collector they would outlive this count, and a
        # plain open() of the file in between would drop the POSIX locks they still hold.
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def _sync(self, full: bool) -> None:
        """Chooses this connection's durability for its next commit (not allowed inside a transaction)."""
        c = self.conn
        if getattr(self._local, "full", None) is not full:
            c.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
            self._local.full = full
        if full:
            self._local.last_full = time.monotonic()

    @contextmanager
    def transaction(self, *, durable: bool = True, faults: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, rolled back on any error.

        A write the disk refuses (full, I/O error, read-only) is a StoreWriteError saying so; the
        transaction is rolled back whole, so nothing is half-written.

        Every commit survives the death of the process (kill -9, a dropped SSH connection). A
        ``durable`` commit is also fsynced, and with it every commit before it: trial starts and ends
        are durable, and epoch rows at least once a second (``DURABLE_EVERY``), so a power cut can
        roll back at most the last second of epoch rows, and an fsync per epoch (milliseconds on a
        slow disk) is not paid. ``faults=False`` keeps the tests' injected write faults (``fault``) for
        the data: the heartbeat, written from its own thread, must not take them.
        """
        c = self.conn
        if not durable and time.monotonic() - getattr(self._local, "last_full", 0.0) >= DURABLE_EVERY:
            durable = True
        self._sync(durable)
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
                if self.fault is not None and faults:
                    self.fault()
                c.execute("COMMIT")
            except BaseException:
                if c.in_transaction:
                    try:
                        c.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
        except sqlite3.OperationalError as e:
            msg = str(e)
            if "locked" in msg or "busy" in msg:
                raise StoreWriteError(
                    f"{self.path} stayed locked by another process for 30 s ({msg}); try again when it is done"
                ) from None
            raise StoreWriteError(
                f"could not write to {self.path}: {msg}. Everything committed before is kept; "
                "free disk space or fix the file's permissions, then resume the session"
            ) from None

    def _create_schema(self) -> None:
        c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            c.execute("BEGIN IMMEDIATE")
            # Another process may have created it between our check and this lock.
            if c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                c.execute("ROLLBACK")
                check_file(self.path)
                return
            db = sqlite_utils.Database(c)
            db.table("tuitune_meta").create({"key": str, "value": str}, pk="key")
            db.table("sessions").create(
                {
                    "id": int,
                    "name": str,
                    "strategy": str,
                    "options": str,
                    "space": str,
                    "preset": str,
                    "defaults": str,
                    "metric": str,
                    "direction": str,
                    "seed": int,
                    "max_epochs": int,
                    "n_trials": int,
                    "state": str,
                    "message": str,
                    "info": str,
                    "created": float,
                    "updated": float,
                },
                pk="id",
                not_null={"name", "strategy", "metric", "direction", "state"},
            )
            db.table("sessions").create_index(["name"], unique=True)
            db.table("trials").create(
                {
                    "id": int,
                    "session_id": int,
                    "number": int,
                    "state": str,
                    "config": str,
                    "budget": int,
                    "value": float,
                    "meta": str,
                    "reason": str,
                    "traceback": str,
                    "info": str,
                    "started": float,
                    "finished": float,
                    "updated": float,
                },
                pk="id",
                foreign_keys=[("session_id", "sessions", "id")],
                not_null={"session_id", "number", "state", "config"},
            )
            db.table("trials").create_index(["session_id", "number"], unique=True)
            db.table("epochs").create(
                {
                    "id": int,
                    "trial_id": int,
                    "epoch": int,
                    "metrics": str,
                    "time": float,
                    "superseded": int,
                },
                pk="id",
                foreign_keys=[("trial_id", "trials", "id")],
                not_null={"trial_id", "epoch", "metrics"},
                defaults={"superseded": 0},
            )
            # One live row per (trial, epoch); superseded rows of earlier attempts are kept beside it.
            c.execute(
                "CREATE UNIQUE INDEX idx_epochs_live ON epochs (trial_id, epoch) WHERE superseded = 0"
            )
            from tuitune import __version__

            db.table("tuitune_meta").insert_all(
                [
                    {"key": "created_by", "value": __version__},
                    {"key": "created", "value": str(time.time())},
                ]
            )
            for version in range(1, SCHEMA_VERSION):
                MIGRATIONS[version](c)
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            c.execute("COMMIT")
            c.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        finally:
            c.close()

    # ---- schema upgrades -----------------------------------------------------------------------
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def upgrade(self) -> Path | None:
        """Brings an older schema up to SCHEMA_VERSION, after a backup copy. Returns the backup's path.

        Each step of MIGRATIONS runs in one transaction with the version bump, so a crash leaves the
        file at the old or the new version, never between. A second call is a no-op.
        """
        version = self.schema_version()
        if version >= SCHEMA_VERSION:
            return None
        backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
        n = 1
        while backup.exists():
            n += 1
            backup = self.path.with_name(f"{self.path.name}.v{version}.{n}.bak")
        dst = sqlite3.connect(backup)
        try:
            self.conn.backup(dst)
        finally:
            dst.close()
        while version < SCHEMA_VERSION:
            step = MIGRATIONS[version]
            with self.transaction() as c:
                step(c)
                c.execute(f"PRAGMA user_version = {version + 1}")
            version += 1
        return backup

    # ---- sessions -----------------------------------------------------------------------------
    def _session_row(self, name: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r[0] for r in self.conn.execute("SELECT name FROM sessions ORDER BY updated DESC LIMIT 8")]
            hint = f"; sessions here: {', '.join(names)}" if names else "; this database has no sessions yet"
            raise SessionNotFoundError(f"no session named '{name}' in {self.path}{hint}")
        return row

    def _session_id(self, name: str) -> int:
        cache = self.__dict__.setdefault("_sid_cache", {})
        sid = cache.get(name)
        if sid is None:
            sid = int(self._session_row(name)["id"])
            cache[name] = sid
        return sid

    def session_exists(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sessions WHERE name = ?", (name,)).fetchone() is not None

    def create_session(
        self,
        name: str,
        *,
        strategy: str,
        options: dict[str, Any],
        space: dict[str, Any],
        metric: str,
        direction: str,
        seed: int,
        max_epochs: int,
        n_trials: int | None,
        preset: dict[str, Any] | None = None,
        defaults: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> SessionRecord:
        now = time.time()
        try:
            with self.transaction() as c:
                c.execute(
                    "INSERT INTO sessions (name, strategy, options, space, preset, defaults, metric, direction, seed,"
                    " max_epochs, n_trials, state, message, info, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', NULL, ?, ?, ?)",
                    (
                        name,
                        strategy,
                        _dumps(options),
                        _dumps(space),
                        _dumps(preset or {}),
                        _dumps(defaults or {}),
                        metric,
                        direction,
                        int(seed),
                        int(max_epochs),
                        n_trials,
                        _dumps(info or {}),
                        now,
                        now,
                    ),
                )
        except sqlite3.IntegrityError:
            raise SessionExistsError(
                f"a session named '{name}' already exists in {self.path}; resume it with "
                f"'{resume_command(name, self.path)}' or choose another name"
            ) from None
        return self.session(name)

    def update_session(self, name: str, **fields: Any) -> None:
        allowed = {"state", "message", "n_trials", "options", "info", "max_epochs"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update session fields {sorted(bad)}")
        cols, vals = [], []
        for k, v in fields.items():
            cols.append(f"{k} = ?")
            vals.append(_dumps(v) if k in ("options", "info") else v)
        cols.append("updated = ?")
        vals.append(time.time())
        sid = self._session_id(name)
        with self.transaction() as c:
            c.execute(f"UPDATE sessions SET {', '.join(cols)} WHERE id = ?", (*vals, sid))

    def delete_session(self, name: str, *, files: bool = True) -> None:
        """Deletes a session with its trials and epoch rows (the user asked, or its setup failed at once),
        and (``files``) its folders beside the database: checkpoints and logs. A session another process
        runs is refused."""
        rec = self.session(name)
        if rec.alive:
            raise SessionError(
                f"session '{name}' is being run by process {rec.owner or '?'}; stop it before deleting it"
            )
        sid = self._session_id(name)
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE trial_id IN (SELECT id FROM trials WHERE session_id = ?)", (sid,))
            c.execute("DELETE FROM trials WHERE session_id = ?", (sid,))
            c.execute("DELETE FROM sessions WHERE id = ?", (sid,))
        self.__dict__.get("_sid_cache", {}).pop(name, None)
        if files:
            for folder in self.session_folders(name):
                shutil.rmtree(folder, ignore_errors=True)

    def session_folders(self, name: str) -> list[Path]:
        """The folders a session keeps beside the database: its checkpoints and its logs."""
        return [files_dir(self.path) / "checkpoints" / name, files_dir(self.path) / "logs" / name]

    # ---- liveness, commands, notes ---------------------------------------------------------------
    def heartbeat(self, name: str, owner: str | None = None, *, alive: bool = True) -> None:
        """The owner's sign of life (at least once a second while it runs); ``alive=False`` clears it.

        Not fsynced and not touching ``updated``: a lost heartbeat after a power cut only means the
        session reads as interrupted, which it then is.
        """
        sid = self._session_id(name)
        with self.transaction(durable=False, faults=False) as c:
            if alive:
                c.execute("UPDATE sessions SET heartbeat = ?, owner = coalesce(?, owner) WHERE id = ?", (time.time(), owner, sid))
            else:
                c.execute("UPDATE sessions SET heartbeat = NULL, owner = NULL WHERE id = ?", (sid,))

    def add_command(self, name: str, command: str, trial: int | None = None) -> None:
        """Queues a command (pause, resume, stop_after_trial, stop, abort) for the process running ``name``."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
        sid = self._session_id(name)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO commands (session_id, command, trial, created) VALUES (?, ?, ?, ?)",
                (sid, command, trial, time.time()),
            )

    def take_commands(self, name: str) -> list[tuple[str, int | None]]:
        """The session's queued commands, oldest first, marked done (the owner calls this)."""
        sid = self._session_id(name)
        if self.conn.execute("SELECT 1 FROM commands WHERE session_id = ? AND done IS NULL LIMIT 1", (sid,)).fetchone() is None:
            return []
        with self.transaction() as c:
            rows = c.execute(
                "SELECT id, command, trial FROM commands WHERE session_id = ? AND done IS NULL ORDER BY id", (sid,)
            ).fetchall()
            c.execute("UPDATE commands SET done = ? WHERE session_id = ? AND done IS NULL", (time.time(), sid))
        return [(r["command"], r["trial"]) for r in rows]

    def set_note(self, name: str, text: str | None, trial: int | None = None) -> None:
        """Sets (or, with None or blank text, clears) the free-text note of a session or of one of its trials."""
        text = text.strip() if text and text.strip() else None
        with self.transaction() as c:
            if trial is None:
                c.execute("UPDATE sessions SET note = ? WHERE id = ?", (text, self._session_id(name)))
            else:
                c.execute("UPDATE trials SET note = ? WHERE id = ?", (text, self._trial_id(name, trial)))

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` of this thread's connection: it changes when another
        connection commits, so a follower polls it nearly for free and reads only after a change."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _session_record(self, row: sqlite3.Row, n_done: int = 0, best: float | None = None) -> SessionRecord:
        heartbeat = row["heartbeat"]
        state = row["state"]
        if state in ("running", "paused") and not is_alive(heartbeat):
            state = "interrupted"  # its owner died without a word: nobody needs to resume it to see so
        return SessionRecord(
            name=row["name"],
            strategy=row["strategy"],
            options=_loads(row["options"], {}),
            space=_loads(row["space"], {}),
            metric=row["metric"],
            direction=row["direction"],
            seed=row["seed"],
            max_epochs=row["max_epochs"],
            n_trials=row["n_trials"],
            state=state,
            preset=_loads(row["preset"], {}),
            defaults=_loads(row["defaults"], {}),
            created=row["created"],
            updated=row["updated"],
            n_done=n_done,
            best_value=best,
            message=row["message"],
            info=_loads(row["info"], {}),
            heartbeat=heartbeat,
            owner=row["owner"],
            note=row["note"],
        )

    @_reading
    def session(self, name: str) -> SessionRecord:
        row = self._session_row(name)
        n_done, best = self._progress(row["id"], row["direction"], row)
        return self._session_record(row, n_done, best)

    def _progress(self, sid: int, direction: str, row: sqlite3.Row | None = None) -> tuple[int, float | None]:
        n = self.conn.execute(
            "SELECT count(*) FROM trials WHERE session_id = ? AND state IN ('complete', 'pruned', 'failed')", (sid,)
        ).fetchone()[0]
        obj = _objectives(row) if row is not None else None
        if obj is not None and not obj.plain:
            best_t = best_by(self._complete_light(sid), obj)
            return int(n), best_t.value if best_t is not None else None
        agg = Direction(direction).sql
        best = self.conn.execute(
            f"SELECT {agg}(value) FROM trials WHERE session_id = ? AND state = 'complete'", (sid,)
        ).fetchone()[0]
        return int(n), best

    @_reading
    def sessions(self) -> list[SessionRecord]:
        """Every session, the most recently updated first."""
        out = []
        for row in self.conn.execute("SELECT * FROM sessions ORDER BY updated DESC, id DESC").fetchall():
            n, best = self._progress(row["id"], row["direction"], row)
            out.append(self._session_record(row, n, best))
        return out

    # ---- trials -------------------------------------------------------------------------------
    def new_trial(
        self,
        session: str,
        *,
        config: dict[str, Any],
        budget: int,
        meta: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
    ) -> TrialRecord:
        """Creates the session's next trial, state running, and commits it."""
        sid = self._session_id(session)
        now = time.time()
        with self.transaction() as c:
            number = c.execute(
                "SELECT coalesce(max(number), -1) + 1 FROM trials WHERE session_id = ?", (sid,)
            ).fetchone()[0]
            c.execute(
                "INSERT INTO trials (session_id, number, state, config, budget, meta, info, started, updated)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                (sid, number, _dumps(config), int(budget), _dumps(meta or {}), _dumps(info or {}), now, now),
            )
            c.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, sid))
        return self.trial(session, number)

    def start_trial(
        self, session: str, number: int, *, budget: int, meta: dict[str, Any] | None = None
    ) -> TrialRecord:
        """Marks an existing trial running again (a promotion or a re-run), with its new budget."""
        tid = self._trial_id(session, number)
        now = time.time()
        with self.transaction() as c:
            if meta is None:
                c.execute(
                    "UPDATE trials SET state = 'running', budget = ?, reason = NULL, traceback = NULL,"
                    " finished = NULL, updated = ? WHERE id = ?",
                    (int(budget), now, tid),
                )
            else:
                c.execute(
                    "UPDATE trials SET state = 'running', budget = ?, meta = ?, reason = NULL, traceback = NULL,"
                    " finished = NULL, updated = ? WHERE id = ?",
                    (int(budget), _dumps(meta), now, tid),
                )
        return self.trial(session, number)

    def supersede_epochs(self, session: str, number: int, after: int) -> int:
        """Marks the live epoch rows past ``after`` superseded (a restart from that point). Returns how many."""
        tid = self._trial_id(session, number)
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE epochs SET superseded = 1 WHERE trial_id = ? AND superseded = 0 AND epoch > ?",
                (tid, int(after)),
            )
            return cur.rowcount

    def add_epoch(self, session: str, number: int, epoch: int, metrics: dict[str, Any]) -> None:
        """Commits one epoch row (replacing a live row of the same epoch, which is kept as superseded)."""
        tid = self._trial_id(session, number)
        now = time.time()
        with self.transaction(durable=False) as c:
            c.execute(
                "UPDATE epochs SET superseded = 1 WHERE trial_id = ? AND superseded = 0 AND epoch = ?",
                (tid, int(epoch)),
            )
            c.execute(
                "INSERT INTO epochs (trial_id, epoch, metrics, time, superseded) VALUES (?, ?, ?, ?, 0)",
                (tid, int(epoch), _dumps(metrics), now),
            )
            c.execute("UPDATE trials SET updated = ? WHERE id = ?", (now, tid))

    def finish_trial(
        self,
        session: str,
        number: int,
        *,
        state: TrialState | str,
        value: float | None = None,
        reason: str | None = None,
        traceback: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> TrialRecord:
        tid = self._trial_id(session, number)
        state = TrialState(state)
        if value is not None and not math.isfinite(value):
            value = None
        now = time.time()
        with self.transaction() as c:
            sets = "state = ?, value = ?, reason = ?, traceback = ?, updated = ?, finished = ?"
            args: list[Any] = [state.value, value, reason, traceback, now, now if state.is_finished() else None]
            if info is not None:
                sets += ", info = ?"
                args.append(_dumps(info))
            c.execute(f"UPDATE trials SET {sets} WHERE id = ?", (*args, tid))
            c.execute("UPDATE sessions SET updated = ? WHERE id = (SELECT session_id FROM trials WHERE id = ?)", (now, tid))
        return self.trial(session, number)

    def set_trial_states(self, session: str, states: dict[int, TrialState]) -> None:
        """Changes the state of several trials in one transaction (Hyperband's rung decisions)."""
        if not states:
            return
        sid = self._session_id(session)
        now = time.time()
        with self.transaction() as c:
            for number, state in states.items():
                state = TrialState(state)
                c.execute(
                    "UPDATE trials SET state = ?, updated = ?, finished = ? WHERE session_id = ? AND number = ?",
                    (state.value, now, now if state.is_finished() else None, sid, int(number)),
                )

    def interrupt_running(self, session: str, reason: str = "the process running it ended") -> list[int]:
        """Marks the session's running trials interrupted (their process died). Returns their numbers."""
        sid = self._session_id(session)
        with self.transaction() as c:
            nums = [
                r[0]
                for r in c.execute(
                    "SELECT number FROM trials WHERE session_id = ? AND state = 'running' ORDER BY number", (sid,)
                )
            ]
            c.execute(
                "UPDATE trials SET state = 'interrupted', reason = ?, updated = ? WHERE session_id = ? AND state = 'running'",
                (reason, time.time(), sid),
            )
        return nums

    def _trial_id(self, session: str, number: int) -> int:
        sid = self._session_id(session)
        row = self.conn.execute("SELECT id FROM trials WHERE session_id = ? AND number = ?", (sid, int(number))).fetchone()
        if row is None:
            raise StoreError(f"session '{session}' has no trial {number}")
        return int(row[0])

    def _epochs_of(self, trial_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        ids = list(trial_ids)
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return out
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = (
                "SELECT trial_id, epoch, metrics, time FROM epochs WHERE superseded = 0 AND trial_id IN "
                f"({','.join('?' * len(chunk))}) ORDER BY trial_id, epoch"
            )
            for r in self.conn.execute(q, chunk):
                row = {"epoch": r["epoch"], **_loads(r["metrics"], {}), "time": r["time"]}
                out[r["trial_id"]].append(row)
        return out

    def _trial_record(self, row: sqlite3.Row, epochs: list[dict[str, Any]]) -> TrialRecord:
        return TrialRecord(
            number=row["number"],
            state=TrialState(row["state"]),
            config=_loads(row["config"], {}),
            value=row["value"],
            budget=row["budget"],
            epochs=tuple(epochs),
            meta=_loads(row["meta"], {}),
            reason=row["reason"],
            traceback=row["traceback"],
            started=row["started"],
            finished=row["finished"],
            info=_loads(row["info"], {}),
            note=row["note"],
            updated=row["updated"],
        )

    @_reading
    def trial(self, session: str, number: int) -> TrialRecord:
        sid = self._session_id(session)
        row = self.conn.execute("SELECT * FROM trials WHERE session_id = ? AND number = ?", (sid, int(number))).fetchone()
        if row is None:
            raise StoreError(f"session '{session}' has no trial {number}")
        rec = self._trial_record(row, self._epochs_of([row["id"]])[row["id"]])
        return rec if rec.state != TrialState.RUNNING or self._owner_alive(sid) else _dead(rec)

    @_reading
    def trials(self, session: str, *, with_epochs: bool = True) -> list[TrialRecord]:
        """The session's trials in number order, each with its live epoch rows."""
        sid = self._session_id(session)
        rows = self.conn.execute("SELECT * FROM trials WHERE session_id = ? ORDER BY number", (sid,)).fetchall()
        eps = self._epochs_of(r["id"] for r in rows) if with_epochs else {}
        out = [self._trial_record(r, eps.get(r["id"], [])) for r in rows]
        if any(t.state == TrialState.RUNNING for t in out) and not self._owner_alive(sid):
            out = [_dead(t) for t in out]
        return out

    def add_trials(self, session: str, trials: Iterable[TrialRecord]) -> int:
        """Writes finished trials with their epoch rows in one transaction, numbered after the last one.

        For imports, tests and benchmarks that need thousands of trials in a second; the runner
        writes trial by trial. Each epoch row's ``time`` is kept when given. Returns how many.
        """
        sid = self._session_id(session)
        now = time.time()
        n = 0
        with self.transaction() as c:
            first = c.execute(
                "SELECT coalesce(max(number), -1) + 1 FROM trials WHERE session_id = ?", (sid,)
            ).fetchone()[0]
            for i, t in enumerate(trials):
                cur = c.execute(
                    "INSERT INTO trials (session_id, number, state, config, budget, value, meta, reason, info,"
                    " started, finished, updated, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sid, first + i, TrialState(t.state).value, _dumps(t.config), int(t.budget), t.value,
                        _dumps(t.meta), t.reason, _dumps(t.info), t.started, t.finished, now, t.note,
                    ),
                )
                tid = cur.lastrowid
                c.executemany(
                    "INSERT INTO epochs (trial_id, epoch, metrics, time, superseded) VALUES (?, ?, ?, ?, 0)",
                    [
                        (tid, int(e["epoch"]), _dumps({k: v for k, v in e.items() if k not in ("epoch", "time")}),
                         e.get("time", now))
                        for e in t.epochs
                    ],
                )
                n += 1
            c.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, sid))
        return n

    @_reading
    def trial_summaries(self, session: str) -> dict[int, TrialSummary]:
        """Per trial number, what a leaderboard row needs from its epoch rows, computed in SQL: the last
        epoch, the training seconds (the sum of the epochs' ``epoch_seconds``, None when an epoch
        lacks it) and the best ``val_acc``."""
        sid = self._session_id(session)
        ids = {r[0]: r[1] for r in self.conn.execute("SELECT id, number FROM trials WHERE session_id = ?", (sid,))}
        return {ids[i]: s for i, s in self._summaries(sid, list(ids)).items()}

    @_reading
    def metric_names(self, session: str) -> list[str]:
        """The metric names the session's trials report (from a sample of its latest epoch rows)."""
        sid = self._session_id(session)
        names: list[str] = []
        for r in self.conn.execute(
            "SELECT e.metrics FROM epochs e JOIN trials t ON e.trial_id = t.id WHERE t.session_id = ?"
            " ORDER BY e.id DESC LIMIT 50",
            (sid,),
        ):
            for k in _loads(r[0], {}):
                if k not in names:
                    names.append(k)
        return names

    @_reading
    def epochs_of(self, session: str, numbers: Iterable[int]) -> dict[int, tuple[dict[str, Any], ...]]:
        """The live epoch rows of some of a session's trials (loaded on demand: a chart of a few)."""
        sid = self._session_id(session)
        nums = [int(n) for n in numbers]
        out: dict[int, tuple[dict[str, Any], ...]] = {}
        for i in range(0, len(nums), 500):
            chunk = nums[i : i + 500]
            ids = {
                r[0]: r[1]
                for r in self.conn.execute(
                    f"SELECT id, number FROM trials WHERE session_id = ? AND number IN ({','.join('?' * len(chunk))})",
                    (sid, *chunk),
                )
            }
            for tid, rows in self._epochs_of(ids).items():
                out[ids[tid]] = tuple(rows)
        return out

    # ---- the leaderboard: ordered and paged in SQL (a session may hold 10,000 trials) ----------
    @_reading
    def leaderboard_order(self, session: str, order: str = "rank") -> list[int]:
        """The session's trial numbers in leaderboard order, sorted in SQL.

        ``rank``: complete trials best first, then running, paused, interrupted, pruned and failed ones
        by number; ``trial``: by number; ``param:<name>``: by that parameter's value (numbers before
        text, missing last), then by number. (By training time: sort ``trial_seconds``.)
        """
        sid, sign = self._sid_sign(session)
        q: str
        args: list[Any]
        obj = _objectives(self._session_row(session))
        if order == "rank" and not obj.plain:
            # Several objectives or constraints: ranked in Python (records.ranked_by), the rest as below;
            # an infeasible complete trial comes after the ranked ones, before the unfinished.
            board = [t.number for t in ranked_by(self._complete_light(sid), obj)]
            on_board = set(board)
            rest = [r[0] for r in self.conn.execute(
                "SELECT number FROM trials WHERE session_id = ? ORDER BY"
                f" CASE WHEN state = 'complete' AND value IS NOT NULL THEN 0 ELSE 1 END, {_STATE_ORDER}, number",
                (sid,),
            )]
            return board + [n for n in rest if n not in on_board]
        if order == "trial":
            q, args = "SELECT number FROM trials WHERE session_id = ? ORDER BY number", [sid]
        elif order.startswith("param:"):
            path = '$."' + order.removeprefix("param:").replace('"', "") + '"'
            q = (
                "SELECT number, json_extract(config, ?) AS v FROM trials WHERE session_id = ?"
                " ORDER BY v IS NULL, v, number"
            )
            args = [path, sid]
        else:
            q = (
                "SELECT number FROM trials WHERE session_id = ? ORDER BY"
                " CASE WHEN state = 'complete' AND value IS NOT NULL THEN 0 ELSE 1 END,"
                " CASE WHEN state = 'complete' AND value IS NOT NULL THEN value * ? END,"
                f" {_STATE_ORDER}, number"
            )
            args = [sid, sign]
        return [r[0] for r in self.conn.execute(q, args)]

    @_reading
    def leaderboard_rows(self, session: str, numbers: Iterable[int]) -> dict[int, LeaderRow]:
        """The rows of some trials (those on screen): each trial without its epoch rows and with its
        summary (``trial_summaries``); the rank is the caller's (its place in the ``rank`` order)."""
        sid = self._session_id(session)
        nums = [int(n) for n in numbers]
        out: dict[int, LeaderRow] = {}
        alive = self._owner_alive(sid)
        for i in range(0, len(nums), 500):
            chunk = nums[i : i + 500]
            rows = self.conn.execute(
                f"SELECT * FROM trials WHERE session_id = ? AND number IN ({','.join('?' * len(chunk))})",
                (sid, *chunk),
            ).fetchall()
            summaries = self._summaries(sid, [r["id"] for r in rows])
            for r in rows:
                t = self._trial_record(r, [])
                out[t.number] = LeaderRow(t if alive else _dead(t), summaries.get(r["id"], TrialSummary()))
        return out

    def leaderboard_page(self, session: str, order: str, offset: int, limit: int) -> list[LeaderRow]:
        """One page of the leaderboard in ``order`` (see ``leaderboard_order``)."""
        ranked = self.leaderboard_order(session, "rank")
        ranks = {n: i + 1 for i, n in enumerate(ranked[: self.count_ranked(session)])}
        if order == "time":
            secs = self.trial_seconds(session)
            ordered = sorted(secs, key=lambda n: (-(secs[n][1] or 0.0), n))
        else:
            ordered = ranked if order == "rank" else self.leaderboard_order(session, order)
        numbers = ordered[offset : offset + limit]
        rows = self.leaderboard_rows(session, numbers)
        return [dataclasses.replace(rows[n], rank=ranks.get(n)) for n in numbers if n in rows]

    @_reading
    def count_complete(self, session: str) -> int:
        """How many complete trials with a value the session has (the ranked ones)."""
        sid = self._session_id(session)
        return int(self.conn.execute(
            "SELECT count(*) FROM trials WHERE session_id = ? AND state = 'complete' AND value IS NOT NULL", (sid,)
        ).fetchone()[0])

    @_reading
    def count_ranked(self, session: str) -> int:
        """How many trials the leaderboard ranks: the complete ones with a value, less the infeasible."""
        row = self._session_row(session)
        obj = _objectives(row)
        if obj.plain:
            return self.count_complete(session)
        return len(ranked_by(self._complete_light(int(row["id"])), obj))

    def _complete_light(self, sid: int) -> list[TrialRecord]:
        """The complete trials with a value, without their epoch rows (their info holds their objectives)."""
        rows = self.conn.execute(
            "SELECT * FROM trials WHERE session_id = ? AND state = 'complete' AND value IS NOT NULL ORDER BY number",
            (sid,),
        ).fetchall()
        return [self._trial_record(r, []) for r in rows]

    def _sid_sign(self, session: str) -> tuple[int, float]:
        row = self._session_row(session)
        return int(row["id"]), Direction(row["direction"]).sign

    def _summaries(self, sid: int, trial_ids: list[int]) -> dict[int, TrialSummary]:
        out: dict[int, TrialSummary] = {}
        for i in range(0, len(trial_ids), 500):
            chunk = trial_ids[i : i + 500]
            q = (
                "SELECT t.id, max(e.epoch), count(e.id), sum(json_extract(e.metrics, '$.epoch_seconds')),"
                " count(json_extract(e.metrics, '$.epoch_seconds')), max(json_extract(e.metrics, '$.val_acc'))"
                " FROM trials t LEFT JOIN epochs e ON e.trial_id = t.id AND e.superseded = 0"
                f" WHERE t.id IN ({','.join('?' * len(chunk))}) GROUP BY t.id"
            )
            for r in self.conn.execute(q, chunk):
                out[r[0]] = TrialSummary(
                    last_epoch=int(r[1] or 0),
                    train_seconds=float(r[3]) if r[2] and r[4] == r[2] else None,
                    best_acc=float(r[5]) if r[5] is not None else None,
                )
        return out

    @_reading
    def state_counts(self, session: str) -> dict[str, int]:
        """How many trials the session has in each state (a dead owner's running trials count as interrupted)."""
        sid = self._session_id(session)
        out = {r[0]: int(r[1]) for r in self.conn.execute(
            "SELECT state, count(*) FROM trials WHERE session_id = ? GROUP BY state", (sid,)
        )}
        if out.get("running") and not self._owner_alive(sid):
            out["interrupted"] = out.get("interrupted", 0) + out.pop("running")
        return out

    @_reading
    def best_trial(self, session: str) -> TrialRecord | None:
        """The complete trial with the best value (the lowest number among equals), with its epochs."""
        sid, sign = self._sid_sign(session)
        obj = _objectives(self._session_row(session))
        if not obj.plain:
            best = best_by(self._complete_light(sid), obj)
            return None if best is None else self.trial(session, best.number)
        row = self.conn.execute(
            "SELECT number FROM trials WHERE session_id = ? AND state = 'complete' AND value IS NOT NULL"
            " ORDER BY value * ?, number LIMIT 1",
            (sid, sign),
        ).fetchone()
        return None if row is None else self.trial(session, row[0])

    @_reading
    def complete_values(self, session: str, param: str | None = None) -> list[tuple[int, float, Any]]:
        """(number, value, the value of ``param`` or None) of every complete trial, by number."""
        sid = self._session_id(session)
        path = '$."' + (param or "").replace('"', "") + '"'
        return [
            (r[0], r[1], r[2] if param else None)
            for r in self.conn.execute(
                "SELECT number, value, json_extract(config, ?) FROM trials"
                " WHERE session_id = ? AND state = 'complete' AND value IS NOT NULL ORDER BY number",
                (path, sid),
            )
        ]

    @_reading
    def complete_configs(self, session: str) -> list[tuple[dict[str, Any], float]]:
        """(config, value) of every complete trial with a value, by number (parameter importance)."""
        sid = self._session_id(session)
        return [
            (_loads(r[0], {}), float(r[1]))
            for r in self.conn.execute(
                "SELECT config, value FROM trials WHERE session_id = ? AND state = 'complete' AND value IS NOT NULL"
                " ORDER BY number",
                (sid,),
            )
        ]

    @_reading
    def sort_rows(self, session: str, params: list[str]) -> list[tuple[int, str, float | None, dict[str, Any]]]:
        """(number, state, value, {param: value}) of every trial, for sorting in memory: the parameters
        are taken out of the config by SQLite (no JSON parsed in Python), no epoch rows."""
        sid = self._session_id(session)
        alive = self._owner_alive(sid)
        cols = "".join(", json_extract(config, ?)" for _ in params)
        paths = ['$."' + p.replace('"', "") + '"' for p in params]
        return [
            (r[0], "interrupted" if r[1] == "running" and not alive else r[1], r[2], dict(zip(params, r[3:])))
            for r in self.conn.execute(
                f"SELECT number, state, value{cols} FROM trials WHERE session_id = ?", (*paths, sid)
            )
        ]

    @_reading
    def trial_seconds(self, session: str) -> dict[int, tuple[str, float | None]]:
        """Per trial number: (its state, its training seconds).

        Training time is the sum of the epochs' ``epoch_seconds`` (a trial whose epochs lack it counts
        its wall time from start to end): pauses, waits at a rung and time the app was closed are out.
        """
        sid = self._session_id(session)
        rows = self.conn.execute(
            "SELECT t.number, t.state, coalesce(s.secs, t.finished - t.started) FROM trials t LEFT JOIN"
            " (SELECT e.trial_id, sum(json_extract(e.metrics, '$.epoch_seconds')) AS secs FROM epochs e"
            " JOIN trials u ON e.trial_id = u.id WHERE u.session_id = ? AND e.superseded = 0 GROUP BY e.trial_id) s"
            " ON s.trial_id = t.id WHERE t.session_id = ?",
            (sid, sid),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    @_reading
    def budgets(self, session: str) -> list[int]:
        """The distinct epoch budgets the session's trials were given (Hyperband's rungs among them)."""
        sid = self._session_id(session)
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT budget FROM trials WHERE session_id = ? ORDER BY budget", (sid,)
        )]
    @_reading
    def trials_since(self, session: str, since: float | None) -> list[TrialRecord]:
        """The trials whose row changed at or after ``since`` (a ``TrialRecord.updated``), with their epochs."""
        if since is None:
            return self.trials(session)
        sid = self._session_id(session)
        rows = self.conn.execute(
            "SELECT * FROM trials WHERE session_id = ? AND updated >= ? ORDER BY number", (sid, since)
        ).fetchall()
        eps = self._epochs_of(r["id"] for r in rows)
        out = [self._trial_record(r, eps.get(r["id"], [])) for r in rows]
        if any(t.state == TrialState.RUNNING for t in out) and not self._owner_alive(sid):
            out = [_dead(t) for t in out]
        return out

    def _owner_alive(self, sid: int) -> bool:
        row = self.conn.execute("SELECT heartbeat FROM sessions WHERE id = ?", (sid,)).fetchone()
        return row is not None and is_alive(row[0])

    def count_epochs(self, session: str, *, superseded: bool = False) -> int:
        sid = self._session_id(session)
        q = "SELECT count(*) FROM epochs e JOIN trials t ON e.trial_id = t.id WHERE t.session_id = ?"
        if not superseded:
            q += " AND e.superseded = 0"
        return int(self.conn.execute(q, (sid,)).fetchone()[0])

    def integrity_check(self) -> list[str]:
        return [r[0] for r in self.conn.execute("PRAGMA integrity_check")]

    def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT key, value FROM tuitune_meta")}


def _objectives(row: sqlite3.Row) -> Objectives:
    """A session row's objectives and constraints (records.Objectives: the one home of their rules)."""
    return Objectives.of(row["metric"], row["direction"], _loads(row["options"], {}))


def _dead(t: TrialRecord) -> TrialRecord:
    """A trial stored 'running' whose session's owner stopped beating: shown interrupted."""
    if t.state != TrialState.RUNNING:
        return t
    import dataclasses

    return dataclasses.replace(t, state=TrialState.INTERRUPTED, reason=t.reason or "the process running it ended")


def default_db_path() -> Path:
    """``$TUITUNE_DB``, else the platform's user data directory (``~/.local/share/tuitune/tuitune.db``)."""
    env = os.environ.get("TUITUNE_DB")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("tuitune", appauthor=False)) / "tuitune.db"


def db_option(db_path: str | os.PathLike[str] | None) -> list[str]:
    """``["--db", PATH]`` when ``db_path`` is not the default database, else ``[]``: what a printed
    command needs so that it works when pasted."""
    if db_path is None:
        return []
    path = Path(db_path).expanduser().resolve()
    return [] if path == default_db_path().expanduser().resolve() else ["--db", str(path)]


def resume_command(name: str, db_path: str | os.PathLike[str] | None = None, *extra: str) -> str:
    """``tuitune resume NAME [extra...] [--db PATH]``, pasteable (see db_option)."""
    import shlex

    return " ".join(shlex.quote(w) for w in ["tuitune", "resume", name, *extra, *db_option(db_path)])


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

    def log(self, number: int) -> Path:
        """What trial ``number``'s code printed."""
        return self.logs / f"{number}.log"

    def checkpoint(self, number: int) -> Path:
        return self.checkpoints / f"{number}.pt"

    def make(self, kind: str) -> Path:
        """The session's ``kind`` folder (logs, checkpoints), created or checked to be the user's own."""
        return session_dir(self.db_path, kind, self.session)

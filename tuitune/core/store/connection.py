"""Provides the store's base: its file opened and counted, one connection per thread, durable transactions.

``StoreBase`` owns the connections and the clock every written timestamp comes from; the schema,
sessions, trials and queries build on it (``tuitune.core.store.store.Store`` gathers them).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from tuitune.core.errors import (
    CorruptDatabaseError,
    StoreError,
    StoreWriteError,
)
from tuitune.core.store.files import _LIVE, _LIVE_LOCK, _live_key, check_file
from tuitune.core.store.fs import NetworkFilesystemWarning, network_warning, why_not_writable
from tuitune.core.store.safefs import check_database

DURABLE_EVERY = 1.0  # seconds: epoch rows are fsynced at least this often


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
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
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




class StoreBase:
    """The database of one file.

    Thread-safe: each thread gets its own connection. Snapshots returned (records) never change.

    Args:
        path: the database file; created with the schema when it does not exist.
        create: when False, a missing file is an error instead of being created.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path).expanduser()
        self.clock = clock  # every timestamp the store writes (a test gives its own)
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


    def _create_schema(self) -> None:  # pragma: no cover - schema.SchemaStore's
        raise NotImplementedError

    def upgrade(self) -> Path | None:  # pragma: no cover - schema.SchemaStore's
        raise NotImplementedError

"""Provides the store's schema: a new file's tables, and the migrations that bring an older one up to date."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from tuitune.core.store.connection import StoreBase
from tuitune.core.store.files import APPLICATION_ID, SCHEMA_VERSION, check_file
from tuitune.core.store.safefs import open_private


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


_TYPES = {"int": int, "str": str, "float": float}

# Schema 1's tables: columns as "name type" (id the primary key), then sqlite-utils' create() options.
_SCHEMA_1: tuple[tuple[str, str, dict], ...] = (
    ("tuitune_meta", "key str, value str", {"pk": "key"}),
    ("sessions",
     "id int, name str, strategy str, options str, space str, preset str, defaults str, metric str, direction str,"
     " seed int, max_epochs int, n_trials int, state str, message str, info str, created float, updated float",
     {"not_null": {"name", "strategy", "metric", "direction", "state"}}),
    ("trials",
     "id int, session_id int, number int, state str, config str, budget int, value float, meta str, reason str,"
     " traceback str, info str, started float, finished float, updated float",
     {"foreign_keys": [("session_id", "sessions", "id")], "not_null": {"session_id", "number", "state", "config"}}),
    ("epochs",
     "id int, trial_id int, epoch int, metrics str, time float, superseded int",
     {"foreign_keys": [("trial_id", "trials", "id")], "not_null": {"trial_id", "epoch", "metrics"},
      "defaults": {"superseded": 0}}),
)


def _schema_1(db: sqlite_utils.Database) -> None:
    """Schema 1: the meta table, sessions, trials and epoch rows (MIGRATIONS take it on from there)."""
    for name, columns, options in _SCHEMA_1:
        spec = dict(column.split() for column in columns.split(","))
        db.table(name).create({k: _TYPES[t] for k, t in spec.items()}, **{"pk": "id", **options})
    db.table("sessions").create_index(["name"], unique=True)
    db.table("trials").create_index(["session_id", "number"], unique=True)
    # One live row per (trial, epoch); superseded rows of earlier attempts are kept beside it.
    db.conn.execute(
        "CREATE UNIQUE INDEX idx_epochs_live ON epochs (trial_id, epoch) WHERE superseded = 0"
    )


# MIGRATIONS[v](conn) takes a database from schema v to v + 1 (inside a transaction); a new file is
# made at schema 1 and taken through every step. tests/reliability keeps a golden file of each version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _schema_2}


class SchemaStore(StoreBase):
    """The store's schema: made once, upgraded after a backup copy."""

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
            _schema_1(db)
            from tuitune import __version__

            db.table("tuitune_meta").insert_all(
                [
                    {"key": "created_by", "value": __version__},
                    {"key": "created", "value": str(self.clock())},
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

    def _new_backup(self, version: int) -> Path:
        """A new empty file beside the database for the copy before an upgrade: ``<db>.vN.bak``, or
        ``<db>.vN.K.bak`` beside earlier ones. Made with O_EXCL, so a name taken by anything (a symlink
        planted there included, dangling or not) is passed over, never written through."""
        n = 1
        while True:
            suffix = f".v{version}.bak" if n == 1 else f".v{version}.{n}.bak"
            backup = self.path.with_name(self.path.name + suffix)
            try:
                os.close(open_private(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                return backup
            except FileExistsError:
                n += 1

    def upgrade(self) -> Path | None:
        """Brings an older schema up to SCHEMA_VERSION, after a backup copy. Returns the backup's path.

        Each step of MIGRATIONS runs in one transaction with the version bump, so a crash leaves the
        file at the old or the new version, never between. A second call is a no-op.
        """
        version = self.schema_version()
        if version >= SCHEMA_VERSION:
            return None
        backup = self._new_backup(version)
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

"""Provides the store's sessions: create, update, delete, liveness (the owner's heartbeat), commands and notes."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import (
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
)
from tuitune.core.records import (
    Direction,
    Objectives,
    SessionRecord,
    TrialRecord,
    best_by,
    is_alive,
)
from tuitune.core.store.connection import _dumps, _loads, _reading
from tuitune.core.store.files import files_dir
from tuitune.core.store.schema import SchemaStore
from tuitune.core.text import resume_command

COMMANDS = ("pause", "resume", "stop_after_trial", "stop", "abort")


class SessionStore(SchemaStore):
    """Sessions, their liveness, the commands other terminals send them, notes."""

    if TYPE_CHECKING:  # defined by the layers above: trials.TrialStore, queries.QueryStore

        def _trial_id(self, session: str, number: int) -> int: ...

        def _complete_light(self, sid: int) -> list[TrialRecord]: ...

    def _owner_alive(self, sid: int) -> bool:
        row = self.conn.execute("SELECT heartbeat FROM sessions WHERE id = ?", (sid,)).fetchone()
        return row is not None and is_alive(row[0])

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
        now = self.clock()
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
        vals.append(self.clock())
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
                c.execute("UPDATE sessions SET heartbeat = ?, owner = coalesce(?, owner) WHERE id = ?", (self.clock(), owner, sid))
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
                (sid, command, trial, self.clock()),
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
            c.execute("UPDATE commands SET done = ? WHERE session_id = ? AND done IS NULL", (self.clock(), sid))
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



def _objectives(row: sqlite3.Row) -> Objectives:
    """A session row's objectives and constraints (records.Objectives: the one home of their rules)."""
    return Objectives.of(row["metric"], row["direction"], _loads(row["options"], {}))

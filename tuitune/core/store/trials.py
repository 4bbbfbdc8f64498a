"""Provides the store's trial and epoch writes, and the reads of whole trial records."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Iterable
from typing import Any

from tuitune.core.errors import (
    StoreError,
)
from tuitune.core.records import (
    TrialRecord,
    TrialState,
)
from tuitune.core.store.connection import _dumps, _loads, _reading
from tuitune.core.store.sessions import SessionStore


class TrialStore(SessionStore):
    """Trials and their epoch rows: written once, superseded never deleted."""

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
        now = self.clock()
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
        now = self.clock()
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
        now = self.clock()
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
        now = self.clock()
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
        now = self.clock()
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
                (reason, self.clock(), sid),
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
        now = self.clock()
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



def _dead(t: TrialRecord) -> TrialRecord:
    """A trial stored 'running' whose session's owner stopped beating: shown interrupted."""
    if t.state != TrialState.RUNNING:
        return t

    return dataclasses.replace(t, state=TrialState.INTERRUPTED, reason=t.reason or "the process running it ended")

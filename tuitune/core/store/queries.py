"""Provides the store's read queries for the screens: summaries, the leaderboard in SQL, counts, values."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from tuitune.core.records import (
    STATE_LAST,
    STATE_ORDER,
    Direction,
    LeaderRow,
    TrialRecord,
    TrialState,
    TrialSummary,
    best_by,
    ranked_by,
)
from tuitune.core.store.connection import _loads, _reading
from tuitune.core.store.sessions import _objectives
from tuitune.core.store.trials import TrialStore, _dead

# The leaderboard's order of the trials that are not complete (the same as the UI always showed).
_STATE_ORDER = (
    "CASE state " + " ".join(f"WHEN '{state}' THEN {rank}" for state, rank in STATE_ORDER.items())
    + f" ELSE {STATE_LAST} END"
)




class QueryStore(TrialStore):
    """What the UI reads (``tuitune.ui.model`` binds these through ``contract.StoreReads``)."""

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

"""Provides the Follower: a session that another process runs, seen through the database.

``tuitune open NAME`` and the home screen use it when a session's owner is another process (headless,
another TUI, another SSH login). It polls ``PRAGMA data_version`` (nearly free while nothing changes),
reads only the trials written since its last look, and emits the same events as the Runner, so a
display cannot tell a followed session from one it runs. Its commands (pause, resume, stop after this
trial, stop, abort) go to the owner through the store's commands table, which the owner reads at least
twice a second and applies between epochs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from tuitune.core import events as ev
from tuitune.core.records import TrialRecord, TrialState
from tuitune.core.store.store import Store

log = logging.getLogger(__name__)

Listener = Callable[[ev.Event], None]


class Follower:
    """Emits a followed session's events to ``listeners``; call ``poll()`` a few times a second."""

    def __init__(self, store: Store, session: str, listeners: Iterable[Listener] = ()) -> None:
        self.store = store
        self.session = session
        self.listeners = list(listeners)
        self._version: int | None = None
        self._since: float | None = None  # the newest 'updated' seen
        self._trials: dict[int, TrialRecord] = {}
        self._state: str | None = None
        self._started = False
        self._ended = False  # SessionFinished was emitted for the state the session is in
        self._intent: bool | None = None  # a pause/resume sent and not yet seen applied
        self._last_check = 0.0

    # ---- commands: the owner applies them between epochs ----------------------------------------
    def pause(self) -> None:
        self.store.add_command(self.session, "pause")
        self._intent = True

    def resume(self) -> None:
        self.store.add_command(self.session, "resume")
        self._intent = False

    def stop_after_trial(self) -> None:
        self.store.add_command(self.session, "stop_after_trial")

    def stop(self) -> None:
        self.store.add_command(self.session, "stop")

    def abort_trial(self, number: int | None = None) -> None:
        self.store.add_command(self.session, "abort", number)

    # ---- state ----------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.store.session(self.session).alive

    @property
    def paused(self) -> bool:
        """Paused as last asked here (until the owner has applied it), else as the owner says."""
        if self._intent is not None:
            return self._intent
        return self._state == "paused"

    @property
    def running_trials(self) -> list[int]:
        return sorted(n for n, t in self._trials.items() if t.state == TrialState.RUNNING)

    def _emit(self, event: ev.Event) -> None:
        for fn in self.listeners:
            try:
                fn(event)
            except Exception:  # a broken display never stops following
                log.exception("listener %r failed on %s", fn, type(event).__name__)

    def poll(self) -> bool:
        """Reads what changed since the last call and emits it; returns False once the owner is gone."""
        version = self.store.data_version()
        now = time.monotonic()
        if version == self._version and self._started and now - self._last_check < 1.0:
            return True  # nothing was written; a dead owner writes nothing, so look again once a second
        self._version, self._last_check = version, now
        rec = self.store.session(self.session)
        if not self._started:
            self._started = True
            trials = self.store.trials(self.session)
            self._trials = {t.number: t for t in trials}
            self._since = max((t.updated for t in trials if t.updated is not None), default=None)
            self._state = rec.state
            self._emit(ev.SessionStarted(self.session, total=rec.n_trials, resumed=True, trials=tuple(trials)))
            if rec.state == "paused":
                self._emit(ev.SessionPaused(self.session, paused=True))
            self._ended = rec.state not in ("new", "running", "paused")
            return rec.alive
        for t in self.store.trials_since(self.session, self._since):
            self._changed(t)
            if t.updated is not None and (self._since is None or t.updated > self._since):
                self._since = t.updated
        if self._intent is not None and (rec.state == "paused") == self._intent:
            self._intent = None  # the owner applied it
        if rec.state != self._state:
            before, self._state = self._state, rec.state
            if rec.state == "paused" or before == "paused":
                self._emit(ev.SessionPaused(self.session, paused=rec.state == "paused"))
        ended = rec.state not in ("new", "running", "paused")
        if ended and not self._ended:
            self._emit(ev.SessionFinished(self.session, state=rec.state, message=rec.message or ""))
        self._ended = ended
        return rec.alive

    def _changed(self, t: TrialRecord) -> None:
        old = self._trials.get(t.number)
        self._trials[t.number] = t
        if t.state == TrialState.RUNNING and (old is None or old.state != TrialState.RUNNING):
            self._emit(ev.TrialStarted(self.session, trial=t, continued=old is not None))
            old = None if old is None else TrialRecord(**{**old.__dict__, "epochs": ()})
        seen = {int(e["epoch"]): e for e in (old.epochs if old is not None else ())}
        for e in t.epochs:
            n = int(e["epoch"])
            if seen.get(n) != e:
                metrics = {k: v for k, v in e.items() if k not in ("epoch", "time")}
                self._emit(ev.EpochReported(self.session, number=t.number, epoch=n, budget=t.budget, metrics=metrics))
        if t.state != TrialState.RUNNING and (old is None or old.state != t.state):
            self._emit(ev.TrialFinished(self.session, trial=t))

    def follow(self, stop: Callable[[], bool], every: float = 0.2) -> None:
        """Polls until ``stop()`` is true or the owner has gone (then one last poll shows its end)."""
        while not stop():
            if not self.poll():
                self.poll()
                return
            time.sleep(every)

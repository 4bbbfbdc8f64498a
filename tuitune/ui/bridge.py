"""Provides RunnerBridge: the Runner listener that turns engine events into app messages.

It runs on the runner's thread and only posts (``post_message`` is thread-safe) and returns.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from textual.message_pump import MessagePump

from tuitune.core import events as ev
from tuitune.ui import messages as msg


class RunnerBridge:
    """A listener posting one message per event to ``target``; epoch rows are accumulated per trial.

    Epoch messages of a trial are at most ``min_interval`` seconds apart (the last epoch of a trial
    always goes), and each carries all rows so far, so coalescing drops nothing; rows held back are
    posted ``min_interval`` later by a timer, so an epoch is never left unshown while its trial waits
    (a slow next epoch, a rung, a pause).
    """

    def __init__(self, target: MessagePump, min_interval: float = 0.1) -> None:
        self.target = target
        self.min_interval = min_interval
        self._rows: dict[int, list[dict[str, Any]]] = {}
        self._budgets: dict[int, int] = {}
        self._last_post: dict[int, float] = {}
        self._held: dict[int, str] = {}  # trial number -> session, rows not posted yet
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def _flush(self) -> None:
        with self._lock:
            held, self._held, self._timer = self._held, {}, None
            out = [(s, n, self._budgets.get(n, 1), tuple(self._rows.get(n, ()))) for n, s in held.items()]
        for s, n, budget, rows in out:
            if rows:
                self.target.post_message(msg.EpochsProgress(s, n, budget, rows))

    def __call__(self, event: ev.Event) -> None:
        post = self.target.post_message
        s = event.session
        if isinstance(event, ev.EpochReported):
            rows = self._rows.setdefault(event.number, [])
            rows[:] = [r for r in rows if r["epoch"] < event.epoch]
            rows.append({"epoch": event.epoch, **event.metrics, "time": time.time()})
            self._budgets[event.number] = event.budget
            now = time.monotonic()
            with self._lock:
                due = now - self._last_post.get(event.number, 0.0) >= self.min_interval or event.epoch >= event.budget
                if due:
                    self._last_post[event.number] = now
                    self._held.pop(event.number, None)
                else:
                    self._held[event.number] = s
                    if self._timer is None:
                        self._timer = threading.Timer(self.min_interval, self._flush)
                        self._timer.daemon = True
                        self._timer.start()
                snapshot = tuple(rows)
            if due:
                post(msg.EpochsProgress(s, event.number, event.budget, snapshot))
        elif isinstance(event, ev.SessionStarted):
            post(msg.RunStarted(s, event.total, event.resumed, event.trials))
        elif isinstance(event, ev.TrialStarted):
            self._rows[event.trial.number] = [dict(e) for e in event.trial.epochs]
            self._budgets[event.trial.number] = event.trial.budget
            post(msg.TrialBegan(s, event.trial, event.continued))
        elif isinstance(event, ev.TrialFinished):
            with self._lock:
                self._rows.pop(event.trial.number, None)
                self._held.pop(event.trial.number, None)
                self._last_post.pop(event.trial.number, None)
            post(msg.TrialEnded(s, event.trial, event.changed))
        elif isinstance(event, ev.SessionPaused):
            for number, rows in self._rows.items():  # what the throttle held back is shown while paused
                if rows:
                    post(msg.EpochsProgress(s, number, self._budgets.get(number, 1), tuple(rows)))
            post(msg.RunPaused(s, event.paused))
        elif isinstance(event, ev.SessionFinished):
            post(msg.RunEnded(s, event.state, event.message))
        elif isinstance(event, ev.Notice):
            post(msg.RunNotice(s, event.text))

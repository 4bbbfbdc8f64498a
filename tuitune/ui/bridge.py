"""Provides RunnerBridge: the Runner listener that turns engine events into app messages.

It runs on the runner's thread and only posts (``post_message`` is thread-safe) and returns.
"""

from __future__ import annotations

import time
from typing import Any

from textual.message_pump import MessagePump

from tuitune.core import events as ev
from tuitune.ui import messages as msg


class RunnerBridge:
    """A listener posting one message per event to ``target``; epoch rows are accumulated per trial.

    Epoch messages are at most ``min_interval`` seconds apart (the last epoch of a trial always goes),
    and each carries all rows so far, so coalescing drops nothing.
    """

    def __init__(self, target: MessagePump, min_interval: float = 0.1) -> None:
        self.target = target
        self.min_interval = min_interval
        self._rows: dict[int, list[dict[str, Any]]] = {}
        self._budgets: dict[int, int] = {}
        self._last_post = 0.0

    def __call__(self, event: ev.Event) -> None:
        post = self.target.post_message
        s = event.session
        if isinstance(event, ev.EpochReported):
            rows = self._rows.setdefault(event.number, [])
            rows[:] = [r for r in rows if r["epoch"] < event.epoch]
            rows.append({"epoch": event.epoch, **event.metrics, "time": time.time()})
            self._budgets[event.number] = event.budget
            now = time.monotonic()
            if now - self._last_post >= self.min_interval or event.epoch >= event.budget:
                self._last_post = now
                post(msg.EpochsProgress(s, event.number, event.budget, tuple(rows)))
        elif isinstance(event, ev.SessionStarted):
            post(msg.RunStarted(s, event.total, event.resumed, event.trials))
        elif isinstance(event, ev.TrialStarted):
            self._rows[event.trial.number] = [dict(e) for e in event.trial.epochs]
            self._budgets[event.trial.number] = event.trial.budget
            post(msg.TrialBegan(s, event.trial, event.continued))
        elif isinstance(event, ev.TrialFinished):
            self._rows.pop(event.trial.number, None)
            post(msg.TrialEnded(s, event.trial, event.changed))
        elif isinstance(event, ev.SessionPaused):
            for number, rows in self._rows.items():  # what the throttle held back is shown while paused
                if rows:
                    post(msg.EpochsProgress(s, number, self._budgets.get(number, 1), tuple(rows)))
            post(msg.RunPaused(s, event.paused))
        elif isinstance(event, ev.SessionFinished):
            post(msg.RunEnded(s, event.state, event.message))

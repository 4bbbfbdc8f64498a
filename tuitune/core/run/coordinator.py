"""Provides the Runner's account of its own time (issue 20 item 5): how long workers wait for suggestions.

Every ``strategy.ask()`` the Runner makes is made for a free worker, which waits while the strategy thinks
(asha's and bayes's model fit and acquisition: tens of ms each on a CPU). ``AskClock`` sums, over a run, the
ask's wall time and that time multiplied by the workers free meanwhile (worker-seconds idle waiting for a
suggestion); at the run's end the Runner writes one line with them, and their share of the run's
worker-seconds, to the session's log (``logs/session.log``) and the Python log. That figure decides
whether asking ahead (a suggestion made beside the dispatch loop) would pay: benchmarks/results/ask-idle.md.

Also the coordinator's other notes to the user: a continued trial without a checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tuitune.core import events as ev

log = logging.getLogger(__name__)


class AskClock:
    """The run's asks: how many, their wall seconds, and worker-seconds spent idle waiting for them."""

    def __init__(self) -> None:
        self.asks = 0
        self.seconds = 0.0
        self.idle = 0.0
        self.t0 = time.monotonic()

    def ask(self, strategy: Any, free: int) -> Any:
        """``strategy.ask()``, timed; ``free``: the workers waiting for a suggestion meanwhile (at least 1)."""
        t = time.perf_counter()
        try:
            return strategy.ask()
        finally:
            dt = time.perf_counter() - t
            self.asks += 1
            self.seconds += dt
            self.idle += dt * max(1, free)

    def summary(self, workers: int) -> str:
        """One line: the asks, their time, the idle worker-seconds and their share of the run's."""
        wall = max(1e-9, time.monotonic() - self.t0)
        each = 1000 * self.seconds / self.asks if self.asks else 0.0
        share = 100 * self.idle / (max(1, workers) * wall)
        return (
            f"asks: {self.asks} in {self.seconds:.2f} s ({each:.1f} ms each); workers idle waiting for a suggestion: "
            f"{self.idle:.2f} worker-s, {share:.1f}% of {max(1, workers)} worker(s) x {wall:.1f} s since the first ask"
        )


class Coordination:
    """The Runner's notes about itself (a mixin: Runner sets ``files``, ``session``, ``pool``, ``strategy``)."""

    files: Any
    session: str
    pool: Any
    strategy: Any
    _said_no_checkpoint: bool
    _emit: Callable[[ev.Event], None]

    def _timed_ask(self) -> Any:
        """The strategy's next suggestion, its time counted on the run's AskClock."""
        clock = self.__dict__.setdefault("_asks", AskClock())
        return clock.ask(self.strategy, len(self.pool.free()))

    def _say_ask_time(self) -> None:
        """The run's ask line into the session's log and the Python log (once per run; none if it never asked)."""
        clock: AskClock | None = self.__dict__.pop("_asks", None)
        if clock is None:
            return
        text = clock.summary(len(getattr(self.pool, "workers", {})) or 1)
        log.info("session %s: %s", self.session, text)
        self.files.note(text)

    def _check_checkpoint(self, rec: Any) -> None:
        """A trial that continues (a promotion, a re-run) with no checkpoint trains again from epoch 1:
        said once a run, with the fix, instead of costing the epochs silently."""
        if self._said_no_checkpoint or self.files.checkpoint(rec.number).exists():
            return
        self._said_no_checkpoint = True
        text = (
            f"trial {rec.number} continues from epoch {rec.last_epoch} but its objective saved no checkpoint, so it "
            f"trains again from epoch 1 (and so will every promoted trial): call trial.checkpoint(state) each epoch "
            "and start with state = trial.restore()"
        )
        log.info("session %s: %s", self.session, text)  # the event is what the user sees (a warning would tear a screen)
        self._emit(ev.Notice(self.session, text=text))

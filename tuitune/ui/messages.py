"""Provides the typed messages the runner's listener posts to the app (from the runner's thread).

Per-epoch updates carry every epoch row of the trial so far, so a newer one may replace an older one
still waiting in the queue (``can_replace``, as Toolong does) without losing anything.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from tuitune.core.records import TrialRecord


class RunMessage(Message, bubble=False):
    """Base of the messages about a running session."""

    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session


class RunStarted(RunMessage):
    def __init__(self, session: str, total: int | None, resumed: bool, trials: tuple[TrialRecord, ...]) -> None:
        super().__init__(session)
        self.total, self.resumed, self.trials = total, resumed, trials


class TrialBegan(RunMessage):
    def __init__(self, session: str, trial: TrialRecord, continued: bool) -> None:
        super().__init__(session)
        self.trial, self.continued = trial, continued


class EpochsProgress(RunMessage):
    """The epoch rows of a running trial so far (coalesced: a newer one replaces an older one)."""

    def __init__(self, session: str, number: int, budget: int, epochs: tuple[dict[str, Any], ...]) -> None:
        super().__init__(session)
        self.number, self.budget, self.epochs = number, budget, epochs

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EpochsProgress) and message.number == self.number and message.session == self.session


class TrialEnded(RunMessage):
    def __init__(self, session: str, trial: TrialRecord, changed: tuple[TrialRecord, ...]) -> None:
        super().__init__(session)
        self.trial, self.changed = trial, changed


class RunPaused(RunMessage):
    def __init__(self, session: str, paused: bool) -> None:
        super().__init__(session)
        self.paused = paused


class RunEnded(RunMessage):
    """The run ended: ``finished``, ``stopped``, ``failed``, or ``error`` (it could not run at all)."""

    def __init__(self, session: str, state: str, message: str) -> None:
        super().__init__(session)
        self.state, self.message = state, message

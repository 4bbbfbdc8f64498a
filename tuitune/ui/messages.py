"""Provides the typed messages the runner's listener posts to the app (from the runner's thread).

Per-epoch updates carry every epoch row of the trial so far, so a newer one may replace an older one
still waiting in the queue (``can_replace``, as Toolong does) without losing anything. The app
publishes each one on its ``run_signal``; screens subscribe to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tuitune.core.records import TrialRecord


@dataclass
class RunMessage(Message, bubble=False):
    """Base of the messages about a running session."""

    session: str


@dataclass
class RunStarted(RunMessage):
    total: int | None
    resumed: bool
    trials: tuple[TrialRecord, ...]


@dataclass
class TrialBegan(RunMessage):
    trial: TrialRecord
    continued: bool


@dataclass
class EpochsProgress(RunMessage):
    """The epoch rows of a running trial so far (coalesced: a newer one replaces an older one)."""

    number: int
    budget: int
    epochs: tuple[dict[str, Any], ...]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EpochsProgress) and message.number == self.number and message.session == self.session


@dataclass
class TrialEnded(RunMessage):
    trial: TrialRecord
    changed: tuple[TrialRecord, ...]


@dataclass
class RunPaused(RunMessage):
    paused: bool


@dataclass
class RunNotice(RunMessage):
    """Something the user should know about the run, said once (core's ``events.Notice``)."""

    text: str


@dataclass
class RunEnded(RunMessage):
    """The run ended: ``finished``, ``stopped``, ``failed``, or ``error`` (it could not run at all)."""

    state: str
    message: str

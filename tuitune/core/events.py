"""Provides the events the runner sends to its listeners (the TUI, the headless progress display).

Listeners are called on the runner's thread: a UI listener must hand the event over to its own
thread (Textual: ``post_message``) and return at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuitune.core.records import TrialRecord


@dataclass(frozen=True)
class Event:
    session: str


@dataclass(frozen=True)
class SessionStarted(Event):
    total: int | None = None
    resumed: bool = False
    trials: tuple[TrialRecord, ...] = ()


@dataclass(frozen=True)
class TrialStarted(Event):
    trial: TrialRecord = None  # type: ignore[assignment]
    continued: bool = False  # a promotion or a re-run of an existing trial


@dataclass(frozen=True)
class EpochReported(Event):
    number: int = 0
    epoch: int = 0
    budget: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialFinished(Event):
    trial: TrialRecord = None  # type: ignore[assignment]
    changed: tuple[TrialRecord, ...] = ()  # other trials whose state the strategy settled (pruned, ...)


@dataclass(frozen=True)
class SessionPaused(Event):
    paused: bool = True


@dataclass(frozen=True)
class SessionFinished(Event):
    state: str = "finished"
    message: str = ""


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know about the run, said once (an objective that never checkpoints, ...)."""

    text: str = ""

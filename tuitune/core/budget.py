"""Provides the session budget a user thinks in: a running time, a total of epochs, a target value.

The one home of "is the session's budget spent": ``Budget.spent``. The trial count and the total of
epochs are also each strategy's plan (``Strategy.trial_cap``: hyperband and asha turn the epochs into
brackets and rungs), so ``ask()`` ends there on its own; ``spent`` is what the runner checks before each
new run, and what it reports as the reason the session finished.

- ``timeout``: seconds the session may run, counted over all its runs (resume continues the count, the
  time it was closed is not counted). A running trial is never cut off: no new trial starts once spent.
- ``total_epochs``: the session's epochs, every trial's at its budget (a promotion counts the epochs it adds).
- ``target``: the session ends once a trial's value reaches it (<= when minimizing, >= when maximizing).

Stored in the session's ``info["budget"]``; ``info["run_seconds"]`` is the time it has run so far.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tuitune.core.errors import TuituneError
from tuitune.core.records import SessionRecord, TrialRecord, TrialState, sign

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


class BudgetError(TuituneError, ValueError):
    """A budget (time, total epochs, target) that cannot be used."""


def parse_duration(value: Any, key: str = "timeout") -> float:
    """Seconds from a number of seconds or a string like ``"8h"``, ``"30m"``, ``"1h30m"``, ``"90s"``, ``"2d"``."""
    hint = f"{key} {value!r} is not a duration; give seconds or a number with s, m, h or d, like 8h, 30m or 1h30m"
    if isinstance(value, bool):
        raise BudgetError(hint)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise BudgetError(hint) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise BudgetError(hint)
    if not math.isfinite(seconds) or seconds <= 0:
        raise BudgetError(f"{key} {value!r} must be more than 0 seconds (like 8h, 30m or 1h30m)")
    return seconds


def format_duration(seconds: float) -> str:
    """``"7h12m"``, ``"4m05s"``, ``"12s"``: what the headers show."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def epochs_trained(trials: Iterable[TrialRecord]) -> int:
    """The epochs the session's trials have trained (each trial's last epoch)."""
    return sum(t.last_epoch for t in trials)


def reached(value: float | None, target: float, direction: str) -> bool:
    """Whether a value reaches the target (at or below it when minimizing, at or above when maximizing)."""
    return value is not None and math.isfinite(value) and sign(direction) * (value - target) <= 0


def target_trial(trials: Iterable[TrialRecord], target: float, direction: str) -> TrialRecord | None:
    """The first trial whose value reaches the target (complete, or paused at a rung), else None."""
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PAUSED) and reached(t.value, target, direction):
            return t
    return None


@dataclass(frozen=True)
class Budget:
    """The session's budget beyond the trial count (None: no limit of that kind)."""

    timeout: float | None = None
    total_epochs: int | None = None
    target: float | None = None

    @classmethod
    def make(
        cls, timeout: Any = None, total_epochs: Any = None, target: Any = None, *,
        keys: tuple[str, str, str] = ("timeout", "total_epochs", "target"),
    ) -> Budget:
        """A checked budget; ``keys`` name the three where a user gave them (flags, TOML keys)."""
        t = None if timeout is None else parse_duration(timeout, keys[0])
        if total_epochs is not None and (
            isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1
        ):
            raise BudgetError(f"{keys[1]} {total_epochs!r} must be a whole number of epochs >= 1")
        if target is not None:
            if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
                raise BudgetError(f"{keys[2]} {target!r} must be a finite number (a value of the session's metric)")
            target = float(target)
        return cls(timeout=t, total_epochs=total_epochs, target=target)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Budget:
        d = d or {}
        return cls(timeout=d.get("timeout"), total_epochs=d.get("total_epochs"), target=d.get("target"))

    @classmethod
    def of(cls, record: SessionRecord) -> Budget:
        """The budget stored with a session."""
        return cls.from_dict(record.info.get("budget"))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("timeout", self.timeout), ("total_epochs", self.total_epochs),
                                  ("target", self.target)) if v is not None}

    def merged(self, other: Budget) -> Budget:
        """This budget with the limits ``other`` sets (a resume's new ones) replacing its own."""
        return Budget(
            timeout=other.timeout if other.timeout is not None else self.timeout,
            total_epochs=other.total_epochs if other.total_epochs is not None else self.total_epochs,
            target=other.target if other.target is not None else self.target,
        )

    def describe(self) -> str:
        """``"time 8h00m, 500 epochs, target 0.1"``: the limits set, in words."""
        parts = []
        if self.timeout is not None:
            parts.append(f"time {format_duration(self.timeout)}")
        if self.total_epochs is not None:
            parts.append(f"{self.total_epochs} epochs")
        if self.target is not None:
            parts.append(f"target {self.target:g}")
        return ", ".join(parts)

    def __bool__(self) -> bool:
        return bool(self.to_dict())

    def check_epochs(self, max_epochs: int, key: str = "total_epochs") -> None:
        """A total of epochs smaller than one trial's budget would never start a trial."""
        if self.total_epochs is not None and self.total_epochs < max_epochs:
            raise BudgetError(
                f"{key} {self.total_epochs} is less than max_epochs {max_epochs}: not one trial fits; "
                f"give {key} >= {max_epochs}"
            )

    # ---- the one rule -----------------------------------------------------------------------------
    def spent(self, trials: Iterable[TrialRecord], direction: str, run_seconds: float = 0.0) -> str | None:
        """Why no new run may start (the target reached, the time or the epochs spent), else None."""
        trials = list(trials)
        if self.target is not None:
            t = target_trial(trials, self.target, direction)
            if t is not None:
                return f"the target {self.target:g} was reached by trial {t.number}"
        if self.timeout is not None and run_seconds >= self.timeout:
            return f"the time budget of {format_duration(self.timeout)} is spent"
        if self.total_epochs is not None and epochs_trained(trials) >= self.total_epochs:
            return f"the budget of {self.total_epochs} epochs is spent"
        return None

    def left(self, *, epochs: int, best: float | None, direction: str, run_seconds: float) -> list[str]:
        """What is left of each limit, in words for the headers: ``["7h12m of 8h00m left", "120/500 epochs",
        "target 0.1"]``; ``epochs`` trained so far, ``best`` the best value so far."""
        out = []
        if self.timeout is not None:
            out.append(f"{format_duration(max(0.0, self.timeout - run_seconds))} of {format_duration(self.timeout)} left")
        if self.total_epochs is not None:
            out.append(f"{epochs}/{self.total_epochs} epochs")
        if self.target is not None:
            out.append(f"target {self.target:g}" + (" reached" if reached(best, self.target, direction) else ""))
        return out


def run_seconds(record: SessionRecord) -> float:
    """The time a session has run so far, over all its runs (stored by the runner)."""
    v = record.info.get("run_seconds")
    return float(v) if isinstance(v, (int, float)) else 0.0

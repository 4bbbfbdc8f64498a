"""Provides manual mode's logic without Textual: bases, one-change checks, launches and the history.

Manual trials run in the session they were started from (a manual session, or any other: a change
tried from one of its trials lands beside them on its leaderboard). Each stores
``meta = {"base": N or "defaults", "change": {param: value}}``, from which the history is rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuitune.core.errors import ManualError, PresetError
from tuitune.core.records import SessionRecord, TrialRecord, TrialState, better
from tuitune.core.store.store import Store


def manual_strategy(record: SessionRecord, trials: list[TrialRecord], changes: list[dict[str, Any]] | None = None):
    """A ManualStrategy over the session's space and trials, whatever its strategy (``changes``: the queued
    requests, each naming its own base; no trial budget)."""
    from tuitune.core.api import strategy_for

    return strategy_for(record, trials, strategy="manual", changes=changes or [], base="defaults", n_trials=None)


def parse_text(record: SessionRecord, param: str, text: str) -> Any:
    """The value a user typed for ``param``, converted to its type (the same rules as ``--set``)."""
    text = text.strip()
    if not text:
        raise ManualError(f"type a value for {param}")
    if record.preset:
        from tuitune.training.presets import Preset, parse_value

        try:
            return parse_value(Preset.from_dict(record.preset), param, text)
        except PresetError as e:
            raise ManualError(str(e).removeprefix("--set ")) from None
    spec = record.space.get(param, {})
    kind = spec.get("type")
    try:
        if kind == "int":
            f = float(text)
            if not f.is_integer():
                raise ValueError
            return int(f)
        if kind == "float":
            return float(text)
    except ValueError:
        raise ManualError(f"{param} takes {'a whole number' if kind == 'int' else 'a number'}, not {text!r}") from None
    if kind == "choice":
        for v in spec.get("values", []):
            if str(v) == text:
                return v
    return text


@dataclass
class Change:
    """One manual trial in the history: its base, its change, its value and the effect against the base."""

    trial: TrialRecord
    base: str | int
    change: dict[str, Any]
    base_value: float | None

    @property
    def delta(self) -> float | None:
        if self.trial.value is None or self.base_value is None:
            return None
        return self.trial.value - self.base_value


def base_value(
    base: str | int, trials: dict[int, TrialRecord], defaults: dict[str, Any], before: int | None = None
) -> float | None:
    """The metric value of a base: its trial's value, or for the defaults the latest complete run of them."""
    if isinstance(base, int):
        t = trials.get(base)
        return t.value if t is not None and t.state == TrialState.COMPLETE else None
    runs = [
        t
        for n, t in sorted(trials.items())
        if t.state == TrialState.COMPLETE
        and t.value is not None
        and (before is None or n < before)
        and t.meta.get("base") in ("defaults", None)
        and not t.meta.get("change")
        and "change" in t.meta
    ]
    if runs:
        return runs[-1].value
    same = [
        t
        for n, t in sorted(trials.items())
        if t.state == TrialState.COMPLETE and t.config == defaults and (before is None or n < before)
    ]
    return same[-1].value if same else None


def history(trials: list[TrialRecord], defaults: dict[str, Any]) -> list[Change]:
    """Every manual trial of the session, oldest first, with the effect of its change."""
    by_number = {t.number: t for t in trials}
    out = []
    for t in trials:
        if "change" not in t.meta:
            continue
        base = t.meta.get("base", "defaults")
        out.append(Change(t, base, dict(t.meta.get("change") or {}), base_value(base, by_number, defaults, t.number)))
    return out


def improved(delta: float | None, direction: str) -> bool | None:
    if delta is None or delta == 0:
        return None
    return better(delta, 0.0, direction)


def manual_launch(store: Store, name: str, change: dict[str, Any], base: str | int) -> Any:
    """A Launch that runs exactly one manual trial (``change`` from ``base``) in session ``name``.

    Raises:
        ManualError: more than one change, a value outside the space, an unknown parameter or base.
        PresetError: the session was not started from a preset (its objective is unknown here).
    """
    from tuitune.launch import resume_run

    record = store.session(name)
    trials = store.trials(name)
    strat = manual_strategy(record, trials)
    strat.plan(change, base)  # refuses a bad request before anything is loaded
    launch = resume_run(name, db=store)
    launch.strategy = manual_strategy(launch.record, trials, [{"base": base, "change": dict(change)}])
    return launch

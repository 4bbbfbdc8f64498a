"""Provides manual mode: the user changes one parameter at a time from a base config and sees the effect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tuitune.core.errors import ManualError, SpaceError
from tuitune.core.records import TrialState, best_by
from tuitune.core.search.strategies.base import WAIT, Strategy, Suggestion, Wait


class ManualStrategy(Strategy):
    """Runs queued one-change requests.

    Each request names a base (``"defaults"``, ``"best"`` or a trial number) and at most one parameter
    change. Two changes, an unknown parameter or a value outside the space are refused with a
    ``ManualError``; no change at all re-runs the base (to see the noise).

    Args:
        changes: requests queued at the start: each a dict ``{param: value}`` of at most one entry
            (applied to ``base``), or ``{"base": ..., "change": {param: value}}``.
        base: the base of requests that do not name one.
    """

    name = "manual"

    def __init__(
        self,
        space,
        *,
        changes: Sequence[Mapping[str, Any]] | None = None,
        base: str | int = "defaults",
        **kw: Any,
    ) -> None:
        super().__init__(space, **kw)
        self.base = base
        self.changes = [dict(c) for c in (changes or [])]
        self._queue: list[tuple[dict[str, Any], str | int | None]] = []
        self._check_base(base)

    def options(self) -> dict[str, Any]:
        # The queue is consumed as trials are created; what is stored is only the default base.
        return {"base": self.base}

    def _check_base(self, base: Any) -> None:
        if base in ("defaults", "best") or (isinstance(base, int) and not isinstance(base, bool)):
            return
        raise ManualError(f"manual base {base!r} is unknown; use 'defaults', 'best' or a trial number")

    def _fill(self) -> dict[str, Any]:
        """A value for every parameter, active or not: the default, else the middle of its range."""
        d = self.defaults or {}
        return {k: d[k] if k in d else p.from_unit(0.5) for k, p in self.space.items()}

    def defaults_config(self) -> dict[str, Any]:
        # Parameters without a default start at the middle of their range; inactive ones are left out.
        return self.space.check(self.space.prune(self._fill()))

    def base_config(self, base: str | int) -> tuple[dict[str, Any], str | int]:
        """The config of a base and how it is recorded (``"defaults"`` or a trial number)."""
        self._check_base(base)
        if base == "defaults":
            return self.defaults_config(), "defaults"
        if base == "best":
            best = best_by(self.trials, self.objectives)  # the one rule of "best" (constraints included)
            if best is None:
                return self.defaults_config(), "defaults"
            return dict(best.config), best.number
        if base not in self._trials:
            known = ", ".join(str(n) for n in sorted(self._trials)) or "none yet"
            raise ManualError(f"trial {base} does not exist in this session (trials: {known})")
        return dict(self._trials[base].config), base

    def plan(self, change: Mapping[str, Any] | None = None, base: str | int | None = None) -> Suggestion:
        """Checks one manual run and returns it as a suggestion, without queueing it."""
        change = dict(change or {})
        if len(change) > 1:
            names = ", ".join(change)
            raise ManualError(
                f"manual mode changes one parameter at a time; this run changes {len(change)} ({names}). "
                "Run them one after the other"
            )
        config, base_id = self.base_config(self.base if base is None else base)
        base_config = dict(config)
        for k, v in change.items():
            if k not in self.space:
                raise ManualError(f"parameter '{k}' is not in the space; known: {', '.join(self.space)}")
            p = self.space[k]
            if not self.space.active(config)[k]:
                raise ManualError(
                    f"parameter '{k}' is inactive in this run: it applies only when {self.space.describe_when(k)}; "
                    "change that first"
                )
            try:
                # A Fixed parameter can still be changed by hand; a searched one must stay in its space.
                config[k] = p.check(v) if p.searched else v
            except SpaceError as e:
                raise ManualError(str(e)) from None
        if self.space.conditional:
            # A change of a choice can switch parameters off (they leave the config) or on (they start at
            # their default, else the middle of their range).
            config = self.space.prune({**self._fill(), **config})
        diff = {k: config[k] for k in change if config[k] != base_config.get(k)}
        return Suggestion(config=config, budget=self.max_epochs, meta={"base": base_id, "change": diff})

    def request(self, change: Mapping[str, Any] | None = None, base: str | int | None = None) -> Suggestion:
        """Queues one manual run, checked now so that a bad request fails before anything runs.

        The base (``"best"`` above all) is resolved again when the run is asked for.
        """
        s = self.plan(change, base)
        self._queue.append((dict(change or {}), base))
        return s

    def _take_initial(self) -> None:
        while self.changes:
            c = self.changes.pop(0)
            if "change" in c or "base" in c:
                extra = set(c) - {"change", "base"}
                if extra:
                    raise ManualError(f"manual request has unknown keys {sorted(extra)}; use 'base' and 'change'")
                self.request(c.get("change"), c.get("base"))
            else:
                self.request(c)

    def ask(self) -> Suggestion | Wait | None:
        """The next queued run; WAIT while its base is "best" and a running trial may still become the best."""
        self._take_initial()
        if not self._queue:
            return None
        change, base = self._queue[0]
        if (self.base if base is None else base) == "best" and any(
            t.state == TrialState.RUNNING for t in self.trials
        ):
            return WAIT
        self._queue.pop(0)
        return self.plan(change, base)

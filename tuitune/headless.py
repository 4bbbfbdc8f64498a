"""Provides the headless display: progress bars, a line per finished trial, the leaderboard at the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from tuitune.core import events as ev
from tuitune.core import text as words
from tuitune.core.budget import Budget, run_seconds
from tuitune.core.records import (
    Objectives,
    SessionRecord,
    TrialRecord,
    TrialState,
    better,
    is_rankable,
    ranked_by,
)
from tuitune.core.text import fmt, printable


def leaderboard_table(record: SessionRecord, trials: Sequence[TrialRecord], limit: int | None = 10) -> Table:
    """Trials ranked (records.ranked_by: by value, or by Pareto layer with several metrics), then the others
    by number; an infeasible trial is marked and has no rank."""
    names = record.searched
    goal = Objectives.of(record.metric, record.direction, record.options)
    done = ranked_by(trials, goal)
    rest = [t for t in trials if t not in done]
    rows = done + rest
    # Many searched parameters do not fit as columns: then one wrapped column holds them all.
    wide = len(names) <= 4
    title = ", ".join(f"{m} ({d})" for m, d in zip(goal.metrics, goal.directions))
    if goal.constraints:
        title += "; " + ", ".join(str(c) for c in goal.constraints)
    table = Table(title=f"{record.name}: {title}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    for m in goal.metrics:
        table.add_column(m, justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("state")
    from tuitune.core.run.placement import Placement
    from tuitune.core.text import where_words

    shows_where = Placement.from_info(record.info).shows_where
    if shows_where:
        table.add_column("where")
    if wide:
        for n in names:
            table.add_column(n, justify="right")
    else:
        table.add_column("config", overflow="fold", ratio=1)
    for i, t in enumerate(rows[:limit] if limit else rows):
        rank = str(i + 1) if t in done else "-"
        state = t.state.value + (f" ({printable(t.reason)})" if t.reason and t.state == TrialState.FAILED else "")
        if t.state == TrialState.COMPLETE and t.value is not None and not goal.feasible(t):
            state += " infeasible"
        params = [fmt(t.config.get(n)) for n in names] if wide else [
            words.config_text(t.config, names)
        ]
        vals = goal.values(t) if goal.multi and t.value is not None else None
        shown = [fmt(v) for v in vals] if vals else [fmt(t.value)] + ["-"] * (len(goal.metrics) - 1)
        table.add_row(rank, str(t.number), *shown, str(t.last_epoch), state,
                      *([Text(where_words(t.info))] if shows_where else []), *params)
    if limit and len(rows) > limit:
        table.caption = f"{len(rows) - limit} more trials: tuitune show {record.name}"
    return table


def where(t: TrialRecord) -> str:
    """`` [w1 cuda:1]``: the worker and device a trial ran on, when it ran in a worker process;
    `` [w1 cuda:0 @gpu-node-2]`` for a Ray actor (its node)."""
    from tuitune.core.text import array_words

    w, d, node = t.info.get("worker"), t.info.get("device"), t.info.get("node")
    if w is None:
        return ""
    at = f" @{node}" if node else ""
    arr = array_words(t.info)
    at += f" {arr}" if arr else ""
    return f" [w{w} {d}{at}]" if d else f" [w{w}{at}]"


class HeadlessDisplay:
    """A Runner listener that draws progress with rich."""

    def __init__(
        self, record: SessionRecord, console: Console | None = None, on_closed: Callable[[], None] | None = None
    ) -> None:
        self.record = record
        self.console = console or Console()
        self.on_closed = on_closed  # called once when the output goes away (``| head``, a closed terminal)
        self.closed = False
        self.names = record.searched
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self.session_task = None
        self.trial_tasks: dict[int, Any] = {}  # one bar per running trial (several with several workers)
        self._started = time.monotonic()
        self._done = 0
        self.budget = Budget.of(record)  # the session's time, epochs and target: the session bar shows what is left
        self._ran_before = run_seconds(record)
        self._epochs: dict[int, int] = {}  # each trial's last epoch
        self._best: float | None = None

    def _saw(self, t: TrialRecord) -> None:
        self._epochs[t.number] = t.last_epoch
        if is_rankable(t) and better(t.value, self._best, self.record.direction):
            self._best = t.value

    def budget_left(self) -> str:
        """What is left of the session's budget (time, epochs, target), for the session bar."""
        if not self.budget:
            return ""
        return " │ ".join(self.budget.left(
            epochs=sum(self._epochs.values()), best=self._best, direction=self.record.direction,
            run_seconds=self._ran_before + time.monotonic() - self._started,
        ))

    def __call__(self, event: ev.Event) -> None:
        if self.closed:
            return
        try:
            self._handle(event)
        except (OSError, SystemExit):
            # The output went away: a dropped SSH terminal (OSError), or a closed pipe, for which rich
            # points stdout at /dev/null and raises SystemExit(1). Neither is the session's failure.
            self._closed()

    def print(self, *objects: Any) -> None:
        """Prints a line to the display's console (nothing once the output has gone away)."""
        if self.closed:
            return
        try:
            # Text lines are never folded by rich: a hint folded across lines does not paste.
            self.console.print(*objects, soft_wrap=all(isinstance(o, str) for o in objects))
        except (OSError, SystemExit):  # see __call__
            self._closed()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.console.quiet = True
        if self.on_closed is not None:
            self.on_closed()

    def _handle(self, event: ev.Event) -> None:
        p = self.progress
        if isinstance(event, ev.SessionStarted):
            self._done = sum(1 for t in event.trials if t.state.is_finished())
            self._started = time.monotonic()
            for t in event.trials:
                self._saw(t)
            what = "resuming" if event.resumed else "starting"
            budget = f"; budget {self.budget.describe()}" if self.budget else ""
            self.console.print(
                f"[bold]{what} session {event.session}[/]: {self.record.strategy}, "
                f"{self.record.metric} ({self.record.direction}), "
                f"up to {words.plural(self.record.max_epochs, 'epoch')} a trial{budget}"
            )
            p.start()
            self.session_task = p.add_task("session", total=event.total, completed=self._done, info=self.budget_left())
        elif isinstance(event, ev.TrialStarted):
            t = event.trial
            verb = "continues" if event.continued else "starts"
            old = self.trial_tasks.pop(t.number, None)
            if old is not None:
                p.remove_task(old)
            self.trial_tasks[t.number] = p.add_task(
                f"trial {t.number}", total=t.budget, completed=t.last_epoch, info=f"{verb}{escape(where(t))}"
            )
        elif isinstance(event, ev.EpochReported):
            m = self.record.metric
            info = f"{m}={fmt(event.metrics.get(m))}" if m in event.metrics else ""
            task = self.trial_tasks.get(event.number)
            if task is not None:
                p.update(task, completed=event.epoch, total=event.budget, info=info)
            self._epochs[event.number] = event.epoch
            if self.budget and self.session_task is not None:
                p.update(self.session_task, info=self.budget_left())
        elif isinstance(event, ev.TrialFinished):
            t = event.trial
            task = self.trial_tasks.pop(t.number, None)
            if task is not None:
                p.remove_task(task)
            if t.state.is_finished() or t.state == TrialState.PAUSED:
                self._done += 1 if t.state != TrialState.PAUSED else 0
            for c in event.changed:
                if c.state.is_finished():
                    self._done += 1
            for r in (t, *event.changed):
                self._saw(r)
            p.update(self.session_task, completed=self._done, info=self.budget_left())
            params = words.config_text(t.config, self.names)
            # An interrupted trial that never reached an epoch failed its setup (the run's error says
            # why, once) or was stopped at once: its reason would only repeat that.
            quiet = t.state == TrialState.INTERRUPTED and t.last_epoch == 0
            extra = f" ({t.reason})" if t.reason and not quiet else ""
            style = {"complete": "green", "failed": "red", "pruned": "yellow"}.get(t.state.value, "")
            state = f"[{style}]{t.state.value}[/]" if style else t.state.value
            p.console.print(
                f"trial {t.number:>3} {state}{extra} {self.record.metric}={fmt(t.value)} "
                f"epochs={t.last_epoch}/{t.budget}{escape(where(t))} {params}"
            )
            pruned = [c.number for c in event.changed if c.state == TrialState.PRUNED]
            if pruned:
                p.console.print(f"          pruned at this rung: {', '.join(map(str, pruned))}")
        elif isinstance(event, ev.Notice):
            p.console.print(f"[yellow]note:[/] {escape(event.text)}")
        elif isinstance(event, ev.SessionPaused):
            p.console.print("paused" if event.paused else "resumed")
        elif isinstance(event, ev.SessionFinished):
            p.stop()

    def stop(self) -> None:
        try:
            self.progress.stop()
        except (OSError, SystemExit):  # see __call__
            self._closed()

"""Provides the trial detail screen: config against the best, per-epoch table and chart, timings, failure."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from tuitune.core.records import TrialState
from tuitune.ui import messages as msg
from tuitune.ui.format import fmt, fmt_duration, fmt_time
from tuitune.ui.model import SessionView, base_label, best_value, trial_duration
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.widgets.charts import TrialChart


class TrialDetailScreen(TuituneScreen):
    """Everything about one trial."""

    HELP_TITLE = "one trial"
    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("m", "manual", "Manual from this trial"),
        Binding("n", "note", "Note"),
        Binding("f", "toggle_follow", "Follow", tooltip="Follow the running trial as the session moves on"),
    ]

    def __init__(self, view: SessionView, number: int, *, follow: bool = False) -> None:
        super().__init__(name=f"trial-{number}")
        self.view = view
        self.number = number
        self.follow = follow  # show whichever trial runs, as the session moves on
        self.session_name = view.record.name
        self._dirty = False

    def compose(self) -> ComposeResult:
        yield Static(id="trial-header")
        with VerticalScroll(id="trial-body"):
            with Horizontal(id="trial-top"):
                yield DataTable(id="trial-config", cursor_type="row", zebra_stripes=True)
                yield TrialChart(id="trial-chart")
            yield Static(id="trial-failure")
            yield DataTable(id="trial-epochs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._draw()
        self.query_one("#trial-config", DataTable).focus()
        self.set_interval(0.5, self._redraw_if_dirty)

    # ---- live: the trial's epochs as they come, and the next trial when following -------------
    def run_message(self, message: msg.RunMessage) -> None:
        if isinstance(message, msg.TrialBegan) and self.follow:
            # With several workers, stay on the shown trial while it runs.
            if self.number not in self.view.running() or self.number == message.trial.number:
                self.number = message.trial.number
            self._dirty = True
        elif isinstance(message, msg.TrialEnded) and self.follow and message.trial.number == self.number:
            others = [n for n in self.view.running() if n != self.number]
            if others:  # another worker's trial goes on: follow it
                self.number = others[-1]
            self._dirty = True
        elif isinstance(message, (msg.EpochsProgress, msg.TrialEnded, msg.RunEnded, msg.RunPaused)):
            self._dirty = True

    def session_changed(self) -> None:
        self.view.changed()
        self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            self._draw()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow and self.view.current is not None:
            self.number = self.view.current
        self.notify("following the running trial" if self.follow else f"showing trial {self.number} only", timeout=3)
        self._draw()

    def action_note(self) -> None:
        self.tuitune.edit_note(self.session_name, self.number)

    def _draw(self) -> None:
        v, t = self.view, self.view.trials[self.number]
        best = v.best()
        dur = trial_duration(t)
        n = len(t.epochs)
        per_epoch = dur / n if dur is not None and n else None
        head = [
            f"[b]trial {t.number}[/] of {v.record.name}" + (" [reverse] following [/]" if self.follow else ""),
            t.state.value + (" (best)" if best is not None and best.number == t.number else ""),
            f"{v.metric} {fmt(best_value(t, v.metric, v.direction))}"
            + (" so far" if t.state == TrialState.RUNNING else ""),
            f"epochs {t.last_epoch}/{t.budget}",
            f"started {fmt_time(t.started)}",
            f"trained {fmt_duration(dur)}",
            f"{fmt_duration(per_epoch)}/epoch",
        ]
        if "change" in t.meta:
            ch = ", ".join(f"{k}={fmt(val)}" for k, val in t.meta["change"].items()) or "no change"
            head.append(f"manual: {ch} from {base_label(t.meta)}")
        if t.meta.get("chosen_by") is not None:  # bayes and hyperband: how the config was chosen
            how = {"initial": "the initial design", "model": "the model", "random": "random sampling"}
            head.append(f"chosen by {how.get(t.meta['chosen_by'], t.meta['chosen_by'])}")
        if t.meta.get("bracket") is not None:
            head.append(f"hyperband bracket {t.meta.get('bracket')} rung {t.meta.get('rung')}")
        elif t.meta.get("rung") is not None:
            head.append(f"asha rung {t.meta.get('rung')}")
        if t.note:
            head.append(f"\n[b]note:[/] {escape(t.note)}")
        self.query_one("#trial-header", Static).update("  ".join(head))

        cfg = self.query_one("#trial-config", DataTable)
        cfg.clear(columns=True)
        against = best if best is not None and best.number != t.number else None
        cfg.add_column("parameter")
        cfg.add_column("value")
        cfg.add_column(f"best #{against.number}" if against else "best")
        for k, val in t.config.items():
            searched = k in v.searched
            other = against.config.get(k) if against else None
            differs = against is not None and other != val
            style = "bold yellow" if differs else ("" if searched else "dim")
            cfg.add_row(
                Text(k, style="" if searched else "dim"),
                Text(fmt(val), style=style),
                Text(fmt(other) if against else "=", style="dim" if not differs else ""),
            )

        fail = self.query_one("#trial-failure", Static)
        if t.state == TrialState.FAILED or (t.reason and t.state != TrialState.COMPLETE):
            text = f"[b red]{t.state.value}[/]: {escape(t.reason or 'no reason recorded')}"
            if t.traceback:
                text += "\n[dim]" + escape(t.traceback.rstrip()) + "[/]"
            fail.update(text)
            fail.display = True
        else:
            fail.display = False

        ep = self.query_one("#trial-epochs", DataTable)
        ep.clear(columns=True)
        keys = []
        for e in t.epochs:
            for k in e:
                if k not in ("epoch", "time", "epoch_seconds") and k not in keys:
                    keys.append(k)
        ep.add_column("epoch")
        for k in keys:
            ep.add_column(k)
        ep.add_column("time")
        prev = t.started
        for e in t.epochs:
            tm = e.get("time")
            took = tm - prev if isinstance(tm, (int, float)) and prev is not None else None
            if isinstance(e.get("epoch_seconds"), (int, float)):
                took = e["epoch_seconds"]  # training time, without a pause before the epoch
            prev = tm if isinstance(tm, (int, float)) else prev
            ep.add_row(str(e["epoch"]), *(fmt(e.get(k)) for k in keys), fmt_duration(took))
        self.query_one(TrialChart).update(v, t.number)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_manual(self) -> None:
        t = self.view.trials[self.number]
        base: str | int = t.number if t.state == TrialState.COMPLETE else "best"
        self.tuitune.open_manual(self.session_name, base, switch=True)

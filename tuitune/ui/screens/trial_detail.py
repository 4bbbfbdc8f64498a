"""Provides the trial detail screen: config against the best, per-epoch table and chart, timings, failure."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tuitune.core.records import TrialState
from tuitune.ui.format import fmt, fmt_duration, fmt_time
from tuitune.ui.model import SessionView, base_label, trial_duration
from tuitune.ui.widgets.charts import TrialChart


class TrialDetailScreen(Screen[None]):
    """Everything about one trial."""

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("m", "manual", "Manual from this trial"),
    ]

    def __init__(self, view: SessionView, number: int) -> None:
        super().__init__(name=f"trial-{number}")
        self.view = view
        self.number = number
        self.session_name = view.record.name

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
        v, t = self.view, self.view.trials[self.number]
        best = v.best()
        dur = trial_duration(t)
        n = len(t.epochs)
        per_epoch = dur / n if dur is not None and n else None
        head = [
            f"[b]trial {t.number}[/] of {v.record.name}",
            t.state.value + (" (best)" if best is not None and best.number == t.number else ""),
            f"{v.metric} {fmt(t.value)}",
            f"epochs {t.last_epoch}/{t.budget}",
            f"started {fmt_time(t.started)}",
            f"took {fmt_duration(dur)}",
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
        self.query_one("#trial-header", Static).update("  ".join(head))

        cfg = self.query_one("#trial-config", DataTable)
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
        else:
            fail.display = False

        ep = self.query_one("#trial-epochs", DataTable)
        keys = []
        for e in t.epochs:
            for k in e:
                if k not in ("epoch", "time") and k not in keys:
                    keys.append(k)
        ep.add_column("epoch")
        for k in keys:
            ep.add_column(k)
        ep.add_column("time")
        prev = t.started
        for e in t.epochs:
            tm = e.get("time")
            took = tm - prev if isinstance(tm, (int, float)) and prev is not None else None
            prev = tm if isinstance(tm, (int, float)) else prev
            ep.add_row(str(e["epoch"]), *(fmt(e.get(k)) for k in keys), fmt_duration(took))
        self.query_one(TrialChart).update(v, t.number)
        cfg.focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_manual(self) -> None:
        from tuitune.ui.screens.manual import ManualScreen

        t = self.view.trials[self.number]
        base: str | int = t.number if t.state == TrialState.COMPLETE else "best"
        store = self.app.store
        self.app.switch_screen(ManualScreen(store, self.session_name, base=base))

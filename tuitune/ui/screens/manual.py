"""Provides manual mode: change one parameter of a base config, run it, and see the effect."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tuitune.core.errors import TuituneError
from tuitune.core.records import TrialState
from tuitune.ui import messages as msg
from tuitune.ui.format import describe_param, fmt, fmt_delta
from tuitune.ui.manual_run import base_value, history, improved, manual_launch, manual_strategy, parse_text
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.widgets.charts import OverlayChart
from tuitune.ui.widgets.meter import Meter

if TYPE_CHECKING:
    from tuitune.ui.model import StoreAccess


class NumberInput(Input):
    """The value field: it takes what a number is written with, and leaves every other key to the
    screen's keys (r runs, applying what was typed; q, ?, u, b ... do what they do elsewhere)."""

    NUMBER = re.compile(r"[0-9eE.+\-]")

    def __init__(self, **kw: Any) -> None:
        super().__init__(restrict=r"[0-9eE.+\-]*", **kw)

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and bool(self.NUMBER.fullmatch(character))

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable and not self.check_consume_key(event.key, event.character):
            event.prevent_default()  # Input's own handler would swallow it: it goes on to the screen's keys


class ChoiceList(OptionList):
    """The values of a choice parameter. Typing finds a value (``sgd``: the first that starts with what was
    typed, else contains it), so letters typed here never reach the screen's keys: g, d, t, b and u act
    on the screen, and typing "sgd" toggled the curves and changed the base."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.typed = ""

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and character.isprintable() and key != "space"

    def on_focus(self) -> None:
        self.typed = ""

    async def _on_key(self, event: events.Key) -> None:
        if not self.check_consume_key(event.key, event.character):
            return
        event.stop()
        event.prevent_default()
        assert event.character is not None
        found = self.find(self.typed + event.character)
        if found is None:  # a new word: start again from this letter
            found = self.find(event.character)
            self.typed = event.character if found is not None else ""
        else:
            self.typed += event.character
        if found is not None:
            self.highlighted = found

    def find(self, typed: str) -> int | None:
        """The index of the first value that starts with ``typed`` (else contains it), or None."""
        prompts = [str(self.get_option_at_index(i).prompt).lower() for i in range(self.option_count)]
        typed = typed.lower()
        for test in (str.startswith, str.__contains__):
            for i, p in enumerate(prompts):
                if test(p, typed):
                    return i
        return None


class ManualScreen(TuituneScreen):
    """The base config as a list of parameters; one change at a time; the history of changes."""

    HELP_TITLE = "manual mode"
    BINDINGS = [
        Binding("enter", "edit", "Edit value", show=False),
        Binding("asterisk", "scale(10)", "x10"),
        Binding("slash", "scale(0.1)", "/10"),
        Binding("right_square_bracket", "scale(2)", "x2", show=False),
        Binding("left_square_bracket", "scale(0.5)", "/2", show=False),
        Binding("u", "undo", "Undo", tooltip="Undo the change of the selected parameter"),
        Binding("r", "run", "Run"),  # from the value field too: it applies what was typed, then runs
        Binding("b", "base_last", "Last as base", show=False),
        Binding("d", "base_defaults", "Defaults base", show=False),
        Binding("t", "base_best", "Best as base", show=False),
        Binding("g", "curves", "Curves", tooltip="The change's learning curve over its base's (and the base's repeats)"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store: StoreAccess, name: str, base: str | int = "best") -> None:
        super().__init__(name=f"manual-{name}")
        self.store = store
        self.session_name = name
        self.base: str | int = base
        self.pending: dict[str, Any] = {}
        self.editing: str | None = None
        self.running_trial: int | None = None
        self._reload()

    def _reload(self) -> None:
        self.record = self.store.session(self.session_name)
        self.trials = self.store.trials(self.session_name)
        self.by_number = {t.number: t for t in self.trials}
        self.strategy = manual_strategy(self.record, self.trials)
        try:
            self.base_config, self.base_id = self.strategy.base_config(self.base)
        except TuituneError:
            self.base = "defaults"
            self.base_config, self.base_id = self.strategy.base_config("defaults")
        self.params = [k for k, d in self.record.space.items() if d.get("type") != "fixed"]
        self.params += [k for k in self.record.space if k not in self.params]

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="manual-header")
        with Horizontal(id="manual-top"):
            with ContentSwitcher(initial="manual-params", id="manual-left"):
                yield DataTable(id="manual-params", cursor_type="row", zebra_stripes=True)
                yield OverlayChart(id="manual-curves")
            with Vertical(id="manual-side"):
                yield Static(id="manual-edit")
                yield NumberInput(placeholder="select a parameter, enter", id="manual-value")
                yield ChoiceList(id="manual-choices")
                yield Static(id="manual-status")
                yield Meter(id="manual-progress")
        yield Label("[b]one change at a time[/]: enter on a row makes that trial the base", id="history-label")
        yield DataTable(id="manual-history", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#manual-params", DataTable)
        # At 80 columns the range column would be cut (and scroll): the side panel names the selected one's.
        self.with_range = self.app.size.width >= 100
        for c in ("parameter", "base", "new", *(("range / choices",) if self.with_range else ())):
            t.add_column(c, key=c)
        h = self.query_one("#manual-history", DataTable)
        for c in ("trial", "base", "change", self.record.metric, "effect", "state"):
            h.add_column(c, key=c)
        self.query_one("#manual-choices", OptionList).display = False
        self.query_one("#manual-progress", Meter).display = False
        self._draw()
        t.focus()

    # ---- drawing -----------------------------------------------------------------------------
    def differences(self) -> dict[str, Any]:
        return {k: v for k, v in self.pending.items() if self.base_config.get(k) != v}

    def planned(self) -> dict[str, Any] | None:
        """The config the change would really run with (the strategy's rule: a parameter switched on by a
        choice starts at its default, one switched off leaves the config); None while it cannot run."""
        diffs = self.differences()
        if len(diffs) != 1:
            return None
        try:
            return self.strategy.plan(diffs, self.base).config
        except TuituneError:
            return None

    def _new_cell(self, k: str, diffs: dict[str, Any], planned: dict[str, Any] | None) -> Text:
        """The "new" column of parameter ``k``: the change, or what the change switches on or off."""
        if k in diffs:
            return Text(fmt(diffs[k]), style="bold yellow")
        if planned is None:
            return Text("")
        if k in planned and k not in self.base_config:
            return Text(f"{fmt(planned[k])} (on)", style="yellow")
        if k in self.base_config and k not in planned:
            return Text("off", style="dim yellow")
        return Text("")

    def _base_text(self) -> str:
        if self.base_id == "defaults":
            v = base_value("defaults", self.by_number, self.base_config)
            return "the defaults" + (f" ({self.record.metric} {fmt(v)})" if v is not None else " (not run yet)")
        t = self.by_number[self.base_id]
        return f"trial {t.number} ({self.record.metric} {fmt(t.value)})"

    def _draw(self) -> None:
        self.query_one("#manual-header", Static).update(
            f"[b]manual mode[/] │ session [b]{self.record.name}[/] │ base: {self._base_text()} │ "
            "[dim]d: defaults  t: best  b: last trial[/]"
        )
        table = self.query_one("#manual-params", DataTable)
        keep = table.cursor_row
        table.clear()
        diffs = self.differences()
        planned = self.planned()
        for k in self.params:
            spec = self.record.space.get(k, {})
            searched = spec.get("type") != "fixed"
            kind, rng = describe_param(spec)
            table.add_row(
                Text(k, style="" if searched else "dim"),
                Text(fmt(self.base_config.get(k)), style="" if searched else "dim"),
                self._new_cell(k, diffs, planned),
                *((Text(f"{kind} {rng}" if searched else "fixed", style="dim"),) if self.with_range else ()),
                key=k,
            )
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self._draw_status()
        self._draw_history()

    def _draw_status(self, extra: str = "") -> None:
        diffs = self.differences()
        if self.running_trial is not None:
            text = f"[cyan]running trial {self.running_trial}…[/]"
        elif not diffs:
            text = "no change: r runs the base again (to see the noise)"
        elif len(diffs) == 1:
            ((k, v),) = diffs.items()
            text = f"change: [b]{k}[/] {fmt(self.base_config.get(k))} → [b yellow]{fmt(v)}[/]   r: run"
        else:
            text = (
                f"[red]{len(diffs)} changes ({', '.join(diffs)})[/]: manual mode runs one at a time; "
                "u undoes the change of the selected parameter"
            )
        self.query_one("#manual-status", Static).update(text + (f"\n{extra}" if extra else ""))

    def _draw_history(self) -> None:
        h = self.query_one("#manual-history", DataTable)
        h.clear()
        for c in reversed(history(self.trials, self.strategy.defaults_config())):
            good = improved(c.delta, self.record.direction)
            style = "green" if good else ("red" if good is False else "")
            change = ", ".join(f"{k}={fmt(v)}" for k, v in c.change.items()) or "(none: noise)"
            base = "defaults" if c.base == "defaults" else f"#{c.base}"
            h.add_row(
                str(c.trial.number),
                base,
                change,
                fmt(c.trial.value),
                Text(fmt_delta(c.delta), style=style),
                c.trial.state.value,
                key=str(c.trial.number),
            )

    # ---- editing -----------------------------------------------------------------------------
    def selected_param(self) -> str | None:
        t = self.query_one("#manual-params", DataTable)
        if t.row_count == 0:
            return None
        return self.params[t.cursor_row] if 0 <= t.cursor_row < len(self.params) else None

    @on(DataTable.RowHighlighted, "#manual-params")
    def _param_highlighted(self, event: DataTable.RowHighlighted) -> None:
        k = event.row_key.value if event.row_key is not None else None
        if k is None:
            return
        spec = self.record.space.get(k, {})
        kind, rng = describe_param(spec)
        keys = "\n[dim]keys: * x10  / ÷10  ] x2  \\[ ÷2[/]" if spec.get("scale") == "log" else ""
        if spec.get("type") == "choice":
            keys = "\n[dim]enter, then type to find a value; enter picks it[/]"
        self.query_one("#manual-edit", Static).update(f"[b]{k}[/]: {kind} {rng}{keys}")

    @on(DataTable.RowSelected, "#manual-params")
    def _param_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def action_edit(self) -> None:
        k = self.selected_param()
        if k is None:
            return
        self.editing = k
        spec = self.record.space.get(k, {})
        current = self.pending.get(k, self.base_config.get(k))
        if spec.get("type") == "choice":
            ol = self.query_one("#manual-choices", ChoiceList)
            ol.clear_options()
            values = list(spec.get("values", []))
            ol.add_options([Option(fmt(v), id=str(i)) for i, v in enumerate(values)])
            ol.display = True
            if current in values:
                ol.highlighted = values.index(current)
            ol.focus()
        else:
            inp = self.query_one("#manual-value", Input)
            inp.value = "" if current is None else str(current)
            inp.focus()

    @on(OptionList.OptionSelected, "#manual-choices")
    def _choice_selected(self, event: OptionList.OptionSelected) -> None:
        k = self.editing
        if k is None:
            return
        values = list(self.record.space.get(k, {}).get("values", []))
        self._set(k, values[int(event.option.id or 0)])
        event.option_list.display = False
        self.query_one("#manual-params", DataTable).focus()

    @on(Input.Changed, "#manual-value")
    def _typed(self, event: Input.Changed) -> None:
        """Checks the value as it is typed, against the space, without running anything."""
        k = self.editing or self.selected_param()
        if k is None or not event.value.strip():
            self._draw_status()
            return
        try:
            value = parse_text(self.record, k, event.value)
            self.strategy.plan({k: value}, self.base)
        except TuituneError as e:
            self._draw_status(f"[red]{e}[/]")
            return
        self._draw_status(f"[green]{k}={fmt(value)} is in the space[/] (enter)")

    @on(Input.Submitted, "#manual-value")
    def _submitted(self, event: Input.Submitted) -> None:
        if self._apply_typed():
            self.query_one("#manual-params", DataTable).focus()

    @on(Input.Blurred, "#manual-value")
    def _left_field(self) -> None:
        """Leaving the field (tab, a click) applies a valid value: an edit is never silently lost."""
        self._apply_typed(quiet=True)

    def _apply_typed(self, quiet: bool = False) -> bool:
        """Applies the value typed in the field to the parameter being edited; False when it is not valid."""
        inp = self.query_one("#manual-value", Input)
        k = self.editing
        if k is None or not inp.value.strip():
            return True
        try:
            value = parse_text(self.record, k, inp.value)
            self.strategy.plan({k: value}, self.base)
        except TuituneError as e:
            if not quiet:
                self.notify(str(e), severity="error")
            return False
        inp.value = ""
        self._set(k, value)
        return True

    def _set(self, k: str, value: Any) -> None:
        if value == self.base_config.get(k):
            self.pending.pop(k, None)
        else:
            self.pending[k] = value
        self.editing = None
        self._draw()

    def action_scale(self, factor: float) -> None:
        k = self.selected_param()
        if k is None:
            return
        spec = self.record.space.get(k, {})
        if spec.get("type") not in ("float", "int") or spec.get("scale") != "log":
            self.notify(
                f"x10, /10, x2 and /2 are for log-scale parameters; {k} is not one: enter types a value",
                severity="warning",
            )
            return
        current = self.pending.get(k, self.base_config.get(k))
        value: Any = float(current) * factor
        if spec.get("type") == "int":
            value = int(round(value))
        else:
            value = float(f"{value:.6g}")
        low, high = spec.get("low"), spec.get("high")
        if low is not None and high is not None and not (low <= value <= high or math.isclose(value, high)):
            self.notify(f"{k}={fmt(value)} is outside {fmt(low)}..{fmt(high)}", severity="error")
            return
        try:
            self.strategy.plan({k: value}, self.base)
        except TuituneError as e:
            self.notify(str(e), severity="error")
            return
        self._set(k, value)

    def action_undo(self) -> None:
        k = self.selected_param()
        if k in self.pending:
            self.pending.pop(k)
        elif self.pending:
            self.pending.clear()
        self._draw()

    # ---- bases ---------------------------------------------------------------------------------
    def _set_base(self, base: str | int) -> None:
        self.base = base
        try:
            self.base_config, self.base_id = self.strategy.base_config(base)
        except TuituneError as e:
            self.notify(str(e), severity="error")
            return
        self.pending = {k: v for k, v in self.pending.items() if self.base_config.get(k) != v}
        self._draw()
        self.notify(f"base: {self._base_text()}", timeout=3)

    def action_base_defaults(self) -> None:
        self._set_base("defaults")

    def action_base_best(self) -> None:
        self._set_base("best")

    def action_base_last(self) -> None:
        done = [t for t in self.trials if t.state == TrialState.COMPLETE]
        manual = [t for t in done if "change" in t.meta]
        pick = manual or done
        if not pick:
            self.notify("no complete trial yet", severity="warning")
            return
        self._set_base(pick[-1].number)

    # ---- the effect as curves: base, change, and the base's repeats (the noise) ------------------
    def action_curves(self) -> None:
        sw = self.query_one("#manual-left", ContentSwitcher)
        if sw.current == "manual-curves":
            sw.current = "manual-params"
            self.query_one("#manual-params", DataTable).focus()
            return
        sw.current = "manual-curves"
        self.query_one("#manual-history", DataTable).focus()
        self._draw_curves()

    @on(DataTable.RowHighlighted, "#manual-history")
    def _history_highlighted(self) -> None:
        if self.query_one("#manual-left", ContentSwitcher).current == "manual-curves":
            self._draw_curves()

    def effect_curves(self, number: int | None) -> list[tuple[str, Any, str | None]]:
        """(label, trial, colour) of a manual trial, its base and the base's repeats (runs of it unchanged)."""
        t = self.by_number.get(number) if number is not None else None
        if t is None or "change" not in t.meta:
            return []
        base = t.meta.get("base", "defaults")
        out: list[tuple[str, Any, str | None]] = []
        if isinstance(base, int) and base in self.by_number:
            out.append((f"base #{base}", self.by_number[base], "green"))
        repeats = [
            r for r in self.trials
            if r.number != t.number and "change" in r.meta and not r.meta.get("change")
            and r.meta.get("base", "defaults") == base and r.state == TrialState.COMPLETE
        ]
        for i, r in enumerate(repeats[-4:]):
            out.append(("base again" if i == 0 else "", r, "gray"))
        change = ", ".join(f"{k}={fmt(v)}" for k, v in (t.meta.get("change") or {}).items()) or "no change"
        out.append((f"#{t.number} {change}", t, "orange"))
        return out

    def _draw_curves(self) -> None:
        h = self.query_one("#manual-history", DataTable)
        number = None
        if h.row_count:
            try:
                number = int(h.coordinate_to_cell_key(h.cursor_coordinate).row_key.value or 0)
            except Exception:  # noqa: BLE001 - no row under the cursor
                number = None
        series = self.effect_curves(number)
        chart = self.query_one("#manual-curves", OverlayChart)
        if not series:
            chart._empty("the effect as curves", "run a change (r): its curve shows here over its base's")
            return
        chart.update_series(
            f"{self.record.metric}: trial {number} against its base", self.record.metric, series, self.record.max_epochs
        )

    @on(DataTable.RowSelected, "#manual-history")
    def _history_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        n = int(event.row_key.value or 0)
        t = self.by_number.get(n)
        if t is None or t.state != TrialState.COMPLETE:
            self.notify(f"trial {n} is not complete; only a complete trial can be a base", severity="warning")
            return
        self._set_base(n)

    # ---- running -----------------------------------------------------------------------------
    def action_run(self) -> None:
        if not self._apply_typed():
            return
        self.query_one("#manual-params", DataTable).focus()
        if self.tuitune.run_control.running:
            self.notify("a session is running: wait for it or stop it before a manual run", severity="warning")
            return
        change = self.differences()
        try:
            self.strategy.plan(change, self.base)
        except TuituneError as e:
            self.notify(str(e), severity="error")
            return
        self.running_trial = -1
        self.query_one("#manual-status", Static).update("[cyan]preparing the run…[/]")
        self._launch(change, self.base)

    @work(thread=True, exit_on_error=False, group="manual-launch")
    def _launch(self, change: dict[str, Any], base: str | int) -> None:
        try:
            launch = manual_launch(self.store, self.session_name, change, base)
        except TuituneError as e:
            self.app.call_from_thread(self._launch_failed, str(e))
            return
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self._launch_failed, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._start, launch)

    def _launch_failed(self, text: str) -> None:
        self.running_trial = None
        self.notify(text, severity="error", timeout=8)
        self._draw_status()

    def _start(self, launch: Any) -> None:
        try:
            self.tuitune.run_control.start(launch)
        except RuntimeError as e:
            self._launch_failed(str(e))
            return
        bar = self.query_one("#manual-progress", Meter)
        bar.display = True
        bar.update_meter("starting…", 0, max(self.record.max_epochs, 1))

    def run_message(self, message: msg.RunMessage) -> None:
        """Called by the app with each message of this session's run."""
        bar = self.query_one("#manual-progress", Meter)
        if isinstance(message, msg.TrialBegan):
            self.running_trial = message.trial.number
            bar.display = True
            bar.update_meter(
                f"trial {message.trial.number}: epoch 0/{message.trial.budget}", 0, max(message.trial.budget, 1)
            )
            self._draw_status()
        elif isinstance(message, msg.EpochsProgress):
            ep = message.epochs[-1]["epoch"] if message.epochs else 0
            bar.update_meter(f"trial {message.number}: epoch {ep}/{message.budget}", ep, max(message.budget, 1))
            m = message.epochs[-1].get(self.record.metric) if message.epochs else None
            self._draw_status(
                f"epoch {message.epochs[-1]['epoch'] if message.epochs else 0}/{message.budget}"
                + (f"  {self.record.metric} {fmt(m)}" if m is not None else "")
            )
        elif isinstance(message, msg.TrialEnded):
            self._reload()
            t = message.trial
            if "change" in t.meta:
                c = next(
                    (c for c in history(self.trials, self.strategy.defaults_config()) if c.trial.number == t.number),
                    None,
                )
                if c is not None:
                    change = ", ".join(f"{k}={fmt(v)}" for k, v in c.change.items()) or "no change"
                    self.notify(
                        f"trial {t.number} ({change}): {self.record.metric} {fmt(t.value)}, "
                        f"effect {fmt_delta(c.delta)} against the base. b makes it the base",
                        title="manual run",
                        timeout=8,
                    )
        elif isinstance(message, msg.RunEnded):
            if self.record.strategy != "manual" and message.state == "finished":
                # One manual trial does not finish a random/bayes/... session: it stays resumable.
                try:
                    self.store.update_session(self.session_name, state="stopped", message="manual trial run")
                except TuituneError:
                    pass
                self.tuitune.session_changed(self.session_name)
            self.running_trial = None
            bar.display = False
            self.pending = {}
            self._reload()
            self._draw()

    def action_back(self) -> None:
        if self.editing is not None and self.focused is not self.query_one("#manual-params", DataTable):
            self.editing = None  # escape in the field cancels the edit
            self.query_one("#manual-value", Input).value = ""
            self.query_one("#manual-choices", OptionList).display = False
            self.query_one("#manual-params", DataTable).focus()
            self._draw_status()
            return
        self.app.pop_screen()

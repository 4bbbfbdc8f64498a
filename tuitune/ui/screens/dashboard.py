"""Provides the session dashboard: header, live chart, leaderboard, progress bars and event log."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, Footer, Static

from tuitune.core.errors import TuituneError
from tuitune.core.records import Direction, TrialRecord, TrialState
from tuitune.ui import messages as msg
from tuitune.ui.format import fmt, fmt_duration, plural
from tuitune.ui.model import SessionView, best_value
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.widgets.charts import BestChart, CurvesChart, ParetoChart, SliceChart, TrialChart
from tuitune.ui.widgets.dialogs import PathDialog
from tuitune.ui.widgets.event_log import EventLog
from tuitune.ui.widgets.leaderboard import Leaderboard
from tuitune.ui.widgets.meter import Meter

if TYPE_CHECKING:
    from tuitune.launch import Launch
    from tuitune.ui.model import StoreAccess

CHARTS = ("chart-trial", "chart-curves", "chart-best", "chart-slice")
REDRAW_S = 0.25  # charts and the leaderboard redraw at most 4 times a second
SYNC_TRIALS = 2000  # up to this many trials, their training seconds are summed before the first frame


def running_words(v: SessionView, numbers: list[int], mem: str | None = None) -> list[str]:
    """Several running trials in words, widest first: "2 running: #4 cuda:0 epoch 3/10 · #5 cuda:1 epoch 1/10",
    then without the devices, then with the epochs alone."""
    trials = [v.live[n] for n in numbers]
    head = f"{len(trials)} running: "

    def where(t: TrialRecord) -> str:
        return str(t.info.get("device") or "auto")

    return [
        head + " · ".join(f"#{t.number} {where(t)} epoch {t.last_epoch}/{t.budget}" for t in trials)
        + (f" {mem}" if mem else ""),
        head + " · ".join(f"#{t.number} {where(t)} {t.last_epoch}/{t.budget}" for t in trials),
        head + " · ".join(f"#{t.number} epoch {t.last_epoch}/{t.budget}" for t in trials),
        head + " · ".join(f"#{t.number} {t.last_epoch}/{t.budget}" for t in trials),
        head + " ".join(f"#{t.number}" for t in trials),
    ]


def fit_parts(parts: list[tuple[list[str], int]], width: int, sep: str = " │ ") -> str:
    """The parts (each: its forms, widest first, and its priority) joined by ``sep`` within ``width``
    cells: while too long, the part of lowest priority takes its next shorter form, or leaves."""
    forms = [list(f) for f, _ in parts]

    def line() -> str:
        return sep.join(f[0] for f in forms if f)

    while Text.from_markup(line()).cell_len > width:
        left = [i for i, f in enumerate(forms) if f and parts[i][1] < 98]
        if not left:
            break
        i = min(left, key=lambda i: parts[i][1])
        forms[i].pop(0)
    return line()


def gpu_memory() -> str | None:
    """GPU memory in use by this process, when torch is loaded and CUDA initialised (never imports torch)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB"
    except Exception:  # noqa: BLE001 - informative only
        return None
    return None


class DashboardScreen(TuituneScreen):
    """One session, live while it runs; opened from the home screen or straight from ``tuitune run``."""

    HELP_TITLE = "the session dashboard"
    # Short words: at 80 columns the footer shows every key the state allows (? lists them all).
    BINDINGS = [
        Binding("p", "pause", "Pause", tooltip="Pause the run (before the next epoch)"),
        Binding("p", "resume", "Resume", tooltip="Resume the paused run"),  # the footer says what p does now
        Binding("s", "stop_after", "Stop", tooltip="Stop the session after this trial"),
        Binding("a", "abort", "Abort", tooltip="Abort this trial after its epoch (pruned)"),
        Binding("r", "run", "Run", tooltip="Run or resume the session"),
        Binding("c", "next_chart", "Chart", tooltip="Next chart: trial, all curves, best so far, slice (and the Pareto set with several objectives)"),
        Binding("x", "next_param", "Slice parameter", show=False),
        Binding("o", "sort", "Sort", tooltip="Sort by rank, trial, time, each parameter"),
        Binding("e", "export", "Export best", show=False),
        Binding("m", "manual", "Manual", tooltip="Manual mode from the selected trial"),
        Binding("space", "mark", "Mark for compare", show=False),
        Binding("v", "compare", "Compare trials", show=False, tooltip="The marked trials (or this one and the best)"),
        Binding("i", "importance", "Parameter importance", show=False),
        Binding("w", "devices", "Workers and devices", show=False, tooltip="Each worker: device, trial, memory, GPU use"),
        Binding("t", "follow", "Live trial", show=False, tooltip="The running trial's detail, following it"),
        Binding("n", "note_trial", "Note on trial", show=False),
        Binding("N", "note_session", "Note on session", show=False),
        Binding("escape", "back", "Home"),
    ]

    def __init__(self, store: StoreAccess, name: str, launch: Launch | None = None) -> None:
        super().__init__(name=f"dashboard-{name}")
        self.store = store
        self.session_name = name
        self.launch = launch
        self.view = SessionView(store, name)
        self.paused = False
        self.chart_index = 0
        self.param_index = 0
        self.shown_trial: int | None = None
        self._dirty: set[str] = set()
        self._run_started = 0.0
        # The run said it ended: its thread winds down a moment longer (p/s/a stay until then), but the
        # header already shows the session's final state.
        self._ended = False

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="dash-header")
        with Horizontal(id="dash-top"):
            with ContentSwitcher(initial=CHARTS[0], id="charts"):
                yield TrialChart(id="chart-trial")
                yield CurvesChart(id="chart-curves")
                yield BestChart(id="chart-best")
                yield SliceChart(id="chart-slice")
                yield ParetoChart(id="chart-pareto")
            with Vertical(id="dash-side"):
                yield Meter(id="trial-progress")
                yield Meter(id="session-progress")
                yield EventLog(id="event-log")
        yield Leaderboard(id="board")
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one(EventLog)
        v = self.view
        if v.n_trials():
            log.write(
                f"session [b]{v.record.name}[/]: {plural(v.n_done(), 'trial')} done"
                + (f", state {v.record.state}" if v.record.state else "")
            )
        if v.record.message:
            log.write(f"[dim]{v.record.message}[/]")
        self._dirty.update({"header", "chart", "board", "progress"})
        self._flush()
        self.set_interval(REDRAW_S, self._flush)
        self.set_interval(1.0, self._tick)
        self.query_one(Leaderboard).focus()
        if self.view.n_trials() <= SYNC_TRIALS:
            self.view.load_seconds()  # milliseconds: the header has its total from the first frame
            self._dirty.add("header")
            self._flush()
        else:  # after the first frame: the thread's Python work would hold the GIL while it is drawn
            self.set_timer(0.3, self._load_seconds)
        if self.launch is not None:
            for note in self.launch.notes:
                log.write(f"[dim]{note}[/]")
            self._start(self.launch)
            self.launch = None
        else:
            self._follow_if_owned(v.record)

    @work(thread=True, exit_on_error=False, group="seconds")
    def _load_seconds(self) -> None:
        """Sums the trials' training seconds off the UI thread (the header's "trained" total)."""
        self.view.load_seconds()
        self.app.call_from_thread(self._dirty.add, "header")

    # ---- running -----------------------------------------------------------------------------
    def _follow_if_owned(self, rec: Any = None) -> bool:
        """Follows the session live when another process runs it (headless, another TUI, another login):
        at mount, and each second while nothing runs here, so an owner that starts after the dashboard
        opened (``run --detach`` still starting, a resume from another terminal) is followed too."""
        control = self.tuitune.run_control
        if control.running or self.launch is not None:
            return False
        if rec is None:
            try:
                rec = self.store.session(self.session_name)
            except TuituneError:  # deleted meanwhile
                return False
        if not rec.alive:
            return False
        log: Any = self.query_one("#event-log")
        log.write(f"[dim]following session {rec.name}, run by process {rec.owner or '?'}[/]")
        control.follow(self.store, self.session_name)
        self._run_started = time.monotonic()
        self._ended = False
        self.refresh_bindings()
        self._dirty.add("header")
        return True

    @property
    def running(self) -> bool:
        return self.tuitune.run_control.is_running(self.session_name)

    def _start(self, launch: Launch) -> None:
        if self.tuitune.run_control.is_running(launch.name) and self.tuitune.run_control.follower is not None:
            return  # its owner started meanwhile and is followed: running it here would be refused
        try:
            self.tuitune.run_control.start(launch)
        except RuntimeError as e:
            self.notify(str(e), severity="error")
            return
        self._run_started = time.monotonic()
        self.paused = False
        self._ended = False
        self.refresh_bindings()
        self._dirty.add("header")

    def run_message(self, message: msg.RunMessage) -> None:
        """Called by the app with each message of this session's run."""
        v, log = self.view, self.query_one(EventLog)
        if isinstance(message, msg.RunStarted):
            self._ended = False
            v.reset(total=message.total)
            self._load_seconds()
            if self.tuitune.run_control.follower is not None:  # another process runs it: "following" was said
                log.write(f"{plural(v.n_done(), 'trial')} done so far")
            else:
                log.write(
                    f"{'resumed' if message.resumed else 'started'} session [b]{message.session}[/]"
                    + (f": {plural(v.n_done(), 'trial')} done" if message.resumed else "")
                )
            self.refresh_bindings()
        elif isinstance(message, msg.TrialBegan):
            t = message.trial
            v.trial_started(t)
            self.shown_trial = t.number
            if message.continued:
                log.write(f"trial {t.number} continues to epoch {t.budget}")
            else:
                log.write(f"trial {t.number} started")
        elif isinstance(message, msg.EpochsProgress):
            v.epochs(message.number, message.budget, message.epochs)
            self._dirty.update({"chart", "progress"})
        elif isinstance(message, msg.TrialEnded):
            before = v.best()
            v.trial_finished(message.trial, message.changed)
            self._log_end(message, before)
        elif isinstance(message, msg.RunNotice):
            log.write(f"[yellow]note:[/] {escape(message.text)}")
        elif isinstance(message, msg.RunPaused):
            self.paused = message.paused
            log.write("[yellow]paused[/] (p resumes)" if message.paused else "resumed")
            self.refresh_bindings()
        elif isinstance(message, msg.RunEnded):
            self.paused = False
            self._ended = True
            v.current = None
            style = {"finished": "green", "stopped": "yellow"}.get(message.state, "red")
            what = {
                "finished": "session finished",
                "stopped": "stopped",
                "failed": "session stopped",
                "error": "could not run",
            }.get(message.state, message.state)
            log.write(f"[{style}]{what}[/]" + (f": {message.message}" if message.message else ""))
            try:
                v.reload()
            except TuituneError:
                pass
            self._load_seconds()
        self._dirty.update({"header", "chart", "board", "progress"})

    def _log_end(self, message: msg.TrialEnded, before: Any) -> None:
        t, v, log = message.trial, self.view, self.query_one(EventLog)
        value = f"{v.metric}={fmt(t.value)}"
        if t.state == TrialState.COMPLETE:
            best = v.best()
            new_best = best is not None and best.number == t.number and (before is None or before.number != t.number)
            log.write(f"[green]trial {t.number} complete[/] {value}" + (" [b green](best)[/]" if new_best else ""))
        elif t.state == TrialState.PAUSED:
            log.write(f"trial {t.number} waits at its rung (epoch {t.last_epoch}) {value}")
        elif t.state == TrialState.PRUNED:
            log.write(f"[dim]trial {t.number} pruned[/]" + (f" ({t.reason})" if t.reason else ""))
        elif t.state == TrialState.FAILED:
            log.write(f"[red]trial {t.number} failed[/]: {t.reason or 'unknown reason'}")
        else:
            log.write(f"[yellow]trial {t.number} {t.state.value}[/]" + (f" ({t.reason})" if t.reason else ""))
        for c in message.changed:
            word = "pruned at its rung" if c.state == TrialState.PRUNED else c.state.value
            log.write(f"[dim]trial {c.number} {word}[/]")

    # ---- drawing (throttled) -------------------------------------------------------------------
    def _tick(self) -> None:
        if self.running:
            self._dirty.add("header")
        else:
            self._follow_if_owned()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        if "board" in dirty:  # first: the trial chart shows the selected row's trial
            board = self.query_one(Leaderboard)
            board.run_paused = self.running and self.paused
            board.update(self.view)
        if "header" in dirty:
            self._draw_header()
        if "chart" in dirty:
            self._draw_chart()
        if "progress" in dirty:
            self._draw_progress()

    def _device(self) -> str:
        from tuitune.core.run.placement import Placement

        placement = Placement.from_info(self.view.record.info)
        dev = placement.devices[0] if placement.devices else None
        node = None
        for t in self.view.live.values():
            if t.info.get("device"):
                dev, node = t.info["device"], t.info.get("node")
        if placement.backend == "ray":
            return f"ray: {dev or 'auto'}" + (f" @{node}" if node else "")
        return str(dev or "auto")

    def _draw_header(self) -> None:
        v = self.view
        rec = v.record
        running = self.running and not self._ended
        state = "paused" if running and self.paused else "running" if running else rec.state
        # The same words as the side panel: trials done of those planned, and the running trial's number.
        done, total = v.n_done(), v.total
        trial = f"{done}/{total} done" if total and done <= total else f"{done} done"
        several = v.running() if len(v.running()) > 1 else []
        current = None
        if v.current is not None and not several:
            current = f"trial {v.current} {'paused' if state == 'paused' else 'training'}"
        mem = gpu_memory()
        device = self._device()
        elapsed = v.elapsed(time.time() if running else None)
        best = v.best()
        # (forms, widest first; priority: the lowest is shortened, then dropped, first while the line is too long)
        parts: list[tuple[list[str], int]] = [
            ([f"[b]{rec.name}[/] [reverse] {state} [/]"], 99),
            ([trial], 98),
            ([current] if current else [], 2),
            (running_words(v, several, mem) + [f"{len(several)} running"] if several else [], 7),
            ([f"best {fmt(best.value)} (#{best.number})", f"best {fmt(best.value)}"] if best else [], 9),
            ([rec.strategy], 5),
            ([] if several else [device + (f" {mem}" if mem else ""), device], 4),
            ([f"trained {fmt_duration(elapsed)}"], 1),
            ([f"ETA {fmt_duration(v.eta())}"] if running else [], 6),
            *(([p], 8) for p in v.budget_left(running)),
        ]
        self.query_one("#dash-header", Static).update(fit_parts(parts, self.size.width - 2))

    def followed(self) -> int | None:
        """The running trial the chart and the side panel follow: the one selected in the leaderboard,
        else the best so far, else the latest started; None when none runs."""
        v = self.view
        running = v.running()
        if not running:
            return v.current
        if len(running) == 1:
            return running[0]
        selected = self.query_one(Leaderboard).selected_number()
        if selected in running:
            return selected
        scored = [(value, n) for n in running
                  if (value := best_value(v.live[n], v.metric, v.direction)) is not None]
        if scored:
            sign = Direction(v.direction).sign
            return min(scored, key=lambda vn: (vn[0] * sign, -vn[1]))[1]
        return running[-1]

    def _draw_chart(self) -> None:
        v = self.view
        which = self._charts()[self.chart_index]
        if which == "chart-trial":
            number = self.followed()
            if number is None:
                number = self.shown_trial
            if number is None:
                number = self.query_one(Leaderboard).selected_number()
            self.query_one(TrialChart).update(v, number)
        elif which == "chart-curves":
            self.query_one(CurvesChart).update(v, self.query_one(Leaderboard).selected_number())
        elif which == "chart-best":
            self.query_one(BestChart).update(v)
        elif which == "chart-pareto":
            self.query_one(ParetoChart).update(v)
        else:
            params = v.searched
            self.query_one(SliceChart).update(v, params[self.param_index % len(params)] if params else None)

    def _draw_progress(self) -> None:
        v = self.view
        followed = self.followed()
        t = v.live.get(followed) if followed is not None else None
        tp = self.query_one("#trial-progress", Meter)
        if t is not None:
            word = " [yellow]paused[/]" if self.running and self.paused else ""
            tp.update_meter(f"trial {t.number}: epoch {t.last_epoch}/{t.budget}{word}", t.last_epoch, max(t.budget, 1))
        else:
            tp.update_meter("trial: [dim]idle[/]", 0, 1)
        done = v.n_done()
        total = v.total if v.total and done <= v.total else None
        label = f"session: {done}/{total} trials done" if total else f"session: {plural(done, 'trial')} done"
        self.query_one("#session-progress", Meter).update_meter(label, done, total)

    # ---- actions -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.running
        # What cannot be done now is left out of the footer (it has room for what can: 80 columns).
        if action == "pause":  # while paused, p is "Resume" in the footer; one of the two is listed
            return running and not self.paused
        if action == "resume":
            return running and self.paused
        if action in ("stop_after", "abort"):
            return running
        if action in ("run", "back"):  # back is refused while running: the footer has room for p s a
            return not running
        return True

    def action_resume(self) -> None:
        self.action_pause()

    def action_pause(self) -> None:
        state = self.tuitune.run_control.toggle_pause()
        if state is None:
            self.notify("nothing is running", severity="warning")
        else:
            self.paused = state
            self.refresh_bindings()
            self.notify("pausing before the next epoch" if state else "resuming")
            self._dirty.add("header")

    def action_stop_after(self) -> None:
        if self.tuitune.run_control.stop_after_trial():
            self.query_one(EventLog).write("[yellow]stopping after this trial[/]")
            self.notify("the session stops after this trial")

    def action_abort(self) -> None:
        # With several running trials, the one the chart and the side panel show (the selected one).
        running = self.view.running()
        number = self.followed() if len(running) > 1 else None
        if self.tuitune.run_control.abort_trial(number):
            which = "this trial" if number is None else f"trial {number}"
            self.query_one(EventLog).write(f"[yellow]aborting {which} after its epoch[/]")
            self.notify(f"aborting {which} after its current epoch")
        else:
            self.notify("no trial is training", severity="warning")

    def action_run(self) -> None:
        if self._follow_if_owned():  # another process runs it: its keys reach that process
            return
        if self.tuitune.run_control.running:
            self.notify("a session is already running", severity="warning")
            return
        self.query_one(EventLog).write("preparing the run…")
        self._prepare_resume()

    def _prepare_resume(self) -> None:
        from tuitune.launch import resume_run

        store, name = self.store, self.session_name

        def work() -> None:
            try:
                launch = resume_run(name, db=store)
            except TuituneError as e:
                self.app.call_from_thread(self.notify, str(e), severity="error")
                return
            self.app.call_from_thread(self._start, launch)

        self.run_worker(work, thread=True, exit_on_error=False, group="prepare", name="prepare run")

    def _charts(self) -> tuple[str, ...]:
        """The chart cycle: a session with several objectives adds its Pareto set."""
        return (*CHARTS, "chart-pareto") if self.view.goal.multi else CHARTS

    def action_next_chart(self) -> None:
        charts = self._charts()
        self.chart_index = (self.chart_index + 1) % len(charts)
        self.query_one(ContentSwitcher).current = charts[self.chart_index]
        self._dirty.add("chart")
        self._flush()

    def action_next_param(self) -> None:
        if not self.view.searched:
            return
        self.param_index = (self.param_index + 1) % len(self.view.searched)
        if CHARTS[self.chart_index] != "chart-slice":
            self.chart_index = CHARTS.index("chart-slice")
            self.query_one(ContentSwitcher).current = "chart-slice"
        self._dirty.add("chart")
        self._flush()

    def action_sort(self) -> None:
        key = self.query_one(Leaderboard).cycle_sort()
        self.notify(f"sorted by {key}", timeout=2)

    def action_export(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.tuitune.export_best(self.session_name, path)

        self.app.push_screen(
            PathDialog(f"Export the best config of {self.session_name} to", f"{self.session_name}-best.json"), done
        )

    def action_manual(self) -> None:
        board = self.query_one(Leaderboard)
        number = board.selected_number()
        base: str | int = "best" if number is None else number
        t = self.view.trials.get(number) if number is not None else None
        if t is not None and t.state != TrialState.COMPLETE:
            base = "best"
        self.tuitune.open_manual(self.session_name, base)

    def action_mark(self) -> None:
        board = self.query_one(Leaderboard)
        n = board.selected_number()
        if n is not None:
            board.toggle_mark(n)
            board.action_cursor(1)

    def action_compare(self) -> None:
        board = self.query_one(Leaderboard)
        numbers = sorted(board.marked)
        if len(numbers) < 2:
            best, sel = self.view.best(), board.selected_number()
            numbers = sorted({n for n in (sel, best.number if best else None, *numbers) if n is not None})
        if len(numbers) < 2:
            self.notify("mark two or more trials with space (or select one other than the best)", severity="warning")
            return
        self.tuitune.open_compare(self.view, numbers)

    def action_importance(self) -> None:
        self.tuitune.open_importance(self.view)

    def action_devices(self) -> None:
        self.tuitune.open_devices(self.view)

    def action_follow(self) -> None:
        n = self.followed()
        if n is None:
            n = self.query_one(Leaderboard).selected_number()
        if n is None:
            self.notify("no trial yet", severity="warning")
            return
        self.tuitune.open_trial(self.view, n, follow=True)

    def action_note_trial(self) -> None:
        n = self.query_one(Leaderboard).selected_number()
        if n is not None:
            self.tuitune.edit_note(self.session_name, n)

    def action_note_session(self) -> None:
        self.tuitune.edit_note(self.session_name)

    def action_back(self) -> None:
        if self.running:
            self.notify("the session is running: stop it first (s: after this trial) or quit (q)", severity="warning")
            return
        self.app.pop_screen()

    @on(Leaderboard.TrialChosen)
    def open_trial(self, event: Leaderboard.TrialChosen) -> None:
        if event.number in self.view.trials:
            self.tuitune.open_trial(self.view, event.number)

    @on(Leaderboard.TrialHighlighted)
    def show_trial(self, event: Leaderboard.TrialHighlighted) -> None:
        running = self.view.running()
        if not running and self.view.current is None and self.shown_trial != event.number:
            self.shown_trial = event.number
            self._dirty.add("chart")
        elif len(running) > 1:  # the chart and the side panel follow the selected running trial
            self._dirty.update({"chart", "progress"})
        if CHARTS[self.chart_index] == "chart-curves":  # the selected trial's curve stays on the axis
            self._dirty.add("chart")

    def session_changed(self) -> None:
        self.refresh_from_store()

    def refresh_from_store(self) -> None:
        """Re-reads the session (after a run ended or a manual trial), keeping what is shown."""
        self.view.reload()
        self._load_seconds()
        self._dirty.update({"header", "chart", "board", "progress"})

"""Provides the new-session screen: a preset and its space, a strategy and its options, a device, a name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Footer, Header, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from tuitune.core.api import PRIOR_STRATEGIES, check_session_name, new_session_name
from tuitune.core.errors import TuituneError
from tuitune.core.search.strategies import STRATEGY_OPTIONS
from tuitune.ui.format import describe_param, fmt
from tuitune.ui.screens.base import TuituneScreen
from tuitune.ui.warm import WarmWorkers

if TYPE_CHECKING:
    from tuitune.ui.model import StoreAccess

DEFAULT_PRESET = "digits-mlp"
WARM_AFTER_S = 0.5  # warm workers start once the form's choice has held this long (not on every keystroke)
STRATEGIES = [
    ("random: independent samples", "random"),
    ("bayes: a Gaussian-process model", "bayes"),
    ("hyperband: many short trials, the best continue", "hyperband"),
    ("asha: successive halving that never waits", "asha"),
    ("grid: every combination", "grid"),
    ("manual: one change at a time", "manual"),
]
# The strategy options the screen offers: those of core's table that have a label, by their flag.
_SCREEN_OPTIONS = [o for o in STRATEGY_OPTIONS if o.label]
_WORD_OPTIONS = [o for o in _SCREEN_OPTIONS if o.choices]  # a Select each ("default" leaves it unset)
_DEFAULT = "default"
# Which option inputs each strategy shows (the rest are hidden).
OPTIONS = {
    strategy: {"max-epochs", "seed", *(() if strategy == "manual" else ("trials",)),
               *(o.flag[2:] for o in _SCREEN_OPTIONS if strategy in o.strategies)}
    for _, strategy in STRATEGIES
}
FIELDS = [
    ("trials", "trials", "20, or the strategy's plan"),  # fits the field at 80 columns
    ("max-epochs", "max epochs", "the preset's"),
    ("seed", "seed", "0"),
    *((o.flag[2:], o.label or o.name, o.default) for o in _SCREEN_OPTIONS if not o.choices),
]
# The session's budget beyond the trial count (tuitune.core.budget): id, label, placeholder, Input type.
BUDGET_FIELDS = [
    ("time", "time budget", "none (like 8h, 30m)", "text"),
    ("total-epochs", "total epochs", "none", "integer"),
    ("target", "target value", "none", "number"),
]


@dataclass
class PresetEntry:
    """A preset offered on the screen: how to name it to ``new_run`` and what it holds."""

    ref: str
    preset: Any


class SessionNameValidator(Validator):
    def __init__(self, store: StoreAccess) -> None:
        super().__init__()
        self.store = store

    def validate(self, value: str) -> ValidationResult:
        if not value:
            return self.success()  # empty: a name is generated
        try:
            check_session_name(value)
        except TuituneError as e:
            return self.failure(str(e))
        if self.store.session_exists(value):
            return self.failure(f"a session named '{value}' exists; choose another name")
        return self.success()


def load_presets(extra_files: list[str], bundled: bool = True) -> tuple[list[PresetEntry], list[str]]:
    """The bundled presets and the extra files, each loaded on its own; and the errors of those that fail."""
    from tuitune.training.presets import bundled_names, load_preset

    out: list[PresetEntry] = []
    errors: list[str] = []
    for ref in [*(bundled_names() if bundled else []), *extra_files]:
        try:
            out.append(PresetEntry(ref, load_preset(ref)))
        except TuituneError as e:
            errors.append(str(e))
    return out, errors


def probe_devices() -> list[tuple[str, str]]:
    """(label, value) of the devices torch sees; imports torch (call it from a worker)."""
    out = [("auto: the best available", "auto"), ("cpu", "cpu")]
    try:
        import torch
    except Exception:  # noqa: BLE001 - no torch: CPU only
        return out
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                name = torch.cuda.get_device_name(i)
                try:
                    free, total = torch.cuda.mem_get_info(i)
                    mem = f", {free / 2**30:.1f}/{total / 2**30:.0f} GiB free"
                except Exception:  # noqa: BLE001
                    mem = ""
                out.append((f"cuda:{i} {name}{mem}", f"cuda:{i}"))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            out.append(("mps (Apple GPU)", "mps"))
    except Exception:  # noqa: BLE001 - a broken driver leaves the CPU
        pass
    return out


def space_table(p: Any) -> Table:
    """A preset's space as a table whose last column wraps (every choice shows, nothing is cut and the
    form has no horizontal scrollbar); the fixed parameters in one dim row."""
    table = Table(box=None, padding=(0, 1, 0, 0), expand=True, show_edge=False, header_style="bold")
    table.add_column("parameter", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("default", no_wrap=True)
    table.add_column("range / choices", ratio=1, overflow="fold")
    space = p.space.to_dict()
    searched = [k for k, d in space.items() if d.get("type") != "fixed"]
    for k in searched:
        kind, rng = describe_param(space[k])
        table.add_row(k, kind, fmt(p.defaults.get(k)), rng)
    fixed = [k for k in space if k not in searched]
    if fixed:
        table.add_row(Text("fixed", style="dim"), "", "", Text(", ".join(f"{k}={fmt(p.defaults.get(k))}" for k in fixed), style="dim"))
    return table


def _choice(label: str, options: Any, id: str, *, value: Any = _DEFAULT, field: str | None = "") -> Horizontal:
    """A labelled drop-down of the form (``field``: the row's id; "" for ``field-<id>``, None for none)."""
    select = Select(options, value=value, allow_blank=False, id=id, compact=True)
    return Horizontal(Label(label), select, classes="field", id=f"field-{id}" if field == "" else field)


class NewSessionScreen(TuituneScreen):
    """Pick a preset, a strategy and a device; name the session; start it."""

    HELP_TITLE = "new session"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store: StoreAccess) -> None:
        super().__init__(name="new-session")
        self.store = store
        self.entries: list[PresetEntry] = []
        self._starting = False
        # Workers started for the form's choice while it is filled in (Start hands them to the session).
        self.warm = WarmWorkers()
        self._warm_timer: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="new-body"):
            with Vertical(id="new-presets"):
                yield Label("[b]Preset[/]")
                yield OptionList(id="preset-list")
                yield Input(placeholder="or a .toml path, enter", id="preset-file", compact=True)
            with Vertical(id="new-right"):
                with VerticalScroll(id="new-form"):
                    yield Static(id="preset-desc")
                    yield _choice("strategy", STRATEGIES, "strategy", value="random", field=None)
                    for key, label, placeholder in FIELDS:
                        with Horizontal(classes="field", id=f"field-{key}"):
                            yield Label(label)
                            yield Input(placeholder=placeholder, type="integer", id=key, compact=True)
                    yield _choice("prior", [("none", _DEFAULT), ("the preset's defaults", "defaults")], "prior")
                    with Horizontal(classes="field", id="field-warm-start"):
                        yield Label("warm start from")
                        yield Input(placeholder="none (earlier sessions, comma-separated)", id="warm-start", compact=True)
                    for key, label, placeholder, kind in BUDGET_FIELDS:
                        with Horizontal(classes="field", id=f"field-{key}"):
                            yield Label(label)
                            yield Input(placeholder=placeholder, type=kind, id=key, compact=True)
                    for o in _WORD_OPTIONS:
                        yield _choice(o.label or o.name, [(o.default, _DEFAULT), *((c, c) for c in o.choices)], o.flag[2:])
                    yield _choice("device", [("auto: the best available", "auto"), ("cpu", "cpu")], "device",
                                  value="auto", field=None)
                    yield _choice("workers", [("default: the preset's, else 1", _DEFAULT),
                                              ("auto: packed from measurements", "auto"),
                                              *((f"{n} per device", str(n)) for n in (1, 2, 4))], "workers")
                    yield _choice("fuse", [("default: the preset's, else auto", _DEFAULT), ("auto: sized on the device", "auto"),
                                           ("off: one trial per worker", "off"),
                                           *((f"{n} trials per array", str(n)) for n in (4, 8, 16))], "fuse")
                    with Horizontal(classes="field"):
                        yield Label("session name")
                        yield Input(
                            placeholder="generated",
                            id="session-name",
                            compact=True,
                            validators=[SessionNameValidator(self.store)],
                        )
                    yield Static(id="name-error")
                    # the space last: the fields fit at 80x24 above it, and it wraps its choices (never cut)
                    yield Static(id="space-table")
                # outside the scroll: Start is always in view
                yield Button("Start  (ctrl+s)", variant="success", id="start", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        try:
            self.query_one("#session-name", Input).value = new_session_name(self.store)
        except TuituneError:
            pass
        self._show_options("random")
        app: Any = self.app
        self.entries, errors = load_presets(getattr(app, "preset_files", []), getattr(app, "bundled_presets", True))
        for e in errors:
            self.notify(e, severity="warning", timeout=6)
        self._fill_presets()
        if getattr(app, "probe_devices", True):
            self._probe()
        self._choice_changed()

    # ---- warm workers ---------------------------------------------------------------------------
    @on(Select.Changed, "#device")
    @on(Select.Changed, "#fuse")
    @on(Select.Changed, "#workers")
    @on(Input.Changed, "#seed")
    def _choice_changed(self) -> None:
        """The workers' choice (preset, seed, device, workers, fuse) may have changed: warm workers for it once it holds."""
        if self._warm_timer is not None:
            self._warm_timer.stop()
        self._warm_timer = self.set_timer(WARM_AFTER_S, self._warm_now)

    def _warm_now(self) -> None:
        e = self.entry
        if e is None or self._starting or self.tuitune.run_control.running:
            return  # a session running in this app keeps its device: its workers are not competed with
        try:
            choice = dict(preset_ref=e.ref, db=self.store, seed=self._int("seed") or 0, placement=self._placement())
        except ValueError:
            return  # a seed being typed: Start says what is wrong
        self._warm_up(choice)

    @work(thread=True, exit_on_error=False, group="warm")
    def _warm_up(self, choice: dict[str, Any]) -> None:
        self.warm.want(choice)

    def on_unmount(self) -> None:
        """Leaving the form (back, quit, or Start, whose session took them) closes the warm workers."""
        import threading

        threading.Thread(target=self.warm.close, name="tuitune-warm-close", daemon=True).start()

    def _fill_presets(self, select: str | None = None) -> None:
        ol = self.query_one("#preset-list", OptionList)
        ol.clear_options()
        ol.add_options([Option(e.preset.name, id=str(i)) for i, e in enumerate(self.entries)])
        if not self.entries:
            self.query_one("#preset-desc", Static).update("No presets found: give a preset .toml path on the left.")
            return
        names = [e.preset.name for e in self.entries]
        want = select or DEFAULT_PRESET
        ol.highlighted = names.index(want) if want in names else 0
        ol.focus()

    @work(thread=True, exit_on_error=False, group="devices")
    def _probe(self) -> None:
        devices = probe_devices()
        self.app.call_from_thread(self._set_devices, devices)

    def _set_devices(self, devices: list[tuple[str, str]]) -> None:
        sel = self.query_one("#device", Select)
        value = sel.value
        sel.set_options(devices)
        sel.value = value if value in [v for _, v in devices] else "auto"

    # ---- preset preview -------------------------------------------------------------------------
    @property
    def entry(self) -> PresetEntry | None:
        ol = self.query_one("#preset-list", OptionList)
        i = ol.highlighted
        return self.entries[i] if i is not None and 0 <= i < len(self.entries) else None

    @on(OptionList.OptionHighlighted, "#preset-list")
    def _preview(self) -> None:
        e = self.entry
        if e is None:
            return
        self._choice_changed()
        p = e.preset
        # Several objectives and constraints (the preset's lists) show as they will rank the trials.
        pairs = p.objectives or [[p.metric, p.direction]]
        goals = ", ".join(f"{m} ({d})" for m, d in pairs)
        if p.constraints:
            goals += "; " + ", ".join(p.constraints)
        self.query_one("#preset-desc", Static).update(
            f"[b]{p.name}[/]: {p.description}\n"
            f"[dim]{goals}, {p.max_epochs} epochs a trial"
            + (f", objective {p.objective_label}" if p.objective else "")
            + "[/]"
        )
        self.query_one("#space-table", Static).update(space_table(p))
        self.query_one("#max-epochs", Input).placeholder = str(p.max_epochs)

    @on(OptionList.OptionSelected, "#preset-list")
    def _preset_chosen(self) -> None:
        self.query_one("#strategy", Select).focus()

    @on(Input.Submitted, "#preset-file")
    def _load_file(self, event: Input.Submitted) -> None:
        from tuitune.training.presets import load_preset

        path = event.value.strip()
        if not path:
            return
        try:
            preset = load_preset(path)
        except TuituneError as e:
            self.notify(str(e), severity="error", timeout=8)
            return
        self.entries.append(PresetEntry(path, preset))
        self._fill_presets(select=preset.name)
        self.query_one("#preset-list", OptionList).highlighted = len(self.entries) - 1

    # ---- strategy options -----------------------------------------------------------------------
    @on(Select.Changed, "#strategy")
    def _strategy_changed(self, event: Select.Changed) -> None:
        self._show_options(str(event.value))

    def _show_options(self, strategy: str) -> None:
        shown = OPTIONS.get(strategy, set())
        for key in [k for k, _, _ in FIELDS] + [o.flag[2:] for o in _WORD_OPTIONS]:
            self.query_one(f"#field-{key}").display = key in shown
        for key, *_ in BUDGET_FIELDS:  # a manual session runs the change the user asks for
            self.query_one(f"#field-{key}").display = strategy != "manual"
        self.query_one("#field-prior").display = strategy in PRIOR_STRATEGIES
        self.query_one("#field-warm-start").display = strategy != "manual"

    @on(Input.Changed, "#session-name")
    def _name_changed(self, event: Input.Changed) -> None:
        res = event.validation_result
        err = "" if res is None or res.is_valid else "; ".join(res.failure_descriptions)
        self.query_one("#name-error", Static).update(f"[red]{err}[/]" if err else "")

    # ---- start ----------------------------------------------------------------------------------
    def _int(self, key: str) -> int | None:
        inp = self.query_one(f"#{key}", Input)
        if not inp.display and not self.query_one(f"#field-{key}").display:
            return None
        text = inp.value.strip()
        if not text:
            return None
        try:
            v = int(text)
        except ValueError:
            raise ValueError(f"{key.replace('-', ' ')}: {text!r} is not a whole number") from None
        if key != "seed" and v < 1:
            raise ValueError(f"{key.replace('-', ' ')} must be 1 or more, got {v}")
        return v

    def settings(self) -> dict[str, Any]:
        """What ``new_run`` is called with; raises ValueError with a message for the user."""
        e = self.entry
        if e is None:
            raise ValueError("choose a preset first")
        strategy = str(self.query_one("#strategy", Select).value)
        name = self.query_one("#session-name", Input).value.strip() or None
        if name is not None:
            try:
                check_session_name(name)
            except TuituneError as err:
                raise ValueError(str(err)) from None
            if self.store.session_exists(name):
                raise ValueError(f"a session named '{name}' exists; choose another name")
        options: dict[str, Any] = {
            o.name: self._int(o.flag[2:]) for o in _SCREEN_OPTIONS if strategy in o.strategies and not o.choices
        }
        for o in _WORD_OPTIONS:
            word = self.query_one(f"#{o.flag[2:]}", Select).value
            if strategy in o.strategies and word != _DEFAULT:
                options[o.name] = str(word)
        prior = str(self.query_one("#prior", Select).value)
        warm = [w.strip() for w in self.query_one("#warm-start", Input).value.split(",") if w.strip()]
        budget: dict[str, Any] = {}
        if strategy != "manual":
            budget["time"] = self.query_one("#time", Input).value.strip() or None
            budget["total_epochs"] = self._int("total-epochs")
            target = self.query_one("#target", Input).value.strip()
            if target:
                try:
                    budget["target"] = float(target)
                except ValueError:
                    raise ValueError(f"target value: {target!r} is not a number") from None
        placement = self._placement()
        return dict(
            preset_ref=e.ref,
            strategy=strategy,
            trials=self._int("trials"),
            max_epochs=self._int("max-epochs"),
            seed=self._int("seed") or 0,
            session=name,
            placement=placement,
            options={k: v for k, v in options.items() if v is not None},
            budget=budget,
            prior=prior if prior != _DEFAULT and strategy in PRIOR_STRATEGIES else None,
            warm_start=warm if warm and strategy != "manual" else None,
        )

    def _placement(self) -> dict[str, Any]:
        """Where the trials run, as ``new_run`` takes it: the device, the workers and the array size chosen."""
        device = str(self.query_one("#device", Select).value)
        fuse = self.query_one("#fuse", Select).value
        placement: dict[str, Any] = {} if device == "auto" else {"devices": device}
        if fuse != _DEFAULT:
            placement["fuse"] = str(fuse)
        workers = self.query_one("#workers", Select).value
        if workers != _DEFAULT:
            placement["workers"] = str(workers)  # parsed by Placement as --workers is
        return placement

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self._starting:
            return
        try:
            settings = self.settings()
        except ValueError as err:
            self.notify(str(err), severity="error")
            return
        self._starting = True
        self.notify(f"preparing {settings['preset_ref']}…", timeout=3)
        self._launch(settings)

    @work(thread=True, exit_on_error=False, group="launch")
    def _launch(self, settings: dict[str, Any]) -> None:
        from tuitune.launch import new_run

        ref = settings.pop("preset_ref")
        try:
            launch = new_run(ref, db=self.store, **settings)
            self.warm.adopt(launch)  # the workers started while the form was open, when they fit the session
        except TuituneError as e:
            self.app.call_from_thread(self._failed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - shown, never a traceback
            self.app.call_from_thread(self._failed, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self._open, launch)

    def _failed(self, text: str) -> None:
        self._starting = False
        self.notify(text, severity="error", timeout=10)

    def _open(self, launch: Any) -> None:
        self._starting = False
        self.tuitune.open_dashboard(launch.name, launch=launch, switch=True)

    def action_back(self) -> None:
        self.app.pop_screen()

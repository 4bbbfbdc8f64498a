"""Provides HelpScreen: every key of the screen below and of the app, the hidden ones too (``?``)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

# How keys are written on screen (Textual's names are for code).
KEY_NAMES = {
    "asterisk": "*",
    "slash": "/",
    "right_square_bracket": "]",
    "left_square_bracket": "[",
    "question_mark": "?",
    "escape": "esc",
    "enter": "enter",
}


def key_label(key: str) -> str:
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


NOISE = {"super+c", "ctrl+pageup", "ctrl+pagedown", "left", "right", "tab", "shift+tab"}  # Textual's own


def screen_keys(screen: Screen) -> list[tuple[str, str, bool]]:
    """(keys, what they do, usable now) of every key on ``screen``: the screen's own first (those it
    cannot use now too, such as pause while nothing runs), then the app's, then the focused widget's."""
    groups: list[dict[str, tuple[str, str, bool]]] = [{}, {}, {}]
    active = screen.active_bindings

    def add(group: int, key: str, b: Binding, enabled: bool) -> None:
        if key in NOISE or b.action == "command_palette":
            return
        desc = b.description or b.action.replace("_", " ")
        seen = groups[group]
        if desc in seen:  # several keys for one action: one row
            k, d, e = seen[desc]
            if key_label(key) not in k.split(", "):
                seen[desc] = (f"{k}, {key_label(key)}", d, e or enabled)
            return
        seen[desc] = (key_label(key), desc, enabled)

    for b in type(screen).BINDINGS:  # the screen's own keys, usable now or not
        if not isinstance(b, Binding):
            continue
        usable = screen.app._check_action_state(b.action, screen) is True
        for key in b.key.split(","):
            add(0, key.strip(), b, usable)
    for key, a in active.items():
        if a.node is not screen:
            add(1 if a.node is screen.app else 2, key, a.binding, a.enabled)
    rows = [r for g in groups for r in g.values()]
    rows.append(("ctrl+p", "command palette: every action by name", True))
    return rows


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened on; escape, ?, q or enter closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HelpScreen DataTable { height: auto; max-height: 100%; }
    HelpScreen Label { width: 100%; }
    """
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, title: str, keys: list[tuple[str, str, bool]]) -> None:
        super().__init__()
        self.title_text, self.keys = title, keys

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]keys: {self.title_text}[/]  [dim](esc or enter closes; ctrl+p finds any action by name)[/]")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=True, show_header=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "action")
        for key, desc, enabled in self.keys:
            style = "" if enabled else "dim"
            table.add_row(Text(key, style="bold " + style), Text(desc + ("" if enabled else " (not now)"), style=style))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter (the focused table's select) closes it too: a row is a key's description, nothing to open."""
        event.stop()
        self.dismiss(None)

"""Provides the small modal dialogs: a yes/no confirmation and a file-name prompt."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ConfirmDialog(ModalScreen[bool]):
    """Asks a yes/no question; y/enter answers yes, n/escape no."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > Vertical {
        width: 64; max-width: 95%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmDialog Label { width: 100%; margin-bottom: 1; }
    ConfirmDialog Horizontal { height: auto; align-horizontal: right; }
    ConfirmDialog Button { margin-left: 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button(f"{self.yes} (y)", variant="warning", id="yes")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PathDialog(ModalScreen[str | None]):
    """Asks for a file name, prefilled; enter accepts, escape cancels.

    Enter is handled here only: a subclass changes what it answers through ``answer``. (Textual calls
    the ``on_input_submitted`` of every class in the MRO: a subclass handler beside this one dismissed
    twice, and the second dismiss closed the screen beneath the dialog.)
    """

    DEFAULT_CSS = """
    PathDialog { align: center middle; }
    PathDialog > Vertical {
        width: 72; max-width: 95%; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    PathDialog Label { margin-bottom: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.title_text, self.value = title, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, id="path")
            yield Label("[dim]enter: write   escape: cancel[/]")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(self.answer(event.value))

    def answer(self, text: str) -> str | None:
        """What Enter answers for the typed ``text``: a path, or None (nothing typed) to cancel."""
        return text.strip() or None

    def action_cancel(self) -> None:
        self.dismiss(None)


class NoteDialog(PathDialog):
    """Asks for a free-text note, prefilled with the current one; an empty note clears it."""

    # The rest of its style is PathDialog's: a type selector matches subclasses too.
    DEFAULT_CSS = """
    NoteDialog > Vertical { width: 76; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.value, id="path", placeholder="a note (empty: none)")
            yield Label("[dim]enter: save   escape: cancel[/]")

    def answer(self, text: str) -> str | None:
        return text.strip()  # empty: the note is cleared (escape cancels)

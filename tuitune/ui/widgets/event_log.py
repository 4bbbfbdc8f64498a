"""Provides EventLog, the dashboard's log of a run's events, one entry per event.

Unlike a RichLog, which wraps each line once at the width it has when written (a line written before
the narrow layout applied stayed cut at 80 columns), the entries are wrapped again whenever the width
changes, and an entry's continuation lines are indented under its first, so that one entry never reads
as two or runs into the next ("trial 0 complete" / "val_acc=0.9694 (new" / "best)").
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

INDENT = 2  # the continuation lines of a wrapped entry


def _spaces_styled(text: Text) -> Text:
    """Each styled run takes the spaces that follow it, so that no run starts with a space: an SVG
    screenshot viewed with librsvg drew such a space zero-wide ("trial 0 completeval_acc=...")."""
    plain = text.plain
    spans = []
    for span in text.spans:
        end = span.end
        while end < len(plain) and plain[end] == " ":
            end += 1
        spans.append(span._replace(end=end))
    text.spans = spans
    return text


class EventLog(VerticalScroll):
    """Entries written with ``write(markup)``; the newest at the bottom, in view."""

    DEFAULT_CSS = """
    EventLog { overflow-x: hidden; scrollbar-size-vertical: 1; }
    EventLog > Static { width: 100%; height: auto; }
    """

    def __init__(self, max_entries: int = 500, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.max_entries = max_entries
        self.entries: list[Text] = []
        self._wrapped: list[Text] = []  # the entries wrapped at ``_width``
        self._width = 0

    def compose(self) -> ComposeResult:
        yield Static()

    @property
    def text(self) -> str:
        """Every entry, one a line, as plain text (unwrapped)."""
        return "\n".join(e.plain for e in self.entries)

    def write(self, markup: str) -> None:
        entry = _spaces_styled(Text.from_markup(markup))
        self.entries.append(entry)
        del self.entries[: -self.max_entries]
        if self._width:  # only the new entry is wrapped (a full redraw of 500 took 22 ms)
            self._wrapped.append(self._wrap(entry, self._width))
            del self._wrapped[: -self.max_entries]
            self._show()
        else:
            self._draw()

    def on_resize(self) -> None:
        # the new width is known once the layout is done (a narrow breakpoint applies after the first one)
        self.call_after_refresh(self._redraw_if_resized)

    def _redraw_if_resized(self) -> None:
        if self.scrollable_content_region.width != self._width:
            self._draw()

    @staticmethod
    def _wrap(entry: Text, width: int) -> Text:
        """The entry in lines of ``width`` cells, its continuation lines indented."""
        if entry.cell_len <= width:
            return entry
        console = Console(width=width, legacy_windows=False, color_system=None)
        return Text("\n" + " " * INDENT).join(entry.wrap(console, width - INDENT))

    def _draw(self) -> None:
        """Wraps every entry at the current width (after a resize) and shows them."""
        width = self.scrollable_content_region.width
        if not self.is_mounted or width <= INDENT + 4:
            return
        self._width = width
        self._wrapped = [self._wrap(e, width) for e in self.entries]
        self._show()

    def _show(self) -> None:
        self.query_one(Static).update(Text("\n").join(self._wrapped))
        self.call_after_refresh(self.scroll_end, animate=False)

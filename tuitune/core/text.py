"""Provides ``fmt``: the one compact rendering of a value, shared by the command line, the headless
display and the TUI."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'max_epochs'?)`` when one of ``options`` is close to ``word`` (a typo), else ''."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 trial``, ``2 trials``, ``0 trials``: a count and its noun."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def config_text(config: Mapping[str, Any], names: Iterable[str], sep: str = " ") -> str:
    """``lr=0.01 optimizer=adam beta1=0.9``: the parameters ``names`` of a config, each once. An inactive
    conditional parameter (absent from the config: momentum under adam) is left out, never ``momentum=-``."""
    return sep.join(f"{n}={fmt(config[n])}" for n in names if n in config)


def fmt(v: Any, digits: int = 4) -> str:
    """4 significant digits for floats, '-' for None, booleans as TOML writes them (true/false)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.{digits}g}"
    return str(v)


_ESCAPES = None


def printable(text: object) -> str:
    """User text (a note, a reason, a name read back from a database) safe to print on a terminal: escape
    sequences (window title, clear screen, hyperlinks) and other control characters removed; newlines and
    tabs kept. The one sanitizer of text tuitune prints that it did not write itself."""
    import re

    global _ESCAPES
    if _ESCAPES is None:
        _ESCAPES = re.compile(
            r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL/ST (titles, hyperlinks)
            r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC ... ST
            r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor moves, clear screen)
            r"|\x1b[ -/]*[0-~]?"  # other ESC sequences, or a lone ESC
            r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
            r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # the remaining C0 and C1 controls (not \t, \n)
        )
    return _ESCAPES.sub("", str(text))


def array_words(info: Any) -> str:
    """``a3 x8``: the fused array a trial trained in (its first trial's number, its size), from the trial's
    info (``array_of``, ``array``); '' for a trial that trained alone."""
    if not isinstance(info, dict):
        return ""
    size = info.get("array")
    if not isinstance(size, int) or size < 2:
        return ""
    first = info.get("array_of")
    return f"a{first} x{size}" if first is not None else f"x{size}"


def where_words(info: Any) -> str:
    """Where a trial ran, for a table's ``where`` column: ``w1 cuda:0`` (a local worker), ``node-2 cuda:0``
    (a Ray node), ``w0 cpu [a3 x8]`` (a member of the array of 8 that trial 3 opened), ``held`` (asked for an
    array, not started yet); '-' when unknown."""
    if not isinstance(info, dict):
        return "-"
    if info.get("held"):
        return "held"
    who = info.get("node") or (f"w{info['worker']}" if info.get("worker") is not None else None)
    arr = array_words(info)
    return " ".join(str(x) for x in (who, info.get("device"), f"[{arr}]" if arr else None) if x) or "-"


def db_option(db_path: str | os.PathLike[str] | None) -> list[str]:
    """``["--db", PATH]`` when ``db_path`` is not the default database, else ``[]``: what a printed
    command needs so that it works when pasted."""
    from tuitune.core.paths import default_db_path

    if db_path is None:
        return []
    path = Path(db_path).expanduser().resolve()
    return [] if path == default_db_path().expanduser().resolve() else ["--db", str(path)]


def resume_command(name: str, db_path: str | os.PathLike[str] | None = None, *extra: str) -> str:
    """``tuitune resume NAME [extra...] [--db PATH]``, pasteable (see db_option)."""
    import shlex

    return " ".join(shlex.quote(w) for w in ["tuitune", "resume", name, *extra, *db_option(db_path)])

"""Provides ``fmt``: the one compact rendering of a value, shared by the command line, the headless
display and the TUI."""

from __future__ import annotations

import math
from typing import Any


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
    (a Ray node), ``w0 cpu [a3 x8]`` (a member of the array of 8 that trial 3 opened); '-' when unknown."""
    if not isinstance(info, dict):
        return "-"
    who = info.get("node") or (f"w{info['worker']}" if info.get("worker") is not None else None)
    arr = array_words(info)
    return " ".join(str(x) for x in (who, info.get("device"), f"[{arr}]" if arr else None) if x) or "-"

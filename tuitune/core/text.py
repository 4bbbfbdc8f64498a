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

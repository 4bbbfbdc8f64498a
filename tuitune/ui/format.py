"""Provides the formatting of values, durations and times shared by the screens (no Textual import)."""

from __future__ import annotations

import math
import time
from typing import Any

from tuitune.core.text import config_text, fmt, plural  # noqa: F401 - the one rendering of values, re-exported for the screens


def fmt_delta(d: float | None) -> str:
    if d is None:
        return "-"
    return f"{d:+.3g}"


def fmt_duration(seconds: float | None) -> str:
    """``12s``, ``3:04``, ``1:02:03``; '-' when unknown."""
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_time(ts: float | None) -> str:
    """A local date and time, to the minute."""
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def describe_param(d: dict[str, Any]) -> tuple[str, str]:
    """(type, range) of a stored parameter dict, e.g. ('float', '1e-05..0.1 log')."""
    kind = d.get("type", "?")
    if kind in ("float", "int"):
        rng = f"{fmt(d.get('low'))}..{fmt(d.get('high'))}"
        scale = d.get("scale") or "linear"
        extra = []
        if scale != "linear":
            extra.append(scale)
        if d.get("step") not in (None, 1) or (kind == "float" and d.get("step")):
            extra.append(f"step {fmt(d.get('step'))}")
        if d.get("prior") is not None:
            extra.append(f"prior {fmt(d.get('prior'))}")
        return kind, " ".join([rng, *extra])
    if kind == "choice":
        prior = f" (prior {fmt(d['prior'])})" if d.get("prior") is not None else ""
        return kind, ", ".join(fmt(v) for v in d.get("values", [])) + prior
    if kind == "fixed":
        return kind, fmt(d.get("value"))
    return kind, ""

"""Provides the charts' value axis without Textual: round ticks, the curves that matter kept in view, a
diverging curve clipped (and named), and a log axis for losses that span decades.

A trial with lr 3.1 reached train loss 241 at epoch 1: on a linear axis to 241 every other curve was a
flat line at the bottom. ``value_axis`` leaves such a curve off the axis when it is not one that matters
(the best or the selected trial), and says so; when the curves that matter span decades themselves (the
diverging trial is the one shown), a loss goes on a log axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# A curve is off the chart when its peak (floor) lies beyond the other curves' upper (lower) quartile by
# more than FENCE inter-quartile ranges, and keeping it would more than double the axis.
FENCE = 3.0
# A loss axis goes logarithmic when the values kept on it span more than this factor.
LOG_SPAN = 30.0


@dataclass
class Curve:
    """One curve's values; ``number`` names it in the note; ``matters``: never left off the axis."""

    number: int | None
    values: Sequence[float]
    matters: bool = False


@dataclass
class ValueAxis:
    """Where values go on the chart: ``y(v)`` (log10 on a log axis), the limits and ticks in those
    coordinates, the tick labels, and a note for the title ("log axis", "#5 off the chart: 241")."""

    lo: float
    hi: float
    log: bool = False
    ticks: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    note: str = ""

    def y(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def ys(self, values: Sequence[float]) -> list[float]:
        return [self.y(v) for v in values]


def _quartiles(xs: Sequence[float]) -> tuple[float, float]:
    s = sorted(xs)
    n = len(s)

    def q(p: float) -> float:
        i = p * (n - 1)
        lo = math.floor(i)
        return s[lo] + (s[min(lo + 1, n - 1)] - s[lo]) * (i - lo)

    return q(0.25), q(0.75)


def _off_chart(curves: list[Curve]) -> tuple[list[Curve], list[Curve]]:
    """(the curves kept, the ones left off): the latter diverge from the rest and do not matter."""
    if len(curves) < 4:
        return curves, []
    peaks = [max(c.values) for c in curves]
    floors = [min(c.values) for c in curves]
    q1, q3 = _quartiles(peaks)
    f1, f3 = _quartiles(floors)
    top = q3 + FENCE * max(q3 - q1, 0.05 * abs(q3), 1e-12)
    bottom = f1 - FENCE * max(f3 - f1, 0.05 * abs(f1), 1e-12)
    kept = [c for c, p, f in zip(curves, peaks, floors) if c.matters or bottom <= f and p <= top]
    if not kept or len(kept) == len(curves):
        return curves, []
    lo = min(min(c.values) for c in kept)
    hi = max(max(c.values) for c in kept)
    span = max(hi - lo, 1e-12)
    left = [c for c in curves if c not in kept]
    # Leave them off only where that gains: the full axis would be more than twice the kept one.
    full_lo = min(lo, *(min(c.values) for c in left))
    full_hi = max(hi, *(max(c.values) for c in left))
    if full_hi - full_lo <= 2 * span:
        return curves, []
    return kept, left


def _label(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if not math.isclose(round(step, decimals), step, rel_tol=1e-9):
        decimals += 1  # 2.5, 0.25 ...
    text = f"{v:.{decimals}f}"
    return "0" if float(text) == 0 else text


def linear_ticks(lo: float, hi: float, count: int) -> tuple[float, float, list[float], list[str]]:
    """Round ticks (about ``count``) inside an axis a little wider than ``lo``..``hi``: (axis lo, axis hi,
    ticks, labels). The axis is not stretched to a round end: the curves keep the chart's height."""
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 2)
    mag = 10 ** math.floor(math.log10(raw))
    # the round step whose tick count comes nearest ``count`` (the coarser one on a tie), never a lone tick
    # where two or more fit: one label does not tell the scale
    def ticks_of(st: float) -> int:
        return math.floor(hi / st + 1e-9) - math.ceil(lo / st - 1e-9) + 1

    step = min(
        (m * mag for m in (0.5, 1, 2, 2.5, 5, 10)),
        key=lambda st: (ticks_of(st) < 2, abs(ticks_of(st) - count), -st),
    )
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    ticks = [round(i * step, 12) for i in range(first, last + 1)]
    return lo, hi, ticks, [_label(t, step) for t in ticks]


def _log_ticks(lo: float, hi: float) -> tuple[float, float, list[float], list[str]]:
    """Decade ticks (with 2 and 5 between when there are few decades), in log10 coordinates."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if b - a <= 2 else (1,)
    ticks = [d + math.log10(m) for d in range(a, b + 1) for m in mults if d + math.log10(m) <= b + 1e-9]
    labels = [f"{10 ** t:.{max(0, -math.floor(t + 1e-9))}f}" for t in ticks]
    return float(a), float(b), ticks, labels


def value_axis(curves: Sequence[Curve], *, loss: bool = False, rows: int = 10) -> ValueAxis:
    """The axis for ``curves`` on a chart of ``rows`` text rows."""
    curves = [c for c in curves if len(c.values)]
    if not curves:
        return ValueAxis(0.0, 1.0, ticks=[0.0, 1.0], labels=["0", "1"])
    kept, left = _off_chart(curves)
    notes = []
    if left:
        worst = max(left, key=lambda c: max(abs(v) for v in c.values))
        extreme = max(worst.values, key=abs)
        named = ", ".join(f"#{c.number}" for c in left[:3] if c.number is not None) + ("…" if len(left) > 3 else "")
        notes.append(f"{named or 'a curve'} off the chart ({extreme:.3g})")
    lo = min(min(c.values) for c in kept)
    hi = max(max(c.values) for c in kept)
    count = max(2, min(6, rows // 4 + 1))  # a tick about every 4 rows: evenly spaced on the text grid
    if loss and lo > 0 and hi / lo > LOG_SPAN:
        a, b, ticks, labels = _log_ticks(lo, hi)
        notes.append("log axis")
        return ValueAxis(a, b, log=True, ticks=ticks, labels=labels, note=", ".join(notes))
    a, b, ticks, labels = linear_ticks(lo, hi, count)
    return ValueAxis(a, b, ticks=ticks, labels=labels, note=", ".join(notes))

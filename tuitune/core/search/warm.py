"""Provides warm starts: earlier sessions' complete trials, fitted to this session's space and ranked.

The one rule of what an earlier trial brings to a new session (``warm_start="name"``, ``--warm-start``):
its config, made to fit the current space (parameters that left are dropped, new ones take the session's
default, else the middle of their range; a config that still does not fit, a value outside a changed
range or a choice that left, is dropped), and its rank within its own session (0 the best, 1 the worst),
not its value, so a metric that shifted or changed scale between the sessions still helps. The result is
a plain list stored with the session, so its resumes see the same data whatever the earlier sessions do
since. Strategies get it through their constructor (``warm_start=``): bayes fits its model on it beside
its own trials; every strategy that draws configs suggests the best ones first (``Strategy.draw``).

How far a session trusts its warm start is ``transfer_weight``: how well a model of the earlier trials ranks
this session's own values (RGPE's ranking loss, Feurer et al. 2018), so a misleading earlier session fades.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tuitune.core.errors import SpaceError
from tuitune.core.records import TrialRecord, ranked
from tuitune.core.search.space import Space

# How many of the earlier sessions' best configs a session suggests first.
WARM_FIRST = 3


def transfer_weight(predicted: Sequence[float], observed: Sequence[float]) -> float:
    """How well an earlier session's model ranks this session's values, in [0, 1] (both: lower is better).

    Over the pairs of this session's points whose values differ: the share the prediction orders the same
    way (a tie in the prediction counts half), as RGPE's ranking loss counts misranked pairs; mapped to
    ``2 * share - 1`` and clipped at 0 (Kendall's tau), so a model no better than chance, or reversed, gets
    no weight and one that ranks every pair right gets 1. Fewer than two distinct values: 0 (no evidence).
    """
    import numpy as np

    n = len(observed)
    if len(predicted) != n:
        raise ValueError(f"transfer_weight: {len(predicted)} predictions for {n} values")
    y, p = np.asarray(observed, dtype=float), np.asarray(predicted, dtype=float)
    agree = ties = pairs = 0  # whole counts over the pairs i < j: the share is exact, whatever the order
    for lo in range(0, n, _BLOCK):  # numpy over blocks of rows: n = 2,000 is 2 million pairs, not a Python loop
        rows = np.arange(lo, min(lo + _BLOCK, n))
        upper = rows[:, None] < np.arange(lo, n)[None, :]  # the columns j > i (those before lo were counted)
        dy = np.sign(y[rows, None] - y[None, lo:])[upper]
        dp = np.sign(p[rows, None] - p[None, lo:])[upper]
        differ = dy != 0
        pairs += int(differ.sum())
        agree += int((differ & (dp == dy)).sum())
        ties += int((differ & (dp == 0)).sum())
    good = agree + 0.5 * ties
    return max(0.0, 2 * good / pairs - 1) if pairs else 0.0


_BLOCK = 256  # rows of pairs compared at once (at most 256 x n values)


def fit_config(space: Space, config: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An earlier config made to fit ``space``, or None when it cannot."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if not p.searched:
            out[name] = p.from_unit(0.5)  # a Fixed parameter: this session's value
        elif name in config:
            out[name] = config[name]
        elif defaults and name in defaults:
            out[name] = defaults[name]
        else:
            out[name] = p.from_unit(0.5)
    try:
        return space.check(space.prune(out))
    except SpaceError:
        return None


def warm_trials(
    space: Space,
    defaults: Mapping[str, Any] | None,
    sources: Iterable[tuple[str, str, Iterable[TrialRecord]]],
) -> list[dict[str, Any]]:
    """The warm-start data from ``(session name, direction, trials)`` sources: ``{"config", "rank",
    "session", "trial"}`` entries, best rank first (ties: the sources' order, then the trial number)."""
    out = []
    for name, direction, trials in sources:
        board = ranked(trials, direction)
        for i, t in enumerate(board):
            config = fit_config(space, t.config, defaults)
            if config is not None:
                rank = i / (len(board) - 1) if len(board) > 1 else 0.0
                out.append({"config": config, "rank": rank, "session": name, "trial": t.number})
    return sorted(out, key=lambda w: w["rank"])  # stable: the sources' order, then the board's, for ties

"""Provides the run loop that bench_multiobjective.py and bench_constraints.py share: every function x seed x
method x budget once, resumable from the raw JSON file, each ask/tell run timed per trial; and their
table cell of one method against a peer (``win_loss``).

In a module of its own so both scripts import it (benchmarks/ is on their sys.path)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Points = list[tuple[float, float]]


def run_all(
    a: argparse.Namespace,
    problems: dict[str, Any],
    run: Callable[[Any, int, int, str], Points],
    score: Callable[[Any, Points, int], Any],
) -> tuple[dict[str, Any], list[int], list[str], dict[str, list[float]]]:
    """Runs what the raw file (``a.raw``) lacks: bayes at every budget of ``a.checkpoints`` and ``a.trials``,
    the other methods at ``a.trials`` (their prefixes give the smaller budgets). ``run(problem, seed, budget,
    method)`` gives the (value, value) points in trial order; ``score`` is what each run prints. Returns the
    raw runs, the budgets, the methods and each method's seconds per trial."""
    budgets = sorted({a.trials, *(int(x) for x in a.checkpoints.split(",") if x)})
    methods = a.methods.split(",")
    raw: dict[str, Any] = json.loads(Path(a.raw).read_text()) if a.raw and Path(a.raw).exists() else {}
    secs: dict[str, list[float]] = {m: [] for m in methods}
    for fname in a.functions.split(","):
        p = problems[fname]
        for seed in range(a.seeds):
            for m in methods:
                for b in (budgets if m == "bayes" else [a.trials]):
                    key = f"{fname}/{m}/{b}/{seed}"
                    if key in raw:
                        continue
                    t0 = time.perf_counter()
                    raw[key] = run(p, seed, b, m)
                    secs[m].append((time.perf_counter() - t0) / b)
                    print(key, score(p, raw[key], b), flush=True)
            if a.raw:
                Path(a.raw).write_text(json.dumps(raw))
    return raw, budgets, methods, secs


def win_loss(ours: list[float | None], theirs: list[float | None], *, higher_is_better: bool) -> str:
    """``W-L (p)``: the seeds where ours is better and worse than the peer's (paired by seed; a seed either
    lacks is left out), and the two-sided Wilcoxon signed-rank p-value (nan where it cannot be computed)."""
    from scipy.stats import wilcoxon

    pairs = [(x, y) for x, y in zip(ours, theirs) if x is not None and y is not None]
    w = sum((x > y) if higher_is_better else (x < y) for x, y in pairs)
    lo = sum((x < y) if higher_is_better else (x > y) for x, y in pairs)
    try:
        pv = wilcoxon([x for x, _ in pairs], [y for _, y in pairs]).pvalue
    except ValueError:
        pv = float("nan")
    return f"{w}-{lo} ({pv:.3g})"

"""Provides the run loop that bench_multiobjective.py and bench_constraints.py share: every function x seed x
method x budget once, resumable from the raw JSON file, each ask/tell run timed per trial; and their
table cell of one method against a peer (``win_loss``), and the deletion of one method's runs to
make them again (``drop_runs``); and bayes' module constants set for one run (``constants``), which the
variant screens (bench_constraints_screen.py, bench_single_screen.py) share.

In a module of its own so both scripts import it (benchmarks/ is on their sys.path)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Points = list[tuple[float, float]]


@contextmanager
def constants(settings: dict[str, Any]) -> Iterator[None]:
    """Sets bayes' module constants for the ``with`` block and restores them after: a key names a constant of
    ``bayes/strategy.py`` (``"CONSTRAINED_ANCHORS"``) or of ``bayes/ehvi.py`` (``"ehvi.WARP"``)."""
    from tuitune.core.search.strategies.bayes import ehvi, strategy

    def where(key: str) -> tuple[object, str]:
        return (ehvi, key[5:]) if key.startswith("ehvi.") else (strategy, key)

    before = {k: getattr(*where(k)) for k in settings}
    for k, v in settings.items():
        setattr(*where(k), v)
    try:
        yield
    finally:
        for k, v in before.items():
            setattr(*where(k), v)


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


def paired(ours: list[float | None], theirs: list[float | None], *, higher_is_better: bool) -> tuple[int, int, float]:
    """The seeds where ours is better and worse than the peer's (paired by seed; a seed either lacks is left
    out), and the two-sided Wilcoxon signed-rank p-value (nan where it cannot be computed)."""
    from scipy.stats import wilcoxon

    pairs = [(x, y) for x, y in zip(ours, theirs) if x is not None and y is not None]
    w = sum((x > y) if higher_is_better else (x < y) for x, y in pairs)
    lo = sum((x < y) if higher_is_better else (x > y) for x, y in pairs)
    try:
        pv = float(wilcoxon([x for x, _ in pairs], [y for _, y in pairs]).pvalue)
    except ValueError:
        pv = float("nan")
    return w, lo, pv


def win_loss(ours: list[float | None], theirs: list[float | None], *, higher_is_better: bool) -> str:
    """``W-L (p)``: ``paired``'s counts and p-value as one table cell."""
    w, lo, pv = paired(ours, theirs, higher_is_better=higher_is_better)
    return f"{w}-{lo} ({pv:.3g})"


def drop_runs(raw_path: str, functions: list[str], methods: list[str], seeds: int) -> int:
    """Deletes from the raw JSON file the runs of ``methods`` on ``functions`` for seeds below ``seeds`` (every
    budget), so that the next ``run_all`` makes them again and keeps every other method's runs. Returns how
    many were deleted."""
    path = Path(raw_path)
    if not raw_path or not path.exists():
        return 0
    raw = json.loads(path.read_text())

    def chosen(key: str) -> bool:  # keys are function/method/budget/seed; a function's name may hold a "/"
        f, m, _b, s = key.rsplit("/", 3)
        return f in functions and m in methods and int(s) < seeds

    gone = [k for k in raw if chosen(k)]
    for k in gone:
        del raw[k]
    path.write_text(json.dumps(raw))
    return len(gone)

"""Measures tuitune's bayes with a constraint (log EI x probability of feasibility) against Optuna's
constrained GPSampler and TPESampler, and random search.

Test functions (each minimised under one constraint on a second reported metric):

* ``gardner``: Gardner et al. (2014)'s problem 1, ``cos(2 x1) cos(x2) + sin(x1)`` on [0, 6]^2 subject to
  ``cos(x1) cos(x2) - sin(x1) sin(x2) <= 0.5``.
* ``branin-disc``: Branin subject to ``(x1 - 2.5)^2 + (x2 - 7.5)^2 <= 20``: every one of Branin's three
  minima lies outside the disc, so the constrained optimum is on its edge.

Per function and budget: the best feasible value found (lower is better; a run without a feasible trial
counts as the worst feasible value any method found on that function), its median over the seeds, how
many runs found no feasible trial, and bayes against each peer (wins-losses, paired Wilcoxon signed-rank).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_constraints.py --seeds 10 --trials 30
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _goal_runs import run_all, win_loss  # noqa: E402

from tuitune.core.records import TrialRecord, TrialState  # noqa: E402
from tuitune.core.search.space import Float, Space  # noqa: E402
from tuitune.core.search.strategies import make_strategy  # noqa: E402


@dataclass
class Problem:
    name: str
    space: Space
    f: Callable[[dict[str, Any]], tuple[float, float]]  # (value, constraint metric)
    bound: float  # feasible: constraint metric <= bound


def gardner(c: dict[str, Any]) -> tuple[float, float]:
    x1, x2 = c["x1"], c["x2"]
    return math.cos(2 * x1) * math.cos(x2) + math.sin(x1), math.cos(x1) * math.cos(x2) - math.sin(x1) * math.sin(x2)


def branin_disc(c: dict[str, Any]) -> tuple[float, float]:
    x1, x2 = c["x1"], c["x2"]
    b, cc, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    f = (x2 - b * x1**2 + cc * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s
    return f, (x1 - 2.5) ** 2 + (x2 - 7.5) ** 2


PROBLEMS = {
    "gardner": Problem("gardner", Space({"x1": Float(0.0, 6.0), "x2": Float(0.0, 6.0)}), gardner, 0.5),
    "branin-disc": Problem("branin-disc", Space({"x1": Float(-5.0, 10.0), "x2": Float(0.0, 15.0)}), branin_disc, 20.0),
}


def run_tuitune(p: Problem, seed: int, trials: int, strategy: str) -> list[tuple[float, float]]:
    s = make_strategy(strategy, p.space, seed=seed, n_trials=trials, metric="y", constraints=[f"c <= {p.bound}"])
    out = []
    for i in range(trials):
        sug = s.ask()
        s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config, budget=1))
        y, c = p.f(sug.config)
        s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=y, budget=1,
                           epochs=({"epoch": 1, "y": y, "c": c},)))
        out.append((y, c))
    return out


def run_optuna(p: Problem, seed: int, trials: int, sampler: str) -> list[tuple[float, float]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def cons(t: Any) -> list[float]:
        return [t.user_attrs["c"] - p.bound]

    smp = {"gp": lambda: optuna.samplers.GPSampler(seed=seed, constraints_func=cons),
           "tpe": lambda: optuna.samplers.TPESampler(seed=seed, constraints_func=cons)}[sampler]()
    study = optuna.create_study(direction="minimize", sampler=smp)
    out = []
    for _ in range(trials):
        tr = study.ask()
        cfg = {n: tr.suggest_float(n, prm.to_dict()["low"], prm.to_dict()["high"]) for n, prm in p.space.items()}
        y, c = p.f(cfg)
        tr.set_user_attr("c", c)
        study.tell(tr, y)
        out.append((y, c))
    return out


ALTERNATIVES = "## Alternatives measured"


def best_feasible(pts: list[tuple[float, float]], bound: float, upto: int) -> float | None:
    vals = [y for y, c in pts[:upto] if c <= bound]
    return min(vals) if vals else None


def scores(raw: dict[str, Any], f: str, methods: list[str], b: int, trials: int,
           seeds: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each method's best feasible value on ``f`` after ``b`` trials, per seed (bayes' run of that budget, the
    others' prefix of their ``trials`` run), a run without a feasible trial (or missing) scored as the worst
    feasible value any method found on ``f``; and how many runs found none."""
    p = PROBLEMS[f]
    got: dict[str, list[float | None]] = {}
    for m in methods:
        key_b = b if m == "bayes" else trials
        got[m] = [best_feasible(raw[f"{f}/{m}/{key_b}/{s}"], p.bound, b) if f"{f}/{m}/{key_b}/{s}" in raw else None
                  for s in range(seeds)]
    worst = max((v for vs in got.values() for v in vs if v is not None), default=0.0)
    return ({m: [worst if v is None else v for v in vs] for m, vs in got.items()},
            {m: sum(v is None for v in vs) for m, vs in got.items()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--checkpoints", default="20")
    ap.add_argument("--functions", default=",".join(PROBLEMS))
    ap.add_argument("--methods", default="bayes,gp,tpe,random")
    ap.add_argument("--raw", default=str(ROOT / "benchmarks/results/constraints-raw.json"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/constraints.md"))
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    raw, budgets, methods, secs = run_all(
        a, PROBLEMS,
        lambda p, seed, b, m: run_tuitune(p, seed, b, m) if m in ("bayes", "random") else run_optuna(p, seed, b, m),
        lambda p, pts, b: best_feasible(pts, p.bound, b),
    )
    report(raw, a, budgets, methods, secs)


def report(raw: dict[str, Any], a: argparse.Namespace, budgets: list[int], methods: list[str],
           secs: dict[str, list[float]]) -> None:

    lines = [
        "# Constraints: bayes (log EI x probability of feasibility) against Optuna's constrained GPSampler and TPE",
        "",
        f"`python benchmarks/bench_constraints.py --seeds {a.seeds} --trials {a.trials} --checkpoints {a.checkpoints}`"
        f" on {platform.node() or 'this machine'} ({os.cpu_count()} cores shared with other engineers,"
        f" OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), {datetime.date.today()}, Python"
        f" {platform.python_version()}, Optuna {__import__('optuna').__version__}.",
        "",
        "Best feasible value found (lower is better), median over the seeds; `none`: runs without a feasible"
        " trial (scored as the worst feasible value any method found on the function). `W-L` and `p`: bayes"
        " against the peer, paired by seed (Wilcoxon signed-rank, two-sided).",
        "",
    ]
    for b in budgets:
        lines += [f"## {b} trials", "", "| function | " + " | ".join(methods) + " | none (" + ", ".join(methods)
                  + ") | bayes vs gp W-L (p) | bayes vs tpe W-L (p) |", "|---" * (len(methods) + 4) + "|"]
        for f in a.functions.split(","):
            vals, none = scores(raw, f, methods, b, a.trials, a.seeds)
            row = [f] + [f"{statistics.median(vals[m]):.4f}" for m in methods]
            row.append(", ".join(str(none[m]) for m in methods))
            for peer in ("gp", "tpe"):
                if peer not in vals or "bayes" not in vals:
                    row.append("-")
                    continue
                row.append(win_loss(vals["bayes"], vals[peer], higher_is_better=False))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if any(secs.values()):
        lines += ["Seconds of ask + tell per trial (mean over the runs made in this invocation):", ""]
        lines += [f"- {m}: {statistics.mean(v):.3f}" for m, v in secs.items() if v]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.out:
        # The variants measured by bench_constraints_screen.py (written by hand) stay below the regenerated tables.
        old = Path(a.out).read_text() if Path(a.out).exists() else ""
        keep = old[old.index(ALTERNATIVES):] if ALTERNATIVES in old else ""
        Path(a.out).write_text(text + ("\n" + keep if keep else ""))


if __name__ == "__main__":
    main()

"""Measures tuitune's bayes strategy against Optuna's GPSampler and TPESampler and random search.

Each method runs the same test functions through ask/tell (no database): Branin, Hartmann3, Hartmann6,
Levy, Ackley, Rosenbrock, Styblinski-Tang (4D), Michalewicz (5D), "logscale" (log and log1m scales),
"mixed" (a float, two ints, two choices) and "conditional" (an HPO-like surface whose momentum, nesterov
and beta1 depend on the optimizer; "conditional-flat" is the same function on the flat space, the naive
version). Per function: the median final regret (best value found minus the known optimum) of each
method, its mean rank among the methods over the seeds, bayes against GPSampler (wins-losses and a paired
Wilcoxon signed-rank test), and the time of ask + tell per trial (the objective itself is not timed).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_bayes.py      # 60 trials (and 30), 20 seeds
    python benchmarks/bench_bayes.py --trials 30 --functions branin,mixed --seeds 5 --out ''
    python benchmarks/bench_bayes.py --raw runs.json ...     # per-seed results saved; runs found there reused

Optuna's samplers and random search do not know the budget, so the shorter budgets (``--checkpoints``) are
read off one run; bayes knows it (its initial design and its final exploitation depend on it), so it makes
one run per budget.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tuitune.core.records import TrialRecord, TrialState  # noqa: E402
from tuitune.core.search.space import Choice, Float, Int, Space  # noqa: E402
from tuitune.core.search.strategies import make_strategy  # noqa: E402


# ---- test functions -------------------------------------------------------------------------------------
@dataclass
class Problem:
    name: str
    space: Space
    f: Callable[[dict[str, Any]], float]
    optimum: float
    note: str


def _branin(c: dict[str, Any]) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, cc, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + cc * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(c: dict[str, Any]) -> float:
    x = np.array([c[f"x{i}"] for i in range(6)])
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def _logscale(c: dict[str, Any]) -> float:
    # A training-loss-like bowl in the coordinates the parameters live on: log10 lr, log10 weight decay,
    # log10 (1 - momentum), log2 batch size; lr and momentum interact (the effective step), plus ripples.
    a = math.log10(c["lr"]) + 2.5
    b = math.log10(c["weight_decay"]) + 4.0
    m = math.log10(1 - c["momentum"]) + 2.0
    e = math.log2(c["batch"]) - 6.0
    return a * a + 0.5 * m * m + 0.8 * a * m + 0.1 * b * b + 0.05 * e * e + 0.2 * math.sin(1.5 * a) ** 2


_SHIFT = {"sgd": 2.0, "adam": -1.0, "rmsprop": 0.5, "adagrad": -3.0}
_OFFSET = {"sgd": 0.3, "adam": 0.0, "rmsprop": 0.15, "adagrad": 0.6}


def _mixed(c: dict[str, Any]) -> float:
    a = c["x"] - _SHIFT[c["optimizer"]]
    n = c["layers"] - 13
    k = (c["units"] - 112) / 16
    return (
        0.25 * a * a + 0.02 * n * n + 0.02 * a * n + 0.04 * k * k
        + 0.1 * (1 - math.cos(math.pi * n / 3))
        + _OFFSET[c["optimizer"]] + (0.0 if c["bn"] else 0.25)
    )


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])


def _hartmann3(c: dict[str, Any]) -> float:
    x = np.array([c[f"x{i}"] for i in range(3)])
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1))))


def _vec(c: dict[str, Any], d: int) -> np.ndarray:
    return np.array([c[f"x{i}"] for i in range(d)], dtype=float)


def _levy(c: dict[str, Any]) -> float:
    x = _vec(c, len(c))
    w = 1 + (x - 1) / 4
    return float(
        math.sin(math.pi * w[0]) ** 2
        + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
        + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    )


def _ackley(c: dict[str, Any]) -> float:
    x = _vec(c, len(c))
    d = len(x)
    return float(
        -20 * math.exp(-0.2 * math.sqrt(np.sum(x * x) / d)) - math.exp(np.sum(np.cos(2 * math.pi * x)) / d) + 20 + math.e
    )


def _rosenbrock(c: dict[str, Any]) -> float:
    x = _vec(c, len(c))
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def _styblinski(c: dict[str, Any]) -> float:
    x = _vec(c, len(c))
    return float(np.sum(x**4 - 16 * x**2 + 5 * x) / 2)


def _michalewicz(c: dict[str, Any]) -> float:
    x = _vec(c, len(c))
    i = np.arange(1, len(x) + 1)
    return float(-np.sum(np.sin(x) * np.sin(i * x * x / math.pi) ** 20))


# A conditional HPO-like surface: each optimizer has its own good learning rate and its own parameter
# (momentum for sgd and rmsprop, beta1 for adam, nesterov for sgd); weight decay and width are shared.
# The function reads only the active parameters, so the flat version (every parameter always searched)
# is the same function with dead dimensions.
_LR_BEST = {"sgd": -1.3, "adam": -3.2, "rmsprop": -3.6}
_COND_OFFSET = {"sgd": 0.0, "adam": 0.05, "rmsprop": 0.12}


def _conditional(c: dict[str, Any]) -> float:
    opt = c["optimizer"]
    a = math.log10(c["lr"]) - _LR_BEST[opt]
    wd = math.log10(c["weight_decay"]) + 4.0
    k = math.log2(c["width"]) - 8.0
    v = 0.3 * a * a + 0.04 * wd * wd + 0.03 * k * k + 0.08 * math.sin(2 * a) ** 2 + _COND_OFFSET[opt]
    if opt in ("sgd", "rmsprop"):
        m = math.log10(1 - c["momentum"]) + (1.3 if opt == "sgd" else 1.0)  # best 0.95 (sgd), 0.9 (rmsprop)
        v += 0.25 * m * m + 0.2 * a * m
        if opt == "sgd":
            v += 0.0 if c["nesterov"] else 0.08
    else:
        b = math.log10(1 - c["beta1"]) + 1.0  # best 0.9
        v += 0.15 * b * b
    return v


def _conditional_space(flat: bool) -> Space:
    def when(**kw: list[Any]) -> dict[str, Any]:
        return {} if flat else {"when": kw}

    return Space(
        optimizer=Choice(["sgd", "adam", "rmsprop"]),
        lr=Float(1e-5, 1.0, scale="log"),
        momentum=Float(0.5, 0.999, scale="log1m", **when(optimizer=["sgd", "rmsprop"])),
        nesterov=Choice([True, False], **when(optimizer=["sgd"])),
        beta1=Float(0.5, 0.999, scale="log1m", **when(optimizer=["adam"])),
        weight_decay=Float(1e-7, 1e-1, scale="log"),
        width=Int(16, 1024, scale="log"),
    )


def _box(d: int, lo: float, hi: float) -> Space:
    return Space(**{f"x{i}": Float(lo, hi) for i in range(d)})


PROBLEMS = {
    "branin": Problem(
        "branin", Space(x1=Float(-5, 10), x2=Float(0, 15)), _branin, 0.397887357729738, "2 floats"
    ),
    "hartmann6": Problem(
        "hartmann6", Space(**{f"x{i}": Float(0, 1) for i in range(6)}), _hartmann6, -3.322368011415515, "6 floats"
    ),
    "logscale": Problem(
        "logscale",
        Space(
            lr=Float(1e-5, 1.0, scale="log"),
            weight_decay=Float(1e-7, 1e-1, scale="log"),
            momentum=Float(0.5, 0.9999, scale="log1m"),
            batch=Int(8, 1024, scale="log"),
        ),
        _logscale,
        0.0,
        "2 log floats, 1 log1m float, 1 log int",
    ),
    "mixed": Problem(
        "mixed",
        Space(
            x=Float(-5, 5),
            layers=Int(0, 20),
            units=Int(16, 256, step=16),
            optimizer=Choice(["sgd", "adam", "rmsprop", "adagrad"]),
            bn=Choice([True, False]),
        ),
        _mixed,
        0.0,
        "1 float, 2 ints (one stepped), 2 choices",
    ),
    "hartmann3": Problem("hartmann3", _box(3, 0, 1), _hartmann3, -3.862779787332660, "3 floats"),
    "levy4": Problem("levy4", _box(4, -10, 10), _levy, 0.0, "4 floats"),
    "ackley4": Problem("ackley4", _box(4, -32.768, 32.768), _ackley, 0.0, "4 floats"),
    "rosenbrock4": Problem("rosenbrock4", _box(4, -5, 10), _rosenbrock, 0.0, "4 floats"),
    "styblinski4": Problem("styblinski4", _box(4, -5, 5), _styblinski, -39.16616570377142 * 4, "4 floats"),
    "michalewicz5": Problem("michalewicz5", _box(5, 0, math.pi), _michalewicz, -4.687658, "5 floats"),
    "conditional": Problem(
        "conditional", _conditional_space(False), _conditional, 0.0,
        "1 choice; momentum (sgd, rmsprop), nesterov (sgd), beta1 (adam) conditional; lr, weight decay, log int",
    ),
    "conditional-flat": Problem(
        "conditional-flat", _conditional_space(True), _conditional, 0.0,
        "the same function on the flat space: every parameter searched whatever the optimizer",
    ),
}


# ---- methods --------------------------------------------------------------------------------------------
class Clock:
    """Sums wall time and process CPU time over the timed sections."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


@dataclass
class Run:
    """One method on one function and seed: the best regret after each checkpoint, the time per trial."""

    regret: dict[int, float]
    wall_ms: float
    cpu_ms: float


def _checkpoints(trials: int, checkpoints: list[int]) -> list[int]:
    return sorted({c for c in checkpoints if c <= trials} | {trials})


def run_tuitune(problem: Problem, seed: int, trials: int, checkpoints: list[int], **options: Any) -> Run:
    strategy = "bayes" if options.pop("bayes", True) else "random"
    s = make_strategy(strategy, problem.space, seed=seed, n_trials=trials, **options)
    best, clock, reg = math.inf, Clock(), {}
    for i in range(trials):
        with clock:
            sug = s.ask()
            s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config, budget=1))
        y = problem.f(sug.config)
        with clock:
            s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=y, budget=1))
        best = min(best, y)
        if i + 1 in checkpoints:
            reg[i + 1] = best - problem.optimum
    return Run(reg, 1000 * clock.wall / trials, 1000 * clock.cpu / trials)


def _optuna_dists(space: Space) -> tuple[dict[str, Any], Callable[[dict[str, Any]], dict[str, Any]]]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, Any] = {}
    back: list[Callable[[dict[str, Any], dict[str, Any]], None]] = []
    for name, p in space.items():
        if isinstance(p, Choice):
            dists[name] = CategoricalDistribution(p.values)
        elif isinstance(p, Int):
            dists[name] = IntDistribution(p.low, p.high, log=p.scale == "log", step=p.step)
        elif p.scale == "log1m":  # Optuna has no log1m: search 1 - x on a log scale and map back
            dists[name + "_1m"] = FloatDistribution(1 - p.high, 1 - p.low, log=True)
            back.append(lambda out, prm, n=name: out.__setitem__(n, 1 - prm.pop(n + "_1m")))
        else:
            dists[name] = FloatDistribution(p.low, p.high, log=p.scale == "log", step=p.step)

    def to_config(params: dict[str, Any]) -> dict[str, Any]:
        prm = dict(params)
        out: dict[str, Any] = {}
        for fn in back:
            fn(out, prm)
        out.update(prm)
        return out

    return dists, to_config


def run_optuna(problem: Problem, seed: int, trials: int, checkpoints: list[int], sampler: str) -> Run:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    dists, to_config = _optuna_dists(problem.space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smp = optuna.samplers.GPSampler(seed=seed) if sampler == "gp" else optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(sampler=smp, direction="minimize")
        best, clock, reg = math.inf, Clock(), {}
        for i in range(trials):
            with clock:
                tr = study.ask(fixed_distributions=dists)
            y = problem.f(to_config(tr.params))
            with clock:
                study.tell(tr, y)
            best = min(best, y)
            if i + 1 in checkpoints:
                reg[i + 1] = best - problem.optimum
    return Run(reg, 1000 * clock.wall / trials, 1000 * clock.cpu / trials)


METHODS: dict[str, Callable[[Problem, int, int, list[int]], Run]] = {
    "bayes": lambda p, s, n, c: run_tuitune(p, s, n, c, engine="lean"),
    "botorch": lambda p, s, n, c: run_tuitune(p, s, n, c, engine="botorch"),
    "optuna-gp": lambda p, s, n, c: run_optuna(p, s, n, c, "gp"),
    "optuna-tpe": lambda p, s, n, c: run_optuna(p, s, n, c, "tpe"),
    "random": lambda p, s, n, c: run_tuitune(p, s, n, c, bayes=False),
}
LABEL = {"bayes": "tuitune bayes", "botorch": "tuitune bayes (BoTorch GP)", "optuna-gp": "optuna GPSampler",
         "optuna-tpe": "optuna TPESampler", "random": "tuitune random"}
# Methods that know the budget (bayes: its initial design and its last trials' exploitation): one run per
# checkpoint. The others' checkpoints are read off one run.
BUDGET_AWARE = {"bayes", "botorch"}
DEFAULT_FUNCTIONS = [k for k in PROBLEMS if k != "logscale"]


def _loadavg() -> str:
    try:
        import os

        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def _q(xs: list[float], q: float) -> float:
    return float(np.quantile(np.array(xs), q))


def _wilcoxon(a: list[float], b: list[float]) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value (1.0 when every pair ties)."""
    from scipy.stats import wilcoxon

    d = np.array(a) - np.array(b)
    if not np.any(np.abs(d) > 1e-12 * (1 + np.abs(np.array(b)))):
        return 1.0
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def _ranks(runs: dict[str, list[float]]) -> dict[str, float]:
    """Mean rank (1 = best) of each method over the seeds; ties share the average rank."""
    from scipy.stats import rankdata

    names = list(runs)
    table = np.array([runs[m] for m in names])  # methods x seeds
    r = np.apply_along_axis(rankdata, 0, table)
    return {m: float(r[i].mean()) for i, m in enumerate(names)}


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--checkpoints", default="30", help="comma-separated trial counts also reported")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed (seeds run from it upwards)")
    ap.add_argument("--functions", default=",".join(DEFAULT_FUNCTIONS), help=f"comma-separated, of: {', '.join(PROBLEMS)}")
    ap.add_argument("--methods", default="bayes,optuna-gp,optuna-tpe,random", help=f"comma-separated, of: {', '.join(METHODS)}")
    ap.add_argument("--raw", default="", help="JSON file of per-seed results: read (runs found there are reused) and written")
    ap.add_argument("--rerun", default="", help="comma-separated methods to run again even if --raw has them")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bayes.md"), help="'' to not write")
    ap.add_argument("--fit-starts", type=int, default=None, help="idea: bayes GP fits from this many starts")
    ap.add_argument("--lengthscale-prior", choices=("optuna", "hvarfner"), default=None, help="idea: bayes prior")
    args = ap.parse_args(argv)
    from tuitune.core.search.strategies.bayes import gp

    if args.fit_starts is not None:  # the ideas measured in benchmarks/results/bayes.md (not the defaults)
        gp.FIT_STARTS = args.fit_starts
    if args.lengthscale_prior is not None:
        gp.LENGTHSCALE_PRIOR = args.lengthscale_prior
    funcs = [f.strip() for f in args.functions.split(",") if f.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rerun = {m.strip() for m in args.rerun.split(",") if m.strip()}
    checks = _checkpoints(args.trials, [int(x) for x in args.checkpoints.split(",") if x.strip()])
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))

    import json

    import botorch
    import optuna
    import scipy
    import torch

    raw: dict[str, Any] = {}
    if args.raw and Path(args.raw).exists():
        raw = json.loads(Path(args.raw).read_text())

    def key(fname: str, m: str, seed: int) -> str:
        # Only bayes reads the conditions: Optuna gets the flat distributions and random search draws every
        # parameter (then drops the inactive ones, which the function ignores), so their conditional-flat
        # runs are their conditional runs.
        if fname == "conditional-flat" and m != "bayes":
            fname = "conditional"
        return f"{fname}|{m}|{seed}|{args.trials}"

    try:
        import greenlet  # noqa: F401  (Optuna's GPSampler runs its L-BFGS-B searches in parallel with it)

        has_greenlet = "yes"
    except ImportError:
        has_greenlet = "no (GPSampler falls back to sequential L-BFGS-B, slower)"
    # Warm-up: imports and first-call costs (torch, BoTorch, Optuna's GP) stay out of the timings.
    for m in methods:
        METHODS[m](PROBLEMS["branin"], 999, 12, [12])

    started = time.time()
    ran = 0
    results: dict[tuple[str, str], list[Run]] = {}
    for fname in funcs:
        prob = PROBLEMS[fname]
        for seed in seeds:
            for m in methods:
                k = key(fname, m, seed)
                if k in raw and m not in rerun:
                    r = raw[k]
                    run = Run({int(c): v for c, v in r["regret"].items()}, r["wall_ms"], r["cpu_ms"])
                elif m in BUDGET_AWARE and len(checks) > 1:  # a run per budget; the time of the longest
                    regret = {}
                    for c in checks:
                        run = METHODS[m](prob, seed, c, [c])
                        regret[c] = run.regret[c]
                    run = Run(regret, run.wall_ms, run.cpu_ms)
                    raw[k] = {"regret": run.regret, "wall_ms": run.wall_ms, "cpu_ms": run.cpu_ms}
                    ran += 1
                else:
                    run = METHODS[m](prob, seed, args.trials, checks)
                    raw[k] = {"regret": run.regret, "wall_ms": run.wall_ms, "cpu_ms": run.cpu_ms}
                    ran += 1
                results.setdefault((fname, m), []).append(run)
            done = [results[(fname, m)][-1].regret[args.trials] for m in methods]
            print(f"  {fname} seed {seed}: " + "  ".join(f"{r:.4g}" for r in done), file=sys.stderr, flush=True)
            if args.raw:
                Path(args.raw).write_text(json.dumps(raw, indent=0, sort_keys=True))
    elapsed = time.time() - started

    head = "| function | trials | " + " | ".join(f"{LABEL[m]}: median regret (mean rank)" for m in methods)
    has_gp = "bayes" in methods and "optuna-gp" in methods
    if has_gp:
        head += " | bayes vs GPSampler: ratio of medians, wins, Wilcoxon p"
    lines = [head + " |", "|" + "---|" * (2 + len(methods) + has_gp)]
    for fname in funcs:
        for c in checks:
            per = {m: [r.regret[c] for r in results[(fname, m)]] for m in methods}
            ranks = _ranks(per)
            cells = [f"{_fmt(statistics.median(per[m]))} ({ranks[m]:.2f})" for m in methods]
            if has_gp:
                a, b = per["bayes"], per["optuna-gp"]
                mb, mg = statistics.median(a), statistics.median(b)
                ratio = "-" if mg <= 0 else f"{mb / mg:.2f}x"
                wins = sum(x < y for x, y in zip(a, b))
                losses = sum(x > y for x, y in zip(a, b))
                p = _wilcoxon(a, b)
                verdict = "" if p >= 0.05 else (" **better**" if mb < mg or wins > losses else " **worse**")
                cells.append(f"{ratio}, {wins}-{losses}, p={p:.2g}{verdict}")
            lines.append(f"| {fname} | {c} | " + " | ".join(cells) + " |")
    time_lines = ["| function | " + " | ".join(f"{LABEL[m]} wall ms / trial (CPU ms)" for m in methods) + " |",
                  "|" + "---|" * (1 + len(methods))]
    for fname in funcs:
        cells = []
        for m in methods:
            rs = results[(fname, m)]
            cells.append(f"{statistics.mean(r.wall_ms for r in rs):.1f} ({statistics.mean(r.cpu_ms for r in rs):.1f})")
        time_lines.append(f"| {fname} | " + " | ".join(cells) + " |")
    summary = []
    if has_gp:
        for c in checks:
            rk = {m: statistics.mean(_ranks({mm: [r.regret[c] for r in results[(f, mm)]] for mm in methods})[m]
                                     for f in funcs if f != "conditional-flat") for m in methods}
            summary.append(f"- mean rank over the functions at {c} trials: "
                           + ", ".join(f"{LABEL[m]} {rk[m]:.2f}" for m in methods))
    table = "\n".join(lines) + "\n\n" + "\n".join(time_lines) + ("\n\n" + "\n".join(summary) if summary else "")
    cond = (
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} UTC\n"
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch "
        f"threads (CPU only, no GPU), Python {platform.python_version()}; run under `nice -n 10`\n"
        f"- torch {torch.__version__}, botorch {botorch.__version__}, optuna {optuna.__version__}, scipy {scipy.__version__}\n"
        f"- {args.trials} trials, {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}) per function and method; defaults everywhere "
        f"(GPSampler: 10 initial trials; bayes: initial_design_size = min(10, max(5, 2 d)))\n"
        + (
            f"- the {', '.join(str(c) for c in checks if c != args.trials)}-trial rows: Optuna's samplers and random "
            "search do not know the budget, so they are the same runs read at that trial; bayes knows it, so they "
            "are its runs of that length (the time columns are those of the longest)\n"
            if len(checks) > 1 else ""
        )
        +
        "- functions: " + "; ".join(f"{f} ({PROBLEMS[f].note})" for f in funcs) + "\n"
        f"- greenlet installed (Optuna GPSampler's parallel local search): {has_greenlet}\n"
        "- regret: best value found minus the known optimum; mean rank among the methods per seed (1 = best, ties "
        "averaged); Wilcoxon: two-sided paired signed-rank test of bayes against GPSampler over the seeds "
        "(p < 0.05 marked); wins-losses: seeds where bayes is strictly below / above GPSampler\n"
        "- time: mean wall (and process CPU) time of ask + tell per trial over the whole run (the cheap initial "
        f"trials included), imports warmed up first; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"the same torch thread count for every method\n"
        f"- load: the 2 cores are shared with other work (load average at the end {_loadavg()}), so wall times are "
        "noisy; methods alternate seed by seed so they share the noise\n"
        f"- this invocation ran {ran} runs in {elapsed / 60:.1f} min (the others were read from the raw file)"
    )
    print(table)
    print()
    print(cond)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = "python benchmarks/bench_bayes.py " + " ".join(argv if argv is not None else sys.argv[1:])
        out.write_text(f"# bayes vs Optuna\n\n`{cmd.strip()}`\n\n{table}\n\n{cond}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

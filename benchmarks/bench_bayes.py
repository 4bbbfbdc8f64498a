"""Measures tuitune's bayes strategy against Optuna's GPSampler and TPESampler and random search.

Each method runs the same test functions through ask/tell (no database): Branin (2D), Hartmann6 (6D),
"logscale" (learning rate, weight decay and batch size on log scales, momentum on log1m) and "mixed"
(a float, two ints and two categoricals). The table gives, per function and method, the median and IQR
of the final regret (best value found minus the known optimum) over the seeds, and the mean wall time of
ask + tell per trial (the objective itself is not timed).

    .venv/bin/python benchmarks/bench_bayes.py                      # the full run (40 trials, 10 seeds)
    .venv/bin/python benchmarks/bench_bayes.py --trials 20 --seeds 2 --functions branin
    .venv/bin/python benchmarks/bench_bayes.py --methods bayes,optuna-gp

Both tuitune's GP and Optuna's GPSampler limit torch to one intra-op thread while they compute; the
process keeps torch's default otherwise, the same for every method.
"""

from __future__ import annotations

import argparse
import datetime
import math
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
from tuitune.core.space import Choice, Float, Int, Space  # noqa: E402
from tuitune.core.strategies import make_strategy  # noqa: E402


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


def run_tuitune(problem: Problem, seed: int, trials: int, **options: Any) -> tuple[float, float, float]:
    s = make_strategy("bayes" if options else "random", problem.space, seed=seed, n_trials=trials, **options)
    best, clock = math.inf, Clock()
    for i in range(trials):
        with clock:
            sug = s.ask()
            s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config, budget=1))
        y = problem.f(sug.config)
        with clock:
            s.tell(TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=y, budget=1))
        best = min(best, y)
    return best - problem.optimum, clock.wall / trials, clock.cpu / trials


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


def run_optuna(problem: Problem, seed: int, trials: int, sampler: str) -> tuple[float, float, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    dists, to_config = _optuna_dists(problem.space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smp = optuna.samplers.GPSampler(seed=seed) if sampler == "gp" else optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(sampler=smp, direction="minimize")
        best, clock = math.inf, Clock()
        for _ in range(trials):
            with clock:
                tr = study.ask(fixed_distributions=dists)
            y = problem.f(to_config(tr.params))
            with clock:
                study.tell(tr, y)
            best = min(best, y)
    return best - problem.optimum, clock.wall / trials, clock.cpu / trials


METHODS: dict[str, Callable[[Problem, int, int], tuple[float, float, float]]] = {
    "tuitune bayes (lean GP)": lambda p, s, n: run_tuitune(p, s, n, engine="lean"),
    "tuitune bayes (BoTorch GP)": lambda p, s, n: run_tuitune(p, s, n, engine="botorch"),
    "optuna GPSampler": lambda p, s, n: run_optuna(p, s, n, "gp"),
    "optuna TPESampler": lambda p, s, n: run_optuna(p, s, n, "tpe"),
    "tuitune random": lambda p, s, n: run_tuitune(p, s, n),
}
SHORT = {"bayes": "tuitune bayes (lean GP)", "botorch": "tuitune bayes (BoTorch GP)", "optuna-gp": "optuna GPSampler",
         "optuna-tpe": "optuna TPESampler", "random": "tuitune random"}


def _loadavg() -> str:
    try:
        import os

        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def _q(xs: list[float], q: float) -> float:
    return float(np.quantile(np.array(xs), q))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed (seeds run from it upwards)")
    ap.add_argument("--functions", default=",".join(PROBLEMS), help=f"comma-separated, of: {', '.join(PROBLEMS)}")
    ap.add_argument("--methods", default=",".join(SHORT), help=f"comma-separated, of: {', '.join(SHORT)}")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bayes.md"), help="'' to not write")
    args = ap.parse_args(argv)
    funcs = [f.strip() for f in args.functions.split(",") if f.strip()]
    methods = [SHORT[m.strip()] for m in args.methods.split(",") if m.strip()]

    import botorch
    import optuna
    import torch

    try:
        import greenlet  # noqa: F401  (Optuna's GPSampler runs its L-BFGS-B searches in parallel with it)

        has_greenlet = "yes"
    except ImportError:
        has_greenlet = "no (GPSampler falls back to sequential L-BFGS-B, slower)"
    # Warm-up: imports and first-call costs (torch, BoTorch, Optuna's GP) stay out of the timings.
    for m in methods:
        METHODS[m](PROBLEMS["branin"], 999, 12)

    started = time.time()
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for fname in funcs:
        prob = PROBLEMS[fname]
        for seed in range(args.seed_offset, args.seed_offset + args.seeds):
            for m in methods:
                results.setdefault((fname, m), []).append(METHODS[m](prob, seed, args.trials))
            done = [results[(fname, m)][-1][0] for m in methods]  # regrets, in the order of --methods
            print(f"  {fname} seed {seed}: " + "  ".join(f"{r:.4g}" for r in done), file=sys.stderr, flush=True)
    elapsed = time.time() - started

    lines = [
        "| function | method | median regret | IQR (q25 - q75) | wins vs GPSampler | wall ms / trial | CPU ms / trial |",
        "|---|---|---|---|---|---|---|",
    ]
    for fname in funcs:
        gp = results.get((fname, "optuna GPSampler"))
        for m in methods:
            rs = [r[0] for r in results[(fname, m)]]
            wall = statistics.mean(r[1] for r in results[(fname, m)])
            cpu = statistics.mean(r[2] for r in results[(fname, m)])
            wins = "" if gp is None or m == "optuna GPSampler" else (
                f"{sum(a < b[0] for a, b in zip(rs, gp))}/{len(rs)}"
            )
            lines.append(
                f"| {fname} | {m} | {statistics.median(rs):.4g} | {_q(rs, 0.25):.3g} - {_q(rs, 0.75):.3g} | {wins} "
                f"| {1000 * wall:.1f} | {1000 * cpu:.1f} |"
            )
    table = "\n".join(lines)
    cond = (
        f"- date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}\n"
        f"- machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads "
        f"(CPU only, no GPU), Python {platform.python_version()}\n"
        f"- torch {torch.__version__}, botorch {botorch.__version__}, optuna {optuna.__version__}\n"
        f"- {args.trials} trials, {args.seeds} seeds ({args.seed_offset}..{args.seed_offset + args.seeds - 1}) per function and method; "
        f"defaults everywhere (10 initial trials for bayes and GPSampler)\n"
        f"- functions: " + "; ".join(f"{f} ({PROBLEMS[f].note})" for f in funcs) + "\n"
        f"- greenlet installed (Optuna GPSampler's parallel local search): {has_greenlet}\n"
        f"- regret: best value found minus the known optimum; time: mean wall (and process CPU) time of ask + tell "
        f"per trial, all {args.trials} trials (the cheap initial ones included) averaged; imports warmed up first\n"
        f"- load: the 2 cores are shared with other work (load average {_loadavg()}), so wall times are noisy; "
        f"methods alternate seed by seed so they share the noise\n"
        f"- 'wins vs GPSampler': seeds where the method's regret is strictly below GPSampler's (same seed number)\n"
        f"- the whole run took {elapsed / 60:.1f} min"
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

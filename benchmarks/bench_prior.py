"""Measures priors (``prior=VALUE`` on parameters; piBO in bayes, PriorBand-like draws in random search).

On bench_bayes's functions whose optimum is known (its ``PROBLEMS``, run through its ``run_tuitune``), each
strategy runs without a prior, with a good prior (each parameter's prior a small seeded step, N(0, 0.05) in
the unit interval of its own scale, from the optimum; a choice's on the best value) and with a misleading one
(each coordinate half the unit interval away from the optimum, wrapped; a choice's on another value).
The target regret of a strategy on a function is the median over the seeds of its no-prior best regret after
``--trials`` trials; each run counts the trials it needed to reach it (runs go on to 1.3x the trials; a run
that never reaches it counts as 1.3x + 1). Goals (issue 21): good prior <= 1/3 of the trials, misleading
<= 1.3x the trials of no prior (medians over the seeds).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_prior.py                 # 30 trials, 10 seeds
    python benchmarks/bench_prior.py --functions branin --seeds 2 --out ''
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import bench_bayes  # noqa: E402
from bench_bayes import PROBLEMS, Problem, run_tuitune  # noqa: E402

from tuitune.core.search.space import Choice  # noqa: E402

# A config at the global optimum of each function used (branin: one of its three).
OPTIMA: dict[str, dict[str, Any]] = {
    "branin": {"x1": math.pi, "x2": 2.275},
    "hartmann3": {"x0": 0.114614, "x1": 0.555649, "x2": 0.852547},
    "hartmann6": {f"x{i}": v for i, v in enumerate([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])},
    "levy4": {f"x{i}": 1.0 for i in range(4)},
    "styblinski4": {f"x{i}": -2.903534 for i in range(4)},
    "mixed": {"x": -1.0, "layers": 13, "units": 112, "optimizer": "adam", "bn": True},
    "logscale": {"lr": 10**-2.5, "weight_decay": 1e-4, "momentum": 0.99, "batch": 64},
}
KINDS = ("none", "good", "misleading")


def prior_of(problem: Problem, kind: str, seed: int) -> dict[str, Any]:
    """The prior values of a kind for one seed (good: a seeded step from the optimum)."""
    rng = np.random.default_rng([seed, 2022])
    out: dict[str, Any] = {}
    for name, value in OPTIMA[problem.name].items():
        p = problem.space[name]
        if isinstance(p, Choice):
            i = p.index(value)
            out[name] = value if kind == "good" else p.values[(i + max(1, len(p.values) // 2)) % len(p.values)]
            continue
        u = p.to_unit(value)
        u = float(np.clip(u + 0.05 * rng.standard_normal(), 0, 1)) if kind == "good" else (u + 0.5) % 1.0
        out[name] = p.from_unit(u)
    return out


def one(problem: Problem, strategy: str, kind: str, seed: int, trials: int) -> list[float]:
    """The best regret after each trial (1..trials)."""
    if kind != "none":
        problem = dataclasses.replace(problem, space=problem.space.with_priors(prior_of(problem, kind, seed)))
    run = run_tuitune(problem, seed, trials, list(range(1, trials + 1)), bayes=strategy == "bayes")
    return [run.regret[i] for i in range(1, trials + 1)]


def to_target(curve: list[float], target: float) -> int:
    """The trials a run needed to reach the target regret (len + 1 if it never did)."""
    return next((i + 1 for i, r in enumerate(curve) if r <= target + 1e-12), len(curve) + 1)


def multi_fidelity(seeds: int, R: int = 27, eta: int = 3) -> list[str]:
    """hyperband and asha (random sampler) on bench_hyperband's learning-curve functions: the median final
    regret after one plan (hyperband: one iteration; asha: its default configs), without and with priors."""
    import bench_hyperband as bh

    from tuitune.core.search.strategies import make_strategy

    lines = [
        "", f"## hyperband and asha (random sampler): median regret over {seeds} seeds, R = {R}, eta = {eta}", "",
        "bench_hyperband's learning-curve functions; the same epochs with and without the prior (one hyperband "
        "iteration; asha's default configs). Regret: the best final value among the configs trained to R.", "",
        "| function | strategy | none | good | misleading |", "|---|---|---|---|---|",
    ]
    for fname in ("mf-hartmann3", "mf-mixed"):
        p = bh.PROBLEMS_MF[fname]
        base = PROBLEMS[fname[3:]]
        for strat in ("hyperband", "asha"):
            med = {}
            for kind in KINDS:
                regs = []
                for seed in range(seeds):
                    space = p.space if kind == "none" else p.space.with_priors(prior_of(base, kind, seed))
                    s = make_strategy(strat, space, seed=seed, max_epochs=R, factor=eta, sampler="random")
                    regs.append(bh.run_one_worker(dataclasses.replace(p, space=space), s, seed, R)[0])
                med[kind] = statistics.median(regs)
            lines.append(f"| {fname} | {strat} | {med['none']:.3g} | {med['good']:.3g} | {med['misleading']:.3g} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--functions", default=",".join(OPTIMA))
    ap.add_argument("--strategies", default="bayes,random")
    ap.add_argument("--raw", default=str(ROOT / "benchmarks" / "results" / "prior-raw.json"))
    ap.add_argument("--multi-fidelity", action="store_true", help="also hyperband and asha (random sampler)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "prior.md"), help="'' to not write")
    args = ap.parse_args(argv)
    funcs = [f for f in args.functions.split(",") if f]
    strategies = [s for s in args.strategies.split(",") if s]
    longest = math.ceil(1.3 * args.trials)
    raw: dict[str, Any] = json.loads(Path(args.raw).read_text()) if args.raw and Path(args.raw).exists() else {}
    t0 = time.perf_counter()
    for f in funcs:
        for s in strategies:
            for kind in KINDS:
                for seed in range(args.seeds):
                    key = f"{f}/{s}/{kind}/{seed}/{longest}"
                    if key not in raw:
                        raw[key] = one(PROBLEMS[f], s, kind, seed, longest)
                        if args.raw:
                            Path(args.raw).write_text(json.dumps(raw))
            print(f"{f} {s} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    lines = [
        "# Priors: trials to the no-prior target regret", "",
        f"{datetime.date.today()}, {platform.node()}, {os.cpu_count()} CPUs shared with other sessions "
        f"(load {bench_bayes._loadavg()}), `python benchmarks/bench_prior.py --trials {args.trials} --seeds "
        f"{args.seeds}`. Target: the strategy's median best regret over the seeds after {args.trials} trials "
        f"without a prior. Each cell: the median (over {args.seeds} seeds) of the trials a run needed to reach "
        f"it; runs go on to {longest} trials, '>{longest}' where the median run never reached it. Goals: good "
        f"<= {args.trials / 3:g} ({args.trials}/3), misleading <= 1.3x none.", "",
        "| function | strategy | target regret | none | good | misleading | good goal | misleading goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, list[tuple[float, float]]] = {s: [] for s in strategies}
    for f in funcs:
        for s in strategies:
            curves = {k: [raw[f"{f}/{s}/{k}/{seed}/{longest}"] for seed in range(args.seeds)] for k in KINDS}
            target = statistics.median(c[args.trials - 1] for c in curves["none"])
            med = {k: statistics.median(to_target(c, target) for c in curves[k]) for k in KINDS}

            def cell(x: float) -> str:
                return f">{longest}" if x > longest else f"{x:g}"

            good_ok = med["good"] <= args.trials / 3
            mis_ok = med["misleading"] <= min(1.3 * med["none"], longest)  # never reached: missed
            summary[s].append((med["good"] / med["none"], med["misleading"] / med["none"]))
            lines.append(
                f"| {f} | {s} | {target:.3g} | {cell(med['none'])} | {cell(med['good'])} | {cell(med['misleading'])} "
                f"| {'met' if good_ok else 'missed'} | {'met' if mis_ok else 'missed'} |"
            )
    lines += ["", "Median over the functions of (trials with the prior) / (trials without):", ""]
    for s, rows in summary.items():
        if rows:
            lines.append(f"- {s}: good {statistics.median(r[0] for r in rows):.2f}x, "
                         f"misleading {statistics.median(r[1] for r in rows):.2f}x")
    if args.multi_fidelity:
        lines += multi_fidelity(args.seeds)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

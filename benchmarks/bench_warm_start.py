"""Measures warm starts (``warm_start=``): bayes on a shifted function, cold against warm-started.

On bench_bayes's functions with an interior optimum: an earlier session ran bayes for ``--trials`` trials on
f; the new session's function is g(x) = 2 f(x - d) + 1 (the optimum moved by ``--shift`` of each range and
the metric rescaled and offset, as a change to the code or the data does). Cold: bayes on g from nothing.
Warm: bayes on g with the earlier session's trials (``tuitune.core.search.warm``: ranked, its best configs first).
Both run ``--trials`` trials. The target regret is cold's median final regret; each warm run counts the
trials it needed to reach it. Goals (issue 21): warm reaches it in <= half the trials (median over seeds),
and never ends worse than cold by more than noise (paired Wilcoxon on the final regrets; median difference).
``--variant`` picks how soon an agreeing warm start exploits (bayes' WARM_EXPLOIT; "off" is the rule before
it); ``--mislead``: the earlier session ran on f mirrored (f(low + high - x)), so its optimum is elsewhere.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_warm_start.py                   # 30 trials, 10 seeds
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_warm_start.py --mislead --out benchmarks/results/warm-start-mislead.md
    python benchmarks/bench_warm_start.py --functions branin --seeds 2 --out ''
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import bench_bayes  # noqa: E402
from bench_bayes import PROBLEMS, Problem  # noqa: E402
from bench_prior import to_target  # noqa: E402

from tuitune.core.records import TrialRecord, TrialState  # noqa: E402
from tuitune.core.search.strategies import make_strategy  # noqa: E402
from tuitune.core.search.strategies.bayes import strategy as bayes_strategy  # noqa: E402
from tuitune.core.search.warm import warm_trials  # noqa: E402

FUNCTIONS = ["branin", "hartmann3", "hartmann6", "levy4", "rosenbrock4", "styblinski4"]
SCALE, OFFSET = 2.0, 1.0


def shifted(problem: Problem, shift: float) -> Callable[[dict[str, Any]], float]:
    """g(x) = SCALE f(x - d) + OFFSET, d = shift x each parameter's range (its optimum moves by +d)."""
    deltas = {k: shift * (p.high - p.low) for k, p in problem.space.items()}

    def g(c: dict[str, Any]) -> float:
        return SCALE * problem.f({k: v - deltas[k] for k, v in c.items()}) + OFFSET

    return g


def mirrored(problem: Problem) -> Callable[[dict[str, Any]], float]:
    """f(low + high - x): the same function with its optimum mirrored (a misleading earlier session)."""
    sp = problem.space

    def m(c: dict[str, Any]) -> float:
        return problem.f({k: sp[k].low + sp[k].high - v for k, v in c.items()})

    return m


def session(problem: Problem, f: Callable[[dict[str, Any]], float], optimum: float, seed: int, trials: int,
            warm: list[dict[str, Any]] | None = None) -> tuple[list[float], list[TrialRecord]]:
    """A bayes session through ask/tell: the best regret after each trial, and its trial records."""
    s = make_strategy("bayes", problem.space, seed=seed, n_trials=trials, warm_start=warm)
    best, curve, records = math.inf, [], []
    for i in range(trials):
        sug = s.ask()
        s.tell(TrialRecord(number=i, state=TrialState.RUNNING, config=sug.config, budget=1))
        y = f(sug.config)
        rec = TrialRecord(number=i, state=TrialState.COMPLETE, config=sug.config, value=y, budget=1)
        s.tell(rec)
        records.append(rec)
        best = min(best, y)
        curve.append(best - optimum)
    return curve, records


def _wilcoxon(a: list[float], b: list[float]) -> float:
    from scipy.stats import wilcoxon

    if all(x == y for x, y in zip(a, b)):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--shift", type=float, default=0.05)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--variant", default=bayes_strategy.WARM_EXPLOIT, choices=bayes_strategy.WARM_EXPLOITS)
    ap.add_argument("--mislead", action="store_true", help="the earlier session ran on f mirrored")
    ap.add_argument("--raw", default=str(ROOT / "benchmarks" / "results" / "warm-start-raw.json"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "warm-start.md"), help="'' to not write")
    args = ap.parse_args(argv)
    funcs = [f for f in args.functions.split(",") if f]
    raw: dict[str, Any] = json.loads(Path(args.raw).read_text()) if args.raw and Path(args.raw).exists() else {}
    bayes_strategy.WARM_EXPLOIT = args.variant
    # The raw results: per function, seed, trials and shift, "cold" and each variant's warm curve ("warm"
    # before variants existed: the rule now called "off"); a misleading earlier session under a key of its own.
    wkey = "warm" if args.variant == "off" else f"warm/{args.variant}"
    tag = "/mirrored" if args.mislead else ""
    t0 = time.perf_counter()
    for name in funcs:
        p = PROBLEMS[name]
        g, g_opt = shifted(p, args.shift), SCALE * p.optimum + OFFSET
        for seed in range(args.seeds):
            key = f"{name}/{seed}/{args.trials}/{args.shift}{tag}"
            entry = raw.setdefault(key, {})
            if "cold" not in entry:  # cold never sees the earlier session: the shifted runs' cold curve is it
                plain = raw.get(f"{name}/{seed}/{args.trials}/{args.shift}", {})
                entry["cold"] = plain.get("cold") or session(p, g, g_opt, seed, args.trials)[0]
            if wkey in entry:
                continue
            _, src = session(p, mirrored(p) if args.mislead else p.f, p.optimum, 1000 + seed, args.trials)
            warm, _ = session(p, g, g_opt, seed, args.trials, warm_trials(p.space, None, [("earlier", "minimize", src)]))
            entry[wkey] = warm
            if args.raw:
                Path(args.raw).write_text(json.dumps(raw))
        print(f"{name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    n = args.trials
    lines = [
        "# Warm starts: a shifted function, cold against warm-started bayes", "",
        f"{datetime.date.today()}, {platform.node()}, {os.cpu_count()} CPUs shared with other sessions "
        f"(load {bench_bayes._loadavg()}), `python benchmarks/bench_warm_start.py --trials {n} --seeds {args.seeds}"
        f" --shift {args.shift} --variant {args.variant}{' --mislead' if args.mislead else ''}`. "
        f"The earlier session: bayes, {n} trials on {'f mirrored, f(low + high - x)' if args.mislead else 'f'}. "
        "The new function: "
        f"g(x) = {SCALE:g} f(x - d) + {OFFSET:g}, d = {args.shift:g} of each range. Target: cold's median regret "
        f"after {n} trials. Trials to target: the median over {args.seeds} seeds ('>{n}': the median run never "
        f"reached it). Goals: warm <= {n / 2:g} trials; warm's final regret not worse than cold's beyond noise.", "",
        "| function | target regret | cold trials | warm trials | cold final (median) | warm final (median) "
        "| warm better/worse (seeds) | Wilcoxon p | goals |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary: list[tuple[float, float, bool, bool]] = []
    for name in funcs:
        runs = [{"cold": r["cold"], "warm": r[wkey]} for r in (raw[f"{name}/{s}/{n}/{args.shift}{tag}"]
                                                                for s in range(args.seeds))]
        cold_f = [r["cold"][-1] for r in runs]
        warm_f = [r["warm"][-1] for r in runs]
        target = statistics.median(cold_f)
        ct = statistics.median(to_target(r["cold"], target) for r in runs)
        wt = statistics.median(to_target(r["warm"], target) for r in runs)
        better = sum(w < c for w, c in zip(warm_f, cold_f))
        worse = sum(w > c for w, c in zip(warm_f, cold_f))
        pval = _wilcoxon(warm_f, cold_f)
        fast = wt <= n / 2
        not_worse = statistics.median(warm_f) <= statistics.median(cold_f) or pval >= 0.05
        cell = lambda x: f">{n}" if x > n else f"{x:g}"  # noqa: E731
        summary.append((ct, wt, fast, not_worse))
        lines.append(
            f"| {name} | {target:.3g} | {cell(ct)} | {cell(wt)} | {statistics.median(cold_f):.3g} | "
            f"{statistics.median(warm_f):.3g} | {better}/{worse} | {pval:.2g} | "
            f"{'fast' if fast else 'slow'}, {'not worse' if not_worse else 'WORSE'} |"
        )
    cell = lambda x: f">{n}" if x > n else f"{x:g}"  # noqa: E731
    lines += ["", f"Over the {len(summary)} functions: the median trials to target, cold {cell(statistics.median(c for c, _, _, _ in summary))}, "
              f"warm {cell(statistics.median(w for _, w, _, _ in summary))}; fast on {sum(f for _, _, f, _ in summary)}, "
              f"not worse on {sum(nw for _, _, _, nw in summary)}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
